"""Property tests of cleaning: text without markup loses nothing but invisible characters and spacing."""

from __future__ import annotations

import re
from html.entities import html5

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewops.data.clean import MASKS, clean_text, mask_pii
from reviewops.data.markup import strip_html
from reviewops.text import has_visible_text, normalize

# Markup as the tests define it: "<" + an ASCII letter, "/", "!" or "?", or an "&" that starts a
# well-formed reference (a terminated numeric one, or a known HTML5 name and ";").
_MARKUP_OPEN = re.compile(r"<[A-Za-z/!?]")
_REFERENCE = re.compile(r"&(?:#[0-9]+;|#[xX][0-9a-fA-F]+;|([A-Za-z][A-Za-z0-9]*);)")
_JOINERS = "\u200c\u200d"


def has_markup(text: str) -> bool:
    if _MARKUP_OPEN.search(text):
        return True
    return any(m.group(1) is None or f"{m.group(1)};" in html5 for m in _REFERENCE.finditer(text))


def expected_without_markup(text: str) -> str:
    """What cleaning (without masks) must make of markup-free text, stated character by character.

    Whitespace (tab, newline, NEL... included) separates words; a character that shows nothing is
    dropped, except a zero-width (non-)joiner between two visible characters; then the text is
    Unicode-normalized and its whitespace collapsed.
    """
    kept = []
    for i, ch in enumerate(text):
        if ch.isspace():
            kept.append(" ")
        elif has_visible_text(ch) or (
            ch in _JOINERS and 0 < i < len(text) - 1 and has_visible_text(text[i - 1]) and has_visible_text(text[i + 1])
        ):
            kept.append(ch)
    return " ".join(normalize("".join(kept)).split())


_CHARS = st.one_of(
    st.sampled_from(list("<>&;#/!?=\"'-.,:()+$@_ \t\n\r0123456789azAZxX")),
    st.sampled_from(list("味道很好订单电话：，。＜＞＆Ａ１！\u3000\xa0")),
    st.sampled_from(["🙂", "👨", "👩", "❤", "\ufe0f", "e\u0301", "\u0301"]),
    st.sampled_from(
        [
            "\x00",
            "\x01",
            "\x1f",
            "\x7f",
            "\x85",
            "\x9f",
            "\u00ad",
            "\u200b",
            "\u200c",
            "\u200d",
            "\u200e",
            "\u202e",
            "\u2060",
            "\u2066",
            "\ufeff",
        ]
    ),
    st.characters(exclude_categories=("Cs",)),
)
# Fragments that reach the interesting cases: "<" and "&" as text, almost-references, PII.
_FRAGMENTS = st.sampled_from(
    [
        "<3",
        "< b",
        "<$10",
        ">2x",
        "a<",
        "<",
        "AT&T",
        "Q&A",
        "&copy",
        "&notit;",
        "&foo;",
        "&#",
        "&#x",
        "&#65",
        "&;",
        "&&",
        "www.example.com/p?1",
        "https://x.io/a?b=1",
        "jo.doe@example.com",
        "5558675309",
        "555 867 5309",
        "(555) 867-5309",
        "+1 555-867-5309",
        "+15558675309",
        "13812345678",
        "+44 20 7946 0958",
        "order #",
        "订单号 ",
        "call ",
        "$",
        "2019",
        "12.99",
        "👨\u200d👩\u200d👧",
    ]
)
_TEXTS = st.lists(st.one_of(_CHARS, _FRAGMENTS), max_size=40).map("".join)
_MASK_TOKEN = re.compile("(" + "|".join(re.escape(m) for m in MASKS.values()) + ")")


# What a mask token may stand for, as a pattern for one span of the unmasked text.
_MASKED_SPAN = {
    MASKS["phone"]: r"((?:[\s.()+-]*\d){8,}?)",  # 8+ digits and separators
    MASKS["email"]: r"(\S+?@\S+?)",
    MASKS["url"]: r"((?i:https?://|www\.)\S+?)",
}


@settings(max_examples=300, deadline=None)
@given(_TEXTS.filter(lambda t: not has_markup(t)))
def test_text_without_markup_changes_only_in_spacing_and_invisible_characters(text):
    assert strip_html(text) == text
    assert clean_text(text, mask=False) == expected_without_markup(text)


@settings(max_examples=300, deadline=None)
@given(_TEXTS.filter(lambda t: not has_markup(t)))
def test_masking_only_replaces_pii_spans(text):
    unmasked = clean_text(text, mask=False)
    masked = clean_text(text)
    assert masked == mask_pii(unmasked)
    # Reading the masked text back: the text around the mask tokens is the unmasked text, and each
    # token stands for one span of it that looks like what it masks.
    pieces = _MASK_TOKEN.split(masked)
    pattern = "".join(re.escape(p) if i % 2 == 0 else _MASKED_SPAN[p] for i, p in enumerate(pieces))
    assert re.fullmatch(pattern, unmasked) is not None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            _CHARS,
            _FRAGMENTS,
            st.sampled_from(
                [
                    "<b>",
                    "</b>",
                    "<br/>",
                    "<p>",
                    "<!--",
                    "-->",
                    "<!",
                    "<![",
                    "<![CDATA[",
                    "]]>",
                    "<?",
                    "</",
                    "<a href='",
                    "&amp;",
                    "&lt;",
                    "&#123;",
                    "&#x1F600;",
                    "<script>",
                    "</script>",
                    "<style>",
                ]
            ),
        ),
        max_size=40,
    ).map("".join)
)
def test_strip_html_never_fails_and_keeps_trailing_text(text):
    out = strip_html(text)
    assert isinstance(out, str)
    # Words in plain text around markup survive: a marker after the last markup-looking part is kept.
    assert strip_html(text + " ~end~").endswith("~end~")
