"""Contradiction between a summary's sentiment and its review's: the pure rules and the classifier helper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reviewops.evaluation.faithfulness import (
    check_summaries,
    contradiction_flags,
    contradiction_flags_from_proba,
    contradiction_rates,
    contradicts,
    labels_from_proba,
)
from tests.unit.evaluation.fakes import keyword_classifier

NEG, NEU, POS = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]


class KeywordProba:
    """The keyword classifier as probabilities, recording what it was asked to read."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.calls.append(list(texts))
        rows = {"negative": NEG, "neutral": NEU, "positive": POS}
        return np.array([rows[label] for label in keyword_classifier(texts)], dtype=np.float32).reshape(-1, 3)


def test_only_positive_against_negative_is_a_contradiction():
    assert contradicts("negative", "positive") and contradicts("positive", "negative")
    for review, summary in [
        ("negative", "negative"),
        ("positive", "positive"),
        ("negative", "neutral"),  # says too little, not the opposite
        ("neutral", "positive"),
        ("neutral", "negative"),
        (None, "positive"),
        (float("nan"), "negative"),
        ("positive", None),
    ]:
        assert not contradicts(review, summary), (review, summary)
    assert contradiction_flags(["negative", "neutral", "positive"], ["positive", "negative", "positive"]) == [
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="2 review labels but 1 summary labels"):
        contradiction_flags(["negative", "positive"], ["positive"])


def test_flags_from_probabilities_use_the_argmax_in_label_order():
    reviews = np.array([NEG, POS, NEU, [0.45, 0.10, 0.45001]])
    summaries = np.array([POS, NEG, POS, NEG])
    assert labels_from_proba(reviews) == ["negative", "positive", "neutral", "positive"]
    assert contradiction_flags_from_proba(reviews, summaries) == [True, True, False, True]
    with pytest.raises(ValueError, match=r"expected \(n, 3\)"):
        labels_from_proba(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2 review labels but 1 summary labels"):
        contradiction_flags_from_proba(reviews[:2], summaries[:1])


def test_rates_leave_neutral_reviews_out_of_the_denominator():
    reviews = ["negative", "negative", "negative", "negative", "positive", "positive", "neutral", "neutral"]
    flags = [True, True, True, False, False, False, False, False]
    rates = contradiction_rates(reviews, flags)
    assert rates["contradiction_rate"] == pytest.approx(3 / 6)
    assert rates["contradiction_rate_negative"] == pytest.approx(3 / 4)
    assert rates["contradiction_rate_positive"] == 0.0
    assert rates["contradiction_rate_macro"] == pytest.approx((3 / 4 + 0.0) / 2)  # each polarity weighs the same
    assert rates["contradiction_n"] == 6.0
    only_neutral = contradiction_rates(["neutral"], [False])
    assert math.isnan(only_neutral["contradiction_rate"]) and only_neutral["contradiction_n"] == 0.0
    only_positive = contradiction_rates(["positive", "positive"], [True, False])
    assert math.isnan(only_positive["contradiction_rate_negative"])
    assert only_positive["contradiction_rate_macro"] == 0.5  # over the polarities present
    assert math.isnan(only_neutral["contradiction_rate_macro"])


def test_check_summaries_reads_the_summaries_and_takes_the_review_polarity_given():
    clf = KeywordProba()
    summaries = ["Exceeded my expectations", "Terrible, not worth it", "It is okay"]
    gold = check_summaries(clf, summaries, review_labels=["negative", "negative", "positive"])
    assert gold.summary_labels == ["positive", "negative", "neutral"]
    assert gold.contradiction == [True, False, False]
    assert clf.calls == [summaries]  # with labels given, only the summaries are read

    proba = check_summaries(clf, summaries, review_proba=np.array([NEG, POS, POS]))
    assert proba.review_labels == ["negative", "positive", "positive"]
    assert proba.contradiction == [True, True, False]

    reviews = ["Battery died after two days, very disappointed.", "Great coffee", "快递太慢了，包装也破了，太差了。"]
    read = check_summaries(KeywordProba(), ["Battery lasts forever", "Great", "包装满意的"], reviews=reviews)
    assert read.review_labels == ["negative", "positive", "negative"]
    assert read.contradiction == [True, False, True]


def test_check_summaries_rejects_missing_or_mismatched_reviews():
    with pytest.raises(ValueError, match="needs review_labels, review_proba or reviews"):
        check_summaries(KeywordProba(), ["x"])
    with pytest.raises(ValueError, match="2 reviews but 1 summaries"):
        check_summaries(KeywordProba(), ["x"], review_labels=["positive", "negative"])
    empty = check_summaries(KeywordProba(), [], review_labels=[])
    assert empty.contradiction == [] and empty.summary_labels == []


def test_check_summaries_with_a_real_sentiment_model(tmp_path):
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.testing.tiny import build_tiny_encoder

    clf = SentimentClassifier.load(build_tiny_encoder(tmp_path / "sentiment"))
    reviews = ["Terrible coffee, tasted burnt and stale.", "Lovely tea.", "快递太慢了。", "还行吧。"]
    summaries = ["Exceeded my expectations", "Awful", "包装满意的", "一般"]
    got = check_summaries(clf, summaries, reviews=reviews, batch_size=2)
    # Same decision as reading both texts' labels with the model and applying the rule.
    assert got.review_labels == clf.predict(reviews)
    assert got.summary_labels == clf.predict(summaries)
    assert got.contradiction == contradiction_flags(clf.predict(reviews), clf.predict(summaries))
