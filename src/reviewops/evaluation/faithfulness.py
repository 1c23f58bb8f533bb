"""Faithfulness of summaries: does a summary's sentiment contradict its review's?

The sentiment model reads each generated summary; a summary whose polarity is the opposite
of its review's (positive vs negative) is a *contradiction*: "Terrible coffee, tasted burnt"
summarized as "Exceeded my expectations". Neutral on either side is never a contradiction: a
neutral title ("Dog food") for a negative review says too little, not the opposite.

Which review polarity to compare with:

* evaluation uses the review's **gold label** where the row has one, so a sentiment mistake on
  the review is not charged to the summarizer (and the rate does not move with the classifier's
  accuracy on reviews); rows without a label fall back to the prediction;
* the service and bulk scoring have no gold label: they use the **predicted** review label (the
  one they return anyway), so their flag is as good as the classifier on both texts.

The functions on labels and probabilities are pure; :func:`check_summaries` is the one helper
that calls a classifier. Nothing here keeps per-call state, so a served model may be shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from reviewops.schema import LABELS

POLAR = ("negative", "positive")


class SupportsProba(Protocol):
    """A sentiment model as :class:`reviewops.models.sentiment.SentimentClassifier` is one."""

    def predict_proba(self, texts: list[str], batch_size: int = ...) -> np.ndarray: ...


def contradicts(review_label: Any, summary_label: Any) -> bool:
    """True when one label is ``positive`` and the other ``negative``.

    >>> contradicts("negative", "positive"), contradicts("negative", "neutral"), contradicts(None, "positive")
    (True, False, False)
    """
    return review_label in POLAR and summary_label in POLAR and review_label != summary_label


def contradiction_flags(review_labels: Sequence[Any], summary_labels: Sequence[Any]) -> list[bool]:
    """:func:`contradicts` for each (review, summary) pair; a missing label is never a contradiction.

    Raises:
        ValueError: the sequences differ in length.
    """
    if len(review_labels) != len(summary_labels):
        raise ValueError(f"{len(review_labels)} review labels but {len(summary_labels)} summary labels")
    return [contradicts(r, s) for r, s in zip(review_labels, summary_labels, strict=True)]


def labels_from_proba(proba: np.ndarray) -> list[str]:
    """The most probable label of each row of a ``(n, 3)`` probability array in :data:`LABELS` order.

    Raises:
        ValueError: the array is not ``(n, len(LABELS))``.
    """
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[1] != len(LABELS):
        raise ValueError(f"probabilities of shape {proba.shape}; expected (n, {len(LABELS)}) in {LABELS} order")
    return [LABELS[i] for i in proba.argmax(axis=1)]


def contradiction_flags_from_proba(review_proba: np.ndarray, summary_proba: np.ndarray) -> list[bool]:
    """Contradiction of each summary with its review, from both texts' sentiment probabilities.

    The service and scoring path: they already hold the review's probabilities, so only the
    summaries need a forward pass (see :func:`check_summaries`).

    Raises:
        ValueError: shapes differ or are not ``(n, 3)``.
    """
    return contradiction_flags(labels_from_proba(review_proba), labels_from_proba(summary_proba))


@dataclass(frozen=True)
class SummaryCheck:
    """The judge's reading of each summary and whether it contradicts its review."""

    summary_labels: list[str]
    review_labels: list[str]
    contradiction: list[bool]


def check_summaries(
    classifier: SupportsProba,
    summaries: Sequence[str],
    *,
    review_labels: Sequence[str] | None = None,
    review_proba: np.ndarray | None = None,
    reviews: Sequence[str] | None = None,
    batch_size: int = 32,
) -> SummaryCheck:
    """Score ``summaries`` with ``classifier`` and flag those that contradict their review.

    The review's polarity comes from the first of ``review_labels`` (gold labels, or labels the
    caller already predicted), ``review_proba`` (probabilities the caller already holds) or
    ``reviews`` (texts the classifier then reads too).

    Raises:
        ValueError: none of the three review inputs is given, or lengths differ.
    """
    summaries = [str(s) if s is not None else "" for s in summaries]
    if review_labels is not None:
        rev = [str(label) for label in review_labels]
    elif review_proba is not None:
        rev = labels_from_proba(review_proba)
    elif reviews is not None:
        rev = labels_from_proba(classifier.predict_proba([str(t) for t in reviews], batch_size=batch_size))
    else:
        raise ValueError("check_summaries needs review_labels, review_proba or reviews")
    if len(rev) != len(summaries):
        raise ValueError(f"{len(rev)} reviews but {len(summaries)} summaries")
    summ = labels_from_proba(classifier.predict_proba(summaries, batch_size=batch_size)) if summaries else []
    return SummaryCheck(summary_labels=summ, review_labels=rev, contradiction=contradiction_flags(rev, summ))


def contradiction_rates(review_labels: Sequence[Any], flags: Sequence[bool]) -> dict[str, float]:
    """The contradiction rate over the summaries of polar (positive or negative) reviews.

    Neutral reviews cannot be contradicted, so they are left out of the denominator. Reviews are
    mostly positive, so the plain share hides a summarizer that writes upbeat titles for every
    negative review (Fine Food sample: 60% of negative reviews, 2.5% of positive ones);
    ``contradiction_rate_macro``, the mean of the per-polarity rates, does not, and is the one
    the gate caps (as macro-F1 is preferred to accuracy for the same skew).

    Returns:
        ``contradiction_rate`` (NaN when no review is polar), ``contradiction_rate_negative`` /
        ``contradiction_rate_positive`` (over negative / positive reviews only, NaN when there are
        none), ``contradiction_rate_macro`` (their mean, over the polarities present) and
        ``contradiction_n`` (the polar reviews judged).

    Raises:
        ValueError: the sequences differ in length.
    """
    if len(review_labels) != len(flags):
        raise ValueError(f"{len(review_labels)} review labels but {len(flags)} flags")
    out: dict[str, float] = {}
    polar = [bool(f) for r, f in zip(review_labels, flags, strict=True) if r in POLAR]
    out["contradiction_rate"] = float(np.mean(polar)) if polar else float("nan")
    for label in POLAR:
        part = [bool(f) for r, f in zip(review_labels, flags, strict=True) if r == label]
        out[f"contradiction_rate_{label}"] = float(np.mean(part)) if part else float("nan")
    per_polarity = [out[f"contradiction_rate_{label}"] for label in POLAR if label in review_labels]
    out["contradiction_rate_macro"] = float(np.mean(per_polarity)) if per_polarity else float("nan")
    out["contradiction_n"] = float(len(polar))
    return out
