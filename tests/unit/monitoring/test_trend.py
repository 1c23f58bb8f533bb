"""Sentiment trend: negative share per product per week, alerts only on large jumps with enough reviews."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reviewops.monitoring.trend import sentiment_trend, sentiment_trends, trend_coverage


def test_sentiment_trend_alerts_on_jump_with_enough_reviews():
    rows = []
    for product, n, neg_before, neg_after in (("P1", 30, 3, 15), ("P2", 5, 0, 5), ("P3", 30, 6, 9)):
        for week, negs in (("2024-03-04", neg_before), ("2024-03-11", neg_after)):
            for i in range(n):
                rows.append(
                    {
                        "product_id": product,
                        "timestamp": f"{week}T10:00:{i % 60:02d}Z",
                        "label": "negative" if i < negs else "positive",
                    }
                )
    trend, alerts = sentiment_trend(pd.DataFrame(rows), "W", threshold=0.15, min_count=20)
    by_product = {a["product_id"]: a for a in alerts}
    assert set(by_product) == {"P1", "__all__"}  # P2 jumps 100% on 5 reviews: noise; P3 only +10%
    assert by_product["P1"]["period"] == "2024-03-11" and by_product["P1"]["change"] == pytest.approx(0.4)
    assert by_product["__all__"]["change"] == pytest.approx(29 / 65 - 9 / 65)
    overall = trend[trend["product_id"] == "__all__"].set_index("period")
    assert overall.loc["2024-03-04", "count"] == 65
    assert overall.loc["2024-03-11", "negative_share"] == pytest.approx(29 / 65)
    p3 = trend[trend["product_id"] == "P3"]["change"].dropna()
    assert p3.tolist() == pytest.approx([0.1])


def test_sentiment_trend_falls_back_to_ratings():
    df = pd.DataFrame(
        {
            "product_id": ["A"] * 4,
            "rating": [1, 5, 2, np.nan],
            "timestamp": ["2024-01-01T00:00:00Z"] * 3 + ["not a date"],
        }
    )
    trend, alerts = sentiment_trend(df)
    assert trend[trend["product_id"] == "A"]["negative_share"].tolist() == pytest.approx([2 / 3])
    assert alerts == []


def _surge(**columns) -> pd.DataFrame:
    """40 reviews of one product per week: 4 negative in the first week, 20 in the second."""
    rows = []
    for week, negs in (("2024-03-04", 4), ("2024-03-11", 20)):
        for i in range(40):
            rows.append(
                {
                    "review_id": f"{week}-{i}",
                    "product_id": "P1",
                    "timestamp": f"{week}T10:00:{i:02d}Z",
                    "sentiment": "negative" if i < negs else "positive",
                }
            )
    return pd.DataFrame(rows).assign(**columns)


def test_unrated_batch_trends_and_alerts_on_predicted_sentiment():
    df = _surge()  # no rating column at all: a stream of app comments
    trend, alerts = sentiment_trend(df, "W", threshold=0.15, min_count=20)
    p1 = trend[trend["product_id"] == "P1"].set_index("period")
    assert p1["negative_share"].tolist() == pytest.approx([0.1, 0.5])
    assert {a["product_id"] for a in alerts} == {"P1", "__all__"}
    assert all(a["source"] == "predicted" and a["change"] == pytest.approx(0.4) for a in alerts)
    coverage = trend_coverage(df)
    assert coverage["source"] == "predicted" and coverage["agreement"] is None
    assert "predicted sentiment" in coverage["source_note"]
    # a rating column with no value is no rating either
    assert trend_coverage(df.assign(rating=np.nan))["source"] == "predicted"
    _, alerts_null = sentiment_trend(df.assign(rating=np.nan), "W", threshold=0.15, min_count=20)
    assert alerts_null == alerts


def test_rated_and_predicted_batch_reports_both_and_their_agreement():
    df = _surge()
    # Ratings say the second week is fine: the model alone sees a surge.
    df["rating"] = [1.0 if i < 4 else 5.0 for i in range(40)] + [
        1.0 if i < 6 else (3.0 if i < 10 else 5.0) for i in range(40)
    ]
    trends = sentiment_trends(df, "W", threshold=0.15, min_count=20)
    assert trends.source == "rating" and trends.alerts == []  # the ratings' trend, unchanged
    rated = trends.trend[trends.trend["product_id"] == "P1"]["negative_share"].tolist()
    assert rated == pytest.approx([0.1, 0.15])
    predicted_trend, predicted_alerts = trends.predicted
    assert {a["product_id"] for a in predicted_alerts} == {"P1", "__all__"}
    assert predicted_trend[predicted_trend["product_id"] == "P1"]["negative_share"].tolist() == pytest.approx(
        [0.1, 0.5]
    )
    # week 1: 40 agree; week 2: 6 negatives agree, 4 neutral and 10 positive ratings disagree, 20 positive agree
    agreement = trends.agreement
    assert agreement["rows"] == 80 and agreement["agree"] == 66
    assert agreement["rate"] == pytest.approx(66 / 80, abs=1e-4)
    assert agreement["by_label"] == {"negative": 1.0, "neutral": 0.0, "positive": pytest.approx(56 / 66, abs=1e-4)}
    coverage = trend_coverage(df)
    assert coverage["source"] == "rating" and coverage["agreement"] == agreement
    assert coverage["source_note"] is None


def test_rated_batch_without_predictions_keeps_its_keys():
    df = pd.DataFrame({"product_id": ["A"], "rating": [5], "timestamp": ["2024-01-01T00:00:00Z"]})
    coverage = trend_coverage(df)
    assert {"rows_with_timestamp", "rows_without_timestamp", "note"} <= set(coverage)
    assert coverage["source"] == "rating" and coverage["agreement"] is None
    trends = sentiment_trends(df)
    assert trends.predicted is None and trends.agreement is None
    assert trend_coverage(pd.DataFrame({"text": ["x"]}))["source"] is None
