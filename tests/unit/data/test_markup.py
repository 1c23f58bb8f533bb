"""HTML removal: markup goes, every word (and text that only looks like markup) stays."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from reviewops.data.markup import strip_html


def test_strip_html_and_entities():
    assert strip_html("Good<br />stuff &amp; <b>cheap</b> &quot;ok&quot;") == 'Good stuff & cheap "ok"'
    # Decoded once: the review's author wrote "&lt;b&gt;x", as text.
    assert strip_html("&amp;lt;b&amp;gt;x") == "&lt;b&gt;x"


@pytest.mark.parametrize(
    "text",
    [
        "I <3 this coffee, it is better than > any other brand",
        "I paid <$10 for it and it is >2x better",
        "a < b and c > d, 3<4",
        "rated <5 stars",
        "ends with <",
        "ends with <!",
        "I think a<b is true",  # an unterminated "tag" at the end is text
        "see x <a href=",
        "unterminated comment <!-- here > and <",
        "<味道> 很好",  # "<" + a non-ASCII letter cannot open a tag
        "odd <![ 3 ]> declaration",  # the stdlib raises AssertionError on this one
    ],
)
def test_strip_html_keeps_text_with_angle_brackets(text):
    assert strip_html(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("&lt;3 this", "<3 this"),
        ("&lt;b&gt;bold&lt;/b&gt;", "<b>bold</b>"),  # decoded text is not parsed again
        ("AT&T, Q&A, fish&chips & more", "AT&T, Q&A, fish&chips & more"),
        ("&copy &notice &amp &lt", "&copy &notice &amp &lt"),  # no ";": not a reference
        ("&notit; &foo; &#65 &#xZZ;", "&notit; &foo; &#65 &#xZZ;"),  # unknown name / not terminated
        ("&copy; &#123; &#x1F600; &AMP; &frac12;", "© { 😀 & ½"),
        ("<b>AT&T</b> &amp; Q&A &lt;3", "AT&T & Q&A <3"),  # the same rules with tags around
        ("<i>&#" + "9" * 5000 + ";</i>", "&#" + "9" * 5000 + ";"),  # no int() of 5000 digits
    ],
)
def test_strip_html_decodes_only_well_formed_references_once(text, expected):
    assert strip_html(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Good<br>stuff<br/>again<BR />end", "Good stuff again end"),
        ("<p>one</p><p>two</p><ul><li>a</li><li>b</li></ul>", " one  two   a  b  "),
        ("un<b>believ</b>able <span class='x'>deal</span>", "unbelievable deal"),
        ("a<!-- hidden -->b <!DOCTYPE html>c <?xml version='1.0'?>d", "ab c d"),
        ('<a href="https://x.io/?a=1&b=2" title="x>y">link</a>', "link"),
        (
            "<script>alert(1)</script>after <style>p { color: red }</style>text",
            " alert(1) after  p { color: red } text",
        ),
        ("<![CDATA[kept]]> text", "kept text"),
        ("<h1>Title</h1><table><tr><td>1</td><td>2</td></tr></table>", " Title    1  2   "),
    ],
)
def test_strip_html_removes_markup_and_separates_blocks(text, expected):
    assert strip_html(text) == expected


def test_strip_html_fast_path_and_threads():
    plain = "No markup here, just a review."
    assert strip_html(plain) is plain
    texts = [f"<p>review {i}</p> &amp; <b>{i}</b> <3" for i in range(2000)]
    expected = [f" review {i}  & {i} <3" for i in range(2000)]
    with ThreadPoolExecutor(8) as pool:  # no parser state is shared between calls
        assert list(pool.map(strip_html, texts)) == expected
