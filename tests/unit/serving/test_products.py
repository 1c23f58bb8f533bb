"""Product aggregates: of an /analyze request (products shared by 2+ reviews, a failure left out), and
GET /products/{product_id} over a scored dataset written by the scoring writer."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from reviewops.serving.errors import RequestError
from reviewops.serving.products import product_aggregates, scored_product, shared_products
from reviewops.serving.schemas import ReviewIn
from reviewops.testing.scored import DAY, write_scored


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


# --------------------------------------------------------------------------- GET /products/{product_id}


@pytest.fixture(scope="module")
def scored_dir(tmp_path_factory):
    """A scored dataset as `reviewops score` writes it: two batches, p1 rated, p2 predictions only."""
    return write_scored(tmp_path_factory.mktemp("scored"))


def test_a_rated_product_has_both_mixes_and_their_agreement(scored_dir):
    got = scored_product(str(scored_dir), "p1")
    assert got.product_id == "p1" and got.n_reviews == 4 and got.batches == ["mon", "tue"]
    assert got.label_source == "rating" and got.average_rating == 3.0
    assert got.sentiment_counts == {"negative": 2, "neutral": 0, "positive": 2}
    assert got.sentiment_shares == {"negative": 0.5, "neutral": 0.0, "positive": 0.5}
    assert got.predicted_sentiment is not None
    assert got.predicted_sentiment.counts == {"negative": 3, "neutral": 0, "positive": 1}
    assert got.predicted_sentiment.shares == {"negative": 0.75, "neutral": 0.0, "positive": 0.25}
    assert got.agreement is not None
    assert got.agreement.model_dump() == {
        "rate": 0.75,
        "rows": 4,
        "agree": 3,
        "by_label": {"negative": 1.0, "neutral": None, "positive": 0.5},
    }
    assert got.first_review_at == DAY and got.last_review_at == DAY + pd.Timedelta(hours=30)
    assert got.summary.startswith("4 reviews: 50% positive, 0% neutral, 50% negative (average rating 3.0).")
    assert got.summary_source == "data" and got.language == "en"
    assert "lid" in [p.phrase for p in got.cons]


def test_an_unrated_product_reads_the_predicted_sentiment(scored_dir):
    got = scored_product(str(scored_dir), "p2")
    assert got.n_reviews == 3 and got.label_source == "predicted" and got.average_rating is None
    assert got.sentiment_counts == {"negative": 0, "neutral": 1, "positive": 2}
    assert got.sentiment_shares == {"negative": 0.0, "neutral": 0.3333, "positive": 0.6667}
    assert got.predicted_sentiment is None and got.agreement is None
    # r5 has no timestamp: the span is r3..r7
    assert (got.first_review_at, got.last_review_at) == (DAY + pd.Timedelta(hours=2), DAY + pd.Timedelta(hours=31))
    assert got.summary.startswith("3 reviews: 67% positive, 33% neutral, 0% negative.")


@pytest.mark.parametrize(
    ("where", "product", "status", "message"),
    [
        ("dataset", "p9", 404, "no scored reviews for product 'p9' in serve.scored_dir"),
        ("dataset", " ", 404, "no product id"),
        ("", "p1", 503, "product aggregates are off: serve.scored_dir is empty"),
        ("empty", "p1", 503, "no scored dataset in serve.scored_dir"),
    ],
)
def test_unknown_product_and_missing_dataset_are_one_clear_error(scored_dir, tmp_path, where, product, status, message):
    directory = {"dataset": str(scored_dir), "": "", "empty": str(tmp_path)}[where]
    with pytest.raises(RequestError) as caught:
        scored_product(directory, product)
    assert caught.value.status == status and message in caught.value.message


def test_an_unreadable_part_is_a_503(tmp_path):
    (tmp_path / "batch=x").mkdir()
    (tmp_path / "batch=x" / "part-00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(RequestError) as caught:
        scored_product(str(tmp_path), "p1")
    assert caught.value.status == 503 and "cannot be read" in caught.value.message


@pytest.fixture
def serving_scored(service_module, monkeypatch, scored_dir):
    """The running service's serve.scored_dir pointed at the test dataset (read per request)."""
    monkeypatch.setattr(
        service_module, "SERVE", service_module.SERVE.model_copy(update={"scored_dir": str(scored_dir)})
    )
    return scored_dir


def test_http_get_product(client, serving_scored):
    resp = client.get("/products/p1")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["n_reviews"] == 4 and body["agreement"]["rate"] == 0.75
    assert body["sentiment_shares"] == {"negative": 0.5, "neutral": 0.0, "positive": 0.5}
    assert body["first_review_at"].startswith("2025-03-03T09:00:00")
    assert client.get("/products/p2").json()["label_source"] == "predicted"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/products/p9", 404, "no scored reviews for product 'p9'"),
        ("/products/", 404, "no product id"),
    ],
)
def test_http_errors_are_one_json_line(client, serving_scored, path, status, message):
    resp = client.get(path)
    assert resp.status_code == status
    assert resp.json() == {"error": resp.json()["error"], "status": status} and message in resp.json()["error"]


def test_http_other_methods_get_the_same_error_body(client, serving_scored):
    resp = client.post("/products/p1", json={})
    assert resp.status_code == 405
    assert resp.json() == {"error": "POST /products/p1: use GET /products/{product_id}", "status": 405}


def test_http_off_when_scored_dir_is_empty(client, service_module, monkeypatch):
    monkeypatch.setattr(service_module, "SERVE", service_module.SERVE.model_copy(update={"scored_dir": ""}))
    resp = client.get("/products/p1")
    assert resp.status_code == 503 and "serve.scored_dir is empty" in resp.json()["error"]


def test_http_needs_the_token(client, serving_scored):
    denied = client.get("/products/p1", headers={"Authorization": ""})
    assert denied.status_code == 401 and "bearer token" in denied.json()["error"]


def test_openapi_documents_the_product_path(client, serving_scored):
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/docs.json").json()
    op = spec["paths"]["/products/{product_id}"]["get"]
    assert sorted(op["responses"]) == ["200", "401", "404", "503"]
    assert op["security"] == [{"bearerAuth": []}]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, status in (("/products/p1", 200), ("/products/p9", 404)):
        schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(client.get(path).json(), {**schema, "components": spec["components"]})
