"""HTML markup removed from review text, every word of the text kept.

Reviews arrive with markup exporters left in (``<br />``, ``<b>``, ``&amp;``) and with text
that only looks like markup (``I <3 it``, ``<$10``, ``AT&T``). :func:`strip_html` removes the
first and keeps the second, the same on every Python patch release.
"""

from __future__ import annotations

import html
import re
from html.entities import html5 as _HTML5_ENTITIES
from html.parser import HTMLParser

# Tags that end a line or a block, or hold a separate run of text (script, style, title): replaced
# by a space so that "Good<br>stuff" does not become "Goodstuff". Inline tags (b, i, a, span...) are
# removed without a space: "un<b>believ</b>able".
_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "option",
        "p",
        "pre",
        "script",
        "section",
        "style",
        "table",
        "tbody",
        "td",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    }
)
# Where markup can start: `<` then a letter (tag), `/` (end tag), `!` (comment, doctype) or `?`
# (processing instruction). Any other `<` ("I <3 it", "<$10", "a < b") is text to HTMLParser too.
_MARKUP_OPEN = re.compile(r"<[A-Za-z/!?]")
# An `&` and the well-formed reference it may start: a terminated numeric reference, or a name
# checked against the HTML5 table in `_keep_or_escape_amp`. Digit runs are bounded: no code point
# needs more than 7 decimal digits, and html.unescape would call int() on an unbounded run.
_AMP = re.compile(r"&(?:(#[0-9]{1,32};|#[xX][0-9a-fA-F]{1,32};)|([A-Za-z][A-Za-z0-9]{0,31});)?")
_ENTITY_NAMES = frozenset(name[:-1] for name in _HTML5_ENTITIES if name.endswith(";"))


def _keep_or_escape_amp(match: re.Match[str]) -> str:
    """``&amp;`` for an ``&`` that does not start a well-formed reference, so it stays as written."""
    if match.group(1) or (match.group(2) and match.group(2) in _ENTITY_NAMES):
        return match.group()
    return "&amp;" + match.group()[1:]


def _decode_refs(match: re.Match[str]) -> str:
    """The character(s) of a well-formed reference; any other ``&`` stays as written."""
    if match.group(1) or (match.group(2) and match.group(2) in _ENTITY_NAMES):
        return html.unescape(match.group())
    return match.group()


class _TextCollector(HTMLParser):
    """Collects the text of a fragment; tags, comments, declarations and PIs are dropped.

    One instance per call: HTMLParser keeps per-document state and is not thread-safe.
    """

    def __init__(self, parts: list[str]) -> None:
        super().__init__(convert_charrefs=True)  # references decoded once, in text only
        self.parts = parts

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def set_cdata_mode(self, *args, **kwargs) -> None:
        # A review is not a web page: the words after <script>/<style> are parsed like any others
        # (kept, tags inside removed) instead of being passed through raw up to </script>.
        return

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):  # <![CDATA[text]]> is text
            self.parts.append(data[6:])

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # The stdlib raises AssertionError on "<![" not followed by a known keyword ("<![ 3", "<![x"):
        # such a "<" is text.
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            self.handle_data("<")
            return i + 1


def strip_html(text: str) -> str:
    """Remove HTML markup and decode character references, keeping every word of the text.

    Tags, comments, doctypes and processing instructions are removed; block and line-break tags
    (``br``, ``p``, ``div``, ``li``...) become a space. A ``<`` that cannot start markup (``I <3
    it``, ``<$10``) is text, and so is a construct left unterminated at the end (``a<b is true``,
    ``<a href=``). References are decoded exactly once and only when well-formed (``&lt;``,
    ``&#123;``, ``&#x1F600;``): ``AT&T``, ``Q&A`` and ``&copy`` without ``;`` stay as written, and
    ``&amp;lt;`` becomes ``&lt;``.
    """
    if "<" not in text and "&" not in text:  # fast path: most reviews have no markup
        return text
    if _MARKUP_OPEN.search(text) is None:  # only references to decode: no parser needed
        return _AMP.sub(_decode_refs, text) if "&" in text else text
    parts: list[str] = []
    rest = _AMP.sub(_keep_or_escape_amp, text) if "&" in text else text
    while rest:
        parser = _TextCollector(parts)
        parser.feed(rest)
        # feed() leaves unprocessed what is not terminated yet: a tag, comment or declaration still
        # open at the end. close() is not relied on for it: 3.11.7 turns it into text, while later
        # patch releases follow HTML5's end-of-file rules and drop an open tag. Decided here, the
        # same on every Python: it is text. Without a later ">" nothing after it can be markup;
        # otherwise its "<" is text and the rest is parsed again.
        rest = parser.rawdata
        if not rest.startswith("<") or ">" not in rest:
            parts.append(html.unescape(rest))
            break
        parts.append("<")
        rest = rest[1:]
    return "".join(parts)
