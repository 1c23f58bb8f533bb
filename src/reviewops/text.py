"""Language-aware text helpers shared by cleaning, validation, metrics and drift.

Chinese has no spaces between words, so anything that counts "words" or tokenizes for a
metric treats every CJK ideograph as one token; Latin-script words stay whole.
Lengths are always counted in Unicode code points after NFC normalization, never bytes.
"""

from __future__ import annotations

import re
import unicodedata

# CJK Unified Ideographs (+ Ext A), compatibility ideographs, Hiragana/Katakana, Hangul.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK_CHAR = re.compile(f"[{_CJK}]")
# A token is one CJK character, or a run of letters/digits (Unicode-aware, CJK excluded).
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+(?:['’][^\\W_{_CJK}]+)*", re.UNICODE)


# Characters that show nothing: C0/C1 controls (NUL...) and Unicode format characters (soft hyphen,
# zero-width space/joiners, bidi marks, word joiner, BOM). A text made of these and whitespace
# is empty. Kept as escapes so the pattern reads the same in the committed GX suite JSON.
INVISIBLE_CHARS = (
    r"\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
VISIBLE_CHAR_PATTERN = rf"[^\s{INVISIBLE_CHARS}]"
_VISIBLE = re.compile(VISIBLE_CHAR_PATTERN)


def has_visible_text(text: str | None) -> bool:
    """True when ``text`` has at least one character that is not whitespace, control or format."""
    return text is not None and _VISIBLE.search(text) is not None


def normalize(text: str) -> str:
    """NFC-normalize (full-width ASCII to half-width via NFKC on those chars only)."""
    text = unicodedata.normalize("NFC", text)
    # Full-width ASCII forms (Ａ, １, ！) are common in Chinese text; fold them.
    return text.translate(_FULLWIDTH)


_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20  # ideographic space


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split text into tokens: each CJK char is a token, Latin words stay whole.

    >>> tokenize("Great taste! 味道很好")
    ['great', 'taste', '味', '道', '很', '好']
    """
    if lowercase:
        text = text.lower()
    return _TOKEN.findall(normalize(text))


def char_length(text: str) -> int:
    """Length in Unicode code points after normalization (not bytes)."""
    return len(normalize(text))


def word_count(text: str) -> int:
    """Number of tokens as :func:`tokenize` counts them (CJK chars count one each)."""
    return len(tokenize(text, lowercase=False))


def cjk_share(text: str) -> float:
    """Share of CJK characters among non-space characters (0 for empty text)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if CJK_CHAR.match(c)) / len(chars)


def non_ascii_share(text: str) -> float:
    """Share of non-ASCII characters among non-space characters."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if ord(c) > 127) / len(chars)


def detect_language(text: str) -> str:
    """A cheap script-based language guess: ``zh`` when CJK dominates, else ``en``.

    Enough to route and slice the two languages ReviewOps ships data for; a user with
    other languages maps their own ``language`` column at ingest.
    """
    return "zh" if cjk_share(text) >= 0.3 else "en"
