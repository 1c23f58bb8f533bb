"""Scores of predictions against the truth: CJK-aware ROUGE, sentiment macro-F1, per-slice metrics.

rouge-score's default tokenizer keeps only ``[a-z0-9]``, so Chinese would score 0 against
anything; :class:`CJKRougeTokenizer` uses :func:`reviewops.text.tokenize` (one token per CJK
character, Latin words whole) and Porter-stems Latin words only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from rouge_score import rouge_scorer, tokenizers

from reviewops.schema import LABELS
from reviewops.text import tokenize

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


# --------------------------------------------------------------------------- ROUGE


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem import porter

    return porter.PorterStemmer()


@lru_cache(maxsize=65536)
def _stem(token: str) -> str:
    # Same rule as rouge-score's DefaultTokenizer: only stem ASCII words longer than 3 chars.
    if len(token) > 3 and token.isascii() and token.isalpha():
        return _stemmer().stem(token)
    return token


class CJKRougeTokenizer(tokenizers.Tokenizer):
    """rouge-score tokenizer: each CJK char is a token, Latin words are lowercased and stemmed."""

    def __init__(self, use_stemmer: bool = True) -> None:
        self.use_stemmer = use_stemmer

    def tokenize(self, text: str) -> list[str]:
        tokens = tokenize(text or "")
        return [_stem(t) for t in tokens] if self.use_stemmer else tokens


@lru_cache(maxsize=2)
def _scorer(use_stemmer: bool = True) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CJKRougeTokenizer(use_stemmer))


def rouge_per_example(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """ROUGE-1/2/L F-measures (0–1) for each prediction/reference pair."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = _scorer()
    out = []
    for pred, ref in zip(predictions, references, strict=True):
        scores = scorer.score(str(ref or ""), str(pred or ""))
        out.append({k: float(scores[k].fmeasure) for k in ROUGE_TYPES})
    return out


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure over the pairs, as floats in 0–1.

    Chinese is scored per character, English per (Porter-stemmed) word.

    >>> rouge_scores(["味道很好"], ["味道很好"])["rougeL"]
    1.0

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    rows = rouge_per_example(predictions, references)
    if not rows:
        raise ValueError("rouge_scores needs at least one prediction/reference pair")
    return {k: float(np.mean([r[k] for r in rows])) for k in ROUGE_TYPES}


# --------------------------------------------------------------------------- sentiment


def sentiment_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1 and per-class F1 for the three sentiment labels.

    Per-class keys (``f1_negative``, ``f1_neutral``, ``f1_positive``) always exist, in
    :data:`reviewops.schema.LABELS` order; a class absent from both truth and predictions
    scores 0 there. ``macro_f1`` averages over the classes that occur in the truth or the
    predictions (sklearn's default), so a language slice with no neutral reviews is not
    penalised for a class it cannot get right or wrong.

    Raises:
        ValueError: lengths differ, the input is empty, or a label is not one of LABELS.
    """
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = [str(y) for y in y_true], [str(y) for y in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("sentiment_metrics needs at least one example")
    unknown = sorted((set(y_true) | set(y_pred)) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown sentiment labels {unknown}; expected {LABELS}")
    per_class = f1_score(y_true, y_pred, labels=LABELS, average=None, zero_division=0)
    present = [lab for lab in LABELS if lab in set(y_true) | set(y_pred)]
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }
    out.update({f"f1_{lab}": float(v) for lab, v in zip(LABELS, per_class, strict=True)})
    return out


# --------------------------------------------------------------------------- slices


def _slice_value(value: Any) -> str:
    # Slice values become part of a metric name; a "/" would add a path level.
    return str(value).replace("/", "_").strip() or "_"


def slice_metrics(
    df: pd.DataFrame,
    by: Sequence[str] = ("language", "category"),
    prediction_col: str = "prediction",
    reference_col: str = "summary",
    label_col: str = "label",
    pred_label_col: str = "pred_label",
    min_rows: int = 1,
    contradiction_col: str = "contradiction",
    polarity_col: str = "review_polarity",
) -> dict[str, float]:
    """ROUGE, sentiment and contradiction metrics per value of each slicing column that exists in ``df``.

    ROUGE uses only rows with both a prediction and a reference (generation may run on a
    sample); sentiment uses rows with both a label and a predicted label; the contradiction
    rates use rows whose ``contradiction_col`` is set (True/False: a summary of a positive or
    negative review, see :mod:`reviewops.evaluation.faithfulness`; None: not judged), with the
    class-balanced ``contradiction_rate_macro`` where ``polarity_col`` holds the review labels.

    Returns:
        Flat metrics such as ``slice/language=zh/rougeL``, ``slice/language=zh/n_summaries``,
        ``slice/language=zh/contradiction_rate``, ``slice/category=toys/sentiment_macro_f1``,
        ``slice/category=toys/n``.
    """
    out: dict[str, float] = {}
    for col in by:
        if col not in df.columns or df[col].isna().all():
            continue
        for value, part in df.groupby(df[col].fillna("unknown").astype(str), sort=True):
            if len(part) < min_rows:
                continue
            prefix = f"slice/{col}={_slice_value(value)}"
            out[f"{prefix}/n"] = float(len(part))
            if prediction_col in part and reference_col in part:
                gen = part[part[prediction_col].notna() & part[reference_col].notna()]
                out[f"{prefix}/n_summaries"] = float(len(gen))
                if len(gen):
                    for k, v in rouge_scores(gen[prediction_col].tolist(), gen[reference_col].tolist()).items():
                        out[f"{prefix}/{k}"] = v
            if label_col in part and pred_label_col in part:
                cls = part[part[label_col].notna() & part[pred_label_col].notna()]
                if len(cls):
                    m = sentiment_metrics(cls[label_col].tolist(), cls[pred_label_col].tolist())
                    out[f"{prefix}/sentiment_accuracy"] = m["accuracy"]
                    out[f"{prefix}/sentiment_macro_f1"] = m["macro_f1"]
            out.update(_contradiction_slice(part, contradiction_col, polarity_col, prefix))
    return out


def _contradiction_slice(part: pd.DataFrame, col: str, polarity_col: str, prefix: str) -> dict[str, float]:
    """``<prefix>/contradiction_rate`` (+ ``_macro`` with review labels) and ``_n`` over the judged rows of ``part``."""
    from reviewops.evaluation.faithfulness import contradiction_rates

    if col not in part:
        return {}
    judged = part[part[col].notna()]
    if not len(judged):
        return {}
    flags = judged[col].astype(bool)
    out = {f"{prefix}/contradiction_rate": float(flags.mean()), f"{prefix}/contradiction_n": float(len(judged))}
    if polarity_col in judged:
        rates = contradiction_rates(judged[polarity_col].tolist(), flags.tolist())
        out[f"{prefix}/contradiction_rate_macro"] = rates["contradiction_rate_macro"]
    return out
