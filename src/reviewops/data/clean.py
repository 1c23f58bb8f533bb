"""Cleaning, PII masking, deduplication and label mapping of validated reviews.

Every input row ends up in exactly one of three frames: ``clean`` (goes on to splitting),
``duplicates`` (dropped as an exact or normalized copy of a kept row, with the id it
duplicates) or ``rejected`` (nothing left after cleaning, with a reason). The report's
counts add up to the input, and :func:`preprocess` asserts it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reviewops.config import PreprocessConfig
from reviewops.schema import LABEL2ID, rating_to_label
from reviewops.text import normalize

MASKS = {"url": "[URL]", "email": "[EMAIL]", "phone": "[PHONE]"}

_BREAK_TAGS = re.compile(r"<\s*(br|p|/p|div|/div|li)\b[^>]*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]{0,2000}>")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'，。）)]+", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Phone numbers: optional +country code, then 7+ digits in groups separated by space, dot,
# dash or parentheses; or a bare 11-digit Chinese mobile number. Years ("2019") and prices
# ("$12.99") have too few digits to match.
_PHONE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w])"
    r"|(?<!\d)1[3-9]\d{9}(?!\d)"
)
_DIGITS = re.compile(r"\d{3}")
_SPACE = re.compile(r"\s+")
_NONWORD = re.compile(r"[\W_]+", re.UNICODE)


def strip_html(text: str) -> str:
    """Remove tags, turn line-break tags into spaces and decode entities (twice, for ``&amp;lt;``)."""
    if "<" not in text and "&" not in text:  # fast path: most reviews have no markup
        return text
    text = _BREAK_TAGS.sub(" ", text)
    text = _TAGS.sub("", text)
    for _ in range(2):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = _TAGS.sub("", decoded)
    return text


def mask_pii(text: str) -> str:
    """Replace URLs, emails and phone numbers with ``[URL]``, ``[EMAIL]``, ``[PHONE]``."""
    # Cheap substring tests skip the regexes for the many reviews that cannot match them.
    lowered = text.lower()
    if "http" in lowered or "www." in lowered:
        text = _URL.sub(MASKS["url"], text)
    if "@" in text:
        text = _EMAIL.sub(MASKS["email"], text)
    if _DIGITS.search(text):
        text = _PHONE.sub(MASKS["phone"], text)
    return text


def clean_text(text: str | None, mask: bool = True) -> str:
    """HTML removal, Unicode normalization, PII masking and whitespace collapsing."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    text = normalize(strip_html(str(text)))
    if mask:
        text = mask_pii(text)
    return _SPACE.sub(" ", text).strip()


def dedup_key(text: str) -> str:
    """Key under which near-duplicates collide: case, punctuation and spacing removed."""
    return _NONWORD.sub("", text.casefold())


@dataclass
class PreprocessResult:
    """Outputs of :func:`preprocess` and the counts that prove nothing was lost."""

    clean: pd.DataFrame
    duplicates: pd.DataFrame
    rejected: pd.DataFrame
    report: dict = field(default_factory=dict)


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
    out["text"] = [clean_text(t, cfg.mask_pii) for t in raw_text]
    if "summary" in out:
        out["summary"] = [None if s is None or (isinstance(s, float) and np.isnan(s))
                          else clean_text(s, cfg.mask_pii) for s in out["summary"]]
    lengths = out["text"].str.len()
    truncated = int((lengths > cfg.max_text_chars).sum())
    out.loc[lengths > cfg.max_text_chars, "text"] = out.loc[
        lengths > cfg.max_text_chars, "text"].str.slice(0, cfg.max_text_chars)

    empty = out["text"].str.len() == 0
    rejected = out[empty].assign(quarantine_reason="text_empty_after_cleaning")
    kept = out[~empty]

    dup_mask = pd.Series(False, index=kept.index)
    kinds = pd.Series("", index=kept.index, dtype=object)
    dup_of = pd.Series("", index=kept.index, dtype=object)
    if cfg.dedup and len(kept):
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
    duplicates = kept[dup_mask].assign(duplicate_kind=kinds[dup_mask], duplicate_of=dup_of[dup_mask])
    clean = kept[~dup_mask].copy()
    clean["label"] = clean["rating"].map(rating_to_label)
    clean["label_id"] = clean["label"].map(LABEL2ID).astype("int64")

    report = {
        "input_rows": len(df),
        "clean_rows": len(clean),
        "duplicates": len(duplicates),
        "duplicates_exact": int((duplicates["duplicate_kind"] == "exact").sum()),
        "duplicates_normalized": int((duplicates["duplicate_kind"] == "normalized").sum()),
        "rejected_empty_after_cleaning": len(rejected),
        "truncated_long_texts": truncated,
        "pii_masked_rows": int(clean["text"].str.contains(r"\[(?:URL|EMAIL|PHONE)\]", regex=True).sum()),
        "labels": {k: int(v) for k, v in clean["label"].value_counts().sort_index().items()},
    }
    assert report["clean_rows"] + report["duplicates"] + report["rejected_empty_after_cleaning"] == len(df)
    return PreprocessResult(clean.reset_index(drop=True), duplicates.reset_index(drop=True),
                            rejected.reset_index(drop=True), report)
