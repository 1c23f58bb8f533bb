"""Response shaping: labels from probability rows, one /analyze result per review."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reviewops.schema import LABELS
from reviewops.serving.schemas import ReviewIn, analyze_results, sentiment_results


def test_sentiment_results_pick_the_most_likely_label():
    results = sentiment_results([[0.1, 0.2, 0.7], [0.5123456789, 0.25, 0.2376543211]])
    assert [r.label for r in results] == ["positive", "negative"]
    assert results[1].score == 0.512346 and list(results[1].probabilities) == LABELS
    assert results[0].probabilities == {"negative": 0.1, "neutral": 0.2, "positive": 0.7}


def test_analyze_results_keep_ids_and_mark_truncated_texts():
    reviews = [ReviewIn(text="a", review_id="r1", product_id="p"), ReviewIn(text="b")]
    summaries = sentiment_results([[0.1, 0.2, 0.7], [0.1, 0.2, 0.7]])
    out = analyze_results(reviews, ["A", "B"], sentiment_results([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]), [1], summaries)
    assert [(r.review_id, r.product_id, r.summary, r.label, r.truncated, r.summary_contradicts) for r in out] == [
        ("r1", "p", "A", "negative", False, True),  # a positive summary of a negative review
        (None, None, "B", "positive", True, False),
    ]


@pytest.mark.parametrize("review", [{"text": "x", "stars": 5}, {"text": "x", "rating": 0}, {"rating": 3}])
def test_review_in_is_strict(review):
    with pytest.raises(ValidationError):
        ReviewIn.model_validate(review)
