"""Cleaning, PII masking, deduplication and label mapping of validated reviews.

Every input row ends up in exactly one of three frames: ``clean`` (goes on to splitting),
``duplicates`` (dropped as an exact or normalized copy of a kept row, with the id it
duplicates) or ``rejected`` (nothing left after cleaning, with a reason). The report's
counts add up to the input, and :func:`preprocess` asserts it. HTML removal is
:mod:`reviewops.data.markup`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import PreprocessConfig
from reviewops.data.markup import strip_html
from reviewops.schema import LABEL2ID, rating_to_label
from reviewops.text import CJK_CHAR, INVISIBLE_CHARS, VISIBLE_CHAR_PATTERN, normalize

MASKS = {"url": "[URL]", "email": "[EMAIL]", "phone": "[PHONE]"}

# ------------------------------------------------------------------------------- PII masks

_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'，。）)]+", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Phone numbers, in the order tried at each position (digits may touch CJK text, "电话13812345678",
# but not Latin letters or other digits):
# * grouped: optional +country code or trunk "1", then three groups of digits separated by a
#   space, dot or dash, the first possibly in parentheses: "(555) 867-5309", "+44 20 7946 0958",
#   "1-555-867-5309". The last two groups have 3-4 digits, which dates ("2024-05-01"), prices and
#   versions do not.
# * e164: "+" and 8-15 digits, "+15558675309".
# * bare: a run of exactly 10 digits shaped like a North American number (area code and exchange
#   starting 2-9, optional leading 1), or an 11-digit Chinese mobile number (1[3-9]...). A bare run
#   is ambiguous, so it must not touch a longer letter/digit run (tracking codes, ISBN-13, batch
#   numbers), follow a currency sign or decimal point, or precede a currency word, and
#   `_phone_or_reference` rejects it after an order/reference keyword ("order no. 5558675309").
_PHONE = re.compile(
    # Every alternative starts with a digit, "+" or "(": checked first, it skips other positions fast.
    r"(?=[\d+(])(?:(?P<grouped>(?<![A-Za-z0-9_.])(?:\+\d{1,3}[\s.-]?|1[\s.-])?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])"
    r"\d{3,4}[\s.-]\d{3,4}(?![A-Za-z0-9_]|[.,-]\d))"
    r"|(?P<e164>(?<![A-Za-z0-9_+])\+[1-9]\d{7,14}(?![A-Za-z0-9_]|[.,-]\d))"
    r"|(?P<bare>(?<![A-Za-z0-9_$€£¥₹#])(?<!\d[.,])(?:1?[2-9]\d{2}[2-9]\d{6}|1[3-9]\d{9})"
    r"(?![A-Za-z0-9_]|[.,]\d|\s?(?:(?:yen|usd|rmb|cny|jpy|eur|euros?|gbp|dollars?)\b|元|円|块))))",
    re.IGNORECASE,
)
# The last keyword before a bare number decides: a reference keyword ("order", "sku", "#",
# "订单"...) within two words makes it a reference; a phone keyword after it ("order hotline,
# call ...") makes it a phone number again.
_NUMBER_CONTEXT = re.compile(
    r"(?P<ref>\b(?:order|orders|invoice|ref|reference|tracking|track|sku|isbn|model|item|serial|part|"
    r"asin|upc|ean|receipt|transaction|confirmation|account|acct|po|price|cost|total|paid|usd|rmb|cny|jpy"
    r"|eur|gbp)\b|\bno\.|#|订单|单号|编号|货号|型号|运单|快递|价格|价钱)"
    r"|(?P<phone>\b(?:call|phone|tel|telephone|mobile|cell|fax|text|whatsapp|contact|hotline)\b"
    r"|电话|手机|联系|致电|热线)",
    re.IGNORECASE,
)
# "Two words" between the keyword and the number: Latin words, or single CJK characters (Chinese
# has no spaces, so a whole CJK run is not one word: "订单号 ..." yes, "订单很快到了，卖家..." no).
_WORD = rf"(?:(?:(?!{CJK_CHAR.pattern})\w)+|{CJK_CHAR.pattern})"
_WITHIN_TWO_WORDS = re.compile(rf"(?:\W*{_WORD}){{0,2}}\W*")
_CONTEXT_CHARS = 40
_DIGITS = re.compile(r"\d{3}")


def _phone_or_reference(match: re.Match[str]) -> str:
    """``[PHONE]`` for a phone number; a bare digit run labelled as a reference stays."""
    if match.lastgroup == "bare":
        window = match.string[max(0, match.start() - _CONTEXT_CHARS) : match.start()]
        keywords = list(_NUMBER_CONTEXT.finditer(window))
        last = keywords[-1] if keywords else None
        if last is not None and last.group("ref") and _WITHIN_TWO_WORDS.fullmatch(window, last.end()):
            return match.group()
    return MASKS["phone"]


def mask_pii(text: str) -> str:
    """Replace URLs, emails and phone numbers with ``[URL]``, ``[EMAIL]``, ``[PHONE]``.

    Prices, years, dates, quantities and order/reference numbers are not phone numbers:
    ``order #5558675309`` and ``SKU 2041234567`` stay, ``5558675309`` and ``13812345678`` are masked.
    """
    # Cheap substring tests skip the regexes for the many reviews that cannot match them.
    lowered = text.lower()
    if "http" in lowered or "www." in lowered:
        text = _URL.sub(MASKS["url"], text)
    if "@" in text:
        text = _EMAIL.sub(MASKS["email"], text)
    if _DIGITS.search(text):
        text = _PHONE.sub(_phone_or_reference, text)
    return text


# -------------------------------------------------------------------------- whole cleaning

# Invisible characters (controls, format characters) that are not whitespace: dropped. The
# whitespace ones (tab, newline, CR, NEL...) are collapsed with the other whitespace instead.
# (The class comes first so that the regex engine scans for it fast; the lookbehind then excludes
# whitespace.)
_INVISIBLE = re.compile(rf"[{INVISIBLE_CHARS}](?<!\s)")
_VISIBLE = re.compile(VISIBLE_CHAR_PATTERN)
_JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: part of emoji sequences and Persian/Indic words
_SPACE = re.compile(r"\s+")
_NONWORD = re.compile(r"[\W_]+", re.UNICODE)


def _drop_invisible_char(match: re.Match[str]) -> str:
    text, i = match.string, match.start()
    if (
        match.group() in _JOINERS
        and 0 < i < len(text) - 1
        and _VISIBLE.match(text, i - 1)
        and _VISIBLE.match(text, i + 1)
    ):
        return match.group()
    return ""


def drop_invisible(text: str) -> str:
    """Remove control and format characters that show nothing (NUL, ZWSP, BOM, soft hyphen, bidi marks).

    Whitespace controls (tab, newline, CR) are left for whitespace collapsing. The zero-width
    (non-)joiner is kept between two visible characters, where it shapes the text (emoji
    sequences such as man-ZWJ-woman-ZWJ-girl, Persian and Indic words).
    """
    if _INVISIBLE.search(text) is None:
        return text
    return _INVISIBLE.sub(_drop_invisible_char, text)


def clean_text(text: str | None, mask: bool = True) -> str:
    """HTML removal, invisible-character removal, Unicode normalization, whitespace collapsing, PII masking.

    A text with nothing visible left (only tags, NULs, zero-width characters...) becomes ``""``.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    text = normalize(drop_invisible(strip_html(str(text))))
    # Collapsing before masking: the masks see one spacing however the review was typed.
    text = _SPACE.sub(" ", text).strip()
    return mask_pii(text) if mask else text


def dedup_key(text: str) -> str:
    """Key under which near-duplicates collide: case, punctuation and spacing removed."""
    return _NONWORD.sub("", text.casefold())


@dataclass
class PreprocessResult:
    """Outputs of :func:`preprocess` and the counts that prove nothing was lost."""

    clean: pd.DataFrame
    duplicates: pd.DataFrame
    rejected: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def preprocess(df: pd.DataFrame, cfg: PreprocessConfig) -> PreprocessResult:
    """Clean validated canonical rows and map ratings to sentiment labels.

    Args:
        df: validated canonical batch (see docs/CONTRACTS.md).
        cfg: preprocessing knobs.

    Returns:
        clean rows (with ``label``/``label_id``), duplicates (with ``duplicate_of`` and
        ``duplicate_kind``), rejected rows (with ``quarantine_reason``) and a report.
    """
    out = df.reset_index(drop=True).copy()
    raw_text = out["text"].fillna("").astype(str)
    truncated = clean_columns(out, raw_text, cfg)

    empty = out["text"].str.len() == 0
    rejected = out[empty].assign(quarantine_reason="text_empty_after_cleaning")
    kept = out[~empty]

    dup_mask, kinds, dup_of = find_duplicates(kept, raw_text, cfg.dedup)
    duplicates = kept[dup_mask].assign(duplicate_kind=kinds[dup_mask], duplicate_of=dup_of[dup_mask])
    clean = kept[~dup_mask].copy()
    clean["label"] = clean["rating"].map(rating_to_label)
    clean["label_id"] = clean["label"].map(LABEL2ID).astype("int64")

    report = _report(len(df), clean, duplicates, rejected, truncated)
    assert report["clean_rows"] + report["duplicates"] + report["rejected_empty_after_cleaning"] == len(df)
    return PreprocessResult(
        clean.reset_index(drop=True), duplicates.reset_index(drop=True), rejected.reset_index(drop=True), report
    )


def clean_columns(out: pd.DataFrame, raw_text: pd.Series, cfg: PreprocessConfig) -> int:
    """Clean ``text`` and ``summary`` in place and cut texts to ``max_text_chars``; returns how many were cut."""
    out["text"] = [clean_text(t, cfg.mask_pii) for t in raw_text]
    if "summary" in out:
        out["summary"] = [
            None if s is None or (isinstance(s, float) and np.isnan(s)) else clean_text(s, cfg.mask_pii)
            for s in out["summary"]
        ]
    lengths = out["text"].str.len()
    truncated = int((lengths > cfg.max_text_chars).sum())
    out.loc[lengths > cfg.max_text_chars, "text"] = out.loc[lengths > cfg.max_text_chars, "text"].str.slice(
        0, cfg.max_text_chars
    )
    return truncated


def find_duplicates(kept: pd.DataFrame, raw_text: pd.Series, dedup: bool) -> tuple[pd.Series, pd.Series, pd.Series]:
    """``(is_duplicate, kind, duplicate_of)`` per kept row: exact copies first, then normalized ones.

    The first row with a key is kept; later rows with the same raw text (``exact``) or the same
    :func:`dedup_key` of the cleaned text (``normalized``) point at its ``review_id``.
    """
    dup_mask = pd.Series(False, index=kept.index)
    kinds = pd.Series("", index=kept.index, dtype=object)
    dup_of = pd.Series("", index=kept.index, dtype=object)
    if dedup and len(kept):
        exact_key = raw_text[kept.index]
        norm_key = kept["text"].map(dedup_key)
        for kind, key in (("exact", exact_key), ("normalized", norm_key)):
            candidates = key[~dup_mask]
            first_id = kept.loc[candidates.index, "review_id"].groupby(candidates.values).transform("first")
            is_dup = candidates.duplicated(keep="first")
            idx = candidates.index[is_dup.values]
            dup_mask.loc[idx] = True
            kinds.loc[idx] = kind
            dup_of.loc[idx] = first_id.loc[idx].values
    return dup_mask, kinds, dup_of


def _report(
    input_rows: int, clean: pd.DataFrame, duplicates: pd.DataFrame, rejected: pd.DataFrame, truncated: int
) -> dict[str, Any]:
    """The preprocess report: where every input row went, and what cleaning did."""
    return {
        "input_rows": input_rows,
        "clean_rows": len(clean),
        "duplicates": len(duplicates),
        "duplicates_exact": int((duplicates["duplicate_kind"] == "exact").sum()),
        "duplicates_normalized": int((duplicates["duplicate_kind"] == "normalized").sum()),
        "rejected_empty_after_cleaning": len(rejected),
        "truncated_long_texts": truncated,
        "pii_masked_rows": int(clean["text"].str.contains(r"\[(?:URL|EMAIL|PHONE)\]", regex=True).sum()),
        "labels": {k: int(v) for k, v in clean["label"].value_counts().sort_index().items()},
    }
