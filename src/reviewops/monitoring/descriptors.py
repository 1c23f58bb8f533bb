"""Text descriptors of every row (length, CJK-aware words, non-ASCII, language, OOV, PII masks) and the vocabulary."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.text import CJK_CHAR, tokenize

NUMERIC_DESCRIPTORS = ["char_length", "word_count", "non_ascii_share", "oov_rate", "pii_mask_rate"]

_WS = re.compile(r"\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f\s]")


def _mask_tokens() -> tuple[str, ...]:
    """The PII mask tokens the cleaning stage writes (``[EMAIL]``, ``[PHONE]``, ``[URL]``)."""
    try:
        from reviewops.data.clean import MASKS

        return tuple(sorted(MASKS.values()))
    except ImportError:  # pragma: no cover - clean.py is part of the package
        return ("[EMAIL]", "[PHONE]", "[URL]")


def as_texts(values: Iterable[Any]) -> pd.Series:
    """``values`` as a Series of strings, missing values as empty text."""
    return pd.Series(values, dtype=object).where(lambda s: s.notna(), "").astype(str)


def _scan(
    uniques: Sequence[str], vocab: set[str] | None, mask_re: re.Pattern, singletons: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Descriptors of distinct texts, one Python pass each (the hot loop at 1M rows).

    ``singletons`` (leave-one-out OOV for the reference) maps a token seen in exactly one
    reference document to that document's index; ``vocab`` is then ignored.
    """
    n = len(uniques)
    char_len = np.zeros(n, np.int64)
    words = np.zeros(n, np.int64)
    non_ascii = np.zeros(n, np.float64)
    cjk = np.zeros(n, np.float64)
    oov = np.full(n, np.nan if vocab is None and singletons is None else 0.0)
    masks = np.zeros(n, np.float64)
    for i, text in enumerate(uniques):
        toks = tokenize(text)
        n_tok = len(toks)
        words[i] = n_tok
        if text.isascii():
            # Fast path for most English reviews: NFC and full-width folding change nothing.
            char_len[i] = len(text)
        else:
            char_len[i] = len(unicodedata.normalize("NFC", text))
            nonspace = len(text) - len(_WS.findall(text))
            if nonspace:
                non_ascii[i] = len(_NON_ASCII.findall(text)) / nonspace
                cjk[i] = len(CJK_CHAR.findall(text)) / nonspace
        if n_tok:
            if singletons is not None:
                oov[i] = sum(1 for t in toks if singletons.get(t) == i) / n_tok
            elif vocab is not None:
                oov[i] = sum(1 for t in toks if t not in vocab) / n_tok
            if "[" in text:
                masks[i] = len(mask_re.findall(text)) / n_tok
    return {
        "char_length": char_len,
        "word_count": words,
        "non_ascii_share": non_ascii,
        "cjk_share": cjk,
        "oov_rate": oov,
        "pii_mask_rate": masks,
    }


def _assemble(index: pd.Index, codes: np.ndarray, cols: Mapping[str, np.ndarray]) -> pd.DataFrame:
    out = pd.DataFrame({name: values[codes] for name, values in cols.items()}, index=index)
    out.insert(4, "detected_language", np.where(out["cjk_share"].to_numpy() >= 0.3, "zh", "en"))
    return out


def _mask_pattern() -> re.Pattern:
    return re.compile("|".join(re.escape(m) for m in _mask_tokens()))


def compute_descriptors(df: pd.DataFrame, vocab: set[str] | None = None) -> pd.DataFrame:
    """Per-row text descriptors of ``df["text"]``, computed on every row.

    Distinct texts are scanned once (``pd.factorize``), so exact duplicates cost nothing.

    Args:
        df: a frame with a ``text`` column (NaN counts as empty text).
        vocab: training vocabulary (tokens of :func:`reviewops.text.tokenize`); ``None`` leaves
            ``oov_rate`` NaN.

    Returns:
        A frame on ``df.index`` with ``char_length`` (code points after NFC), ``word_count``
        (CJK-aware: one per ideograph), ``non_ascii_share`` and ``cjk_share`` (of non-space
        chars), ``detected_language`` (``zh`` when CJK share >= 0.3, as
        :func:`reviewops.text.detect_language`), ``oov_rate`` (share of tokens not in ``vocab``)
        and ``pii_mask_rate`` (share of tokens that are ``[EMAIL]``/``[PHONE]``/``[URL]`` masks).
    """
    if "text" not in df.columns:
        raise ReviewOpsError("compute_descriptors: the frame has no 'text' column")
    codes, uniques = pd.factorize(as_texts(df["text"]), use_na_sentinel=False)
    cols = _scan(list(uniques), vocab, _mask_pattern())
    return _assemble(df.index, codes, cols)


def reference_descriptors(df: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """Descriptors of the reference with *leave-one-out* OOV, and its vocabulary.

    Measured against a vocabulary built from the same rows, every reference row would have an
    OOV rate of 0 and any new batch would look drifted. Leave-one-out (a token is OOV for a row
    when no *other* reference row contains it) estimates what an unseen batch from the same
    distribution scores.

    Args:
        df: the reference frame (a ``text`` column).

    Returns:
        The descriptors (as :func:`compute_descriptors`) and the set of reference tokens.
    """
    codes, uniques = pd.factorize(as_texts(df["text"]), use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques)) if len(codes) else np.zeros(0, np.int64)
    doc_freq: Counter[str] = Counter()
    first_doc: dict[str, int] = {}
    for i, text in enumerate(uniques):
        for tok in set(tokenize(text)):
            doc_freq[tok] += int(counts[i])
            first_doc.setdefault(tok, i)
    singletons = {tok: first_doc[tok] for tok, n in doc_freq.items() if n == 1}
    cols = _scan(list(uniques), None, _mask_pattern(), singletons=singletons)
    return _assemble(df.index, codes, cols), set(doc_freq)


def build_vocab(texts: Iterable[str]) -> set[str]:
    """The set of tokens (:func:`reviewops.text.tokenize`, lowercased) in ``texts``."""
    vocab: set[str] = set()
    for text in pd.unique(as_texts(texts)):
        vocab.update(tokenize(text))
    return vocab
