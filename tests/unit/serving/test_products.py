"""Product aggregates of an /analyze request: only products shared by 2+ reviews, a failure left out."""

from __future__ import annotations

import logging

import pytest

from reviewops.serving.products import product_aggregates, shared_products
from reviewops.serving.schemas import ReviewIn


def _reviews() -> list[ReviewIn]:
    return [
        ReviewIn(text="Great coffee, rich taste", product_id="p2", rating=5),
        ReviewIn(text="Nice mug", product_id="p1"),
        ReviewIn(text="Bitter coffee, awful taste", product_id="p2", rating=1),
        ReviewIn(text="No product"),
        ReviewIn(text="Sturdy mug", product_id="p1", rating=4),
        ReviewIn(text="Only once", product_id="p3"),
    ]


def test_shared_products_in_order_of_first_appearance():
    assert list(shared_products(_reviews()).items()) == [("p2", [0, 2]), ("p1", [1, 4])]
    assert shared_products(_reviews()[3:]) == {}


def test_product_aggregates_per_shared_product():
    reviews = _reviews()
    summaries = ["Rich", "Nice", "Bitter", "None", "Sturdy", "Once"]
    labels = ["positive", "positive", "negative", "neutral", "positive", "neutral"]
    out = product_aggregates(reviews, summaries, labels)
    assert [p["product_id"] for p in out] == ["p2", "p1"]
    p2, p1 = out
    assert p2["n_reviews"] == 2 and p2["average_rating"] == 3.0 and p2["label_source"] == "label"
    assert p2["sentiment_counts"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert p1["average_rating"] == 4.0 and p1["summary_source"] == "data"
    assert product_aggregates(reviews[3:4], ["x"], ["neutral"]) == []


def test_a_failed_aggregate_is_left_out_and_logged(monkeypatch, caplog):
    from reviewops.scoring import product

    real = product.summarize_product

    def failing_for_p2(frame):
        if frame["product_id"].iloc[0] == "p2":
            raise ValueError("boom")
        return real(frame)

    monkeypatch.setattr(product, "summarize_product", failing_for_p2)
    with caplog.at_level(logging.WARNING, logger="reviewops.serving.products"):
        out = product_aggregates(_reviews(), ["s"] * 6, ["positive"] * 6)
    assert [p["product_id"] for p in out] == ["p1"]
    assert any("product aggregate for p2 failed: boom" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("rating", [None, 3])
def test_missing_ratings_are_not_averaged(rating):
    reviews = [ReviewIn(text="Good", product_id="p"), ReviewIn(text="Fine", product_id="p", rating=rating)]
    (agg,) = product_aggregates(reviews, ["Good", "Fine"], ["positive", "neutral"])
    assert agg["average_rating"] == rating
