"""Sentiment trend: negative share per product per week, alerts only on large jumps with enough reviews."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reviewops.monitoring.trend import sentiment_trend


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
