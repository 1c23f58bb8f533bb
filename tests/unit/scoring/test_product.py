"""Product-level summaries in English and Chinese."""

from __future__ import annotations

import pandas as pd
import pytest

from reviewops.errors import ReviewOpsError
from reviewops.scoring.product import aspect_phrases, distinctive_phrases, representative, summarize_product


def _en() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": "P1",
            "language": "en",
            "rating": [5, 5, 4, 1, 2, 3],
            "text": [
                "Battery life is amazing and the sound quality is great.",
                "Great sound quality, battery life lasts all day.",
                "Love the sound quality. Comfortable fit.",
                "Stopped working after a week. Bluetooth connection drops constantly.",
                "Bluetooth connection keeps dropping, stopped working.",
                "It's okay.",
            ],
            "summary": ["Amazing battery", "Great sound", "Love it", "Stopped working", "Connection drops", "Okay"],
        }
    )


def _zh() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": "P2",
            "language": "zh",
            "rating": [5, 5, 4, 1, 1],
            "text": [
                "电池很耐用，音质也很好。",
                "音质很好，电池很耐用，非常满意。",
                "外观漂亮，音质不错。",
                "用了一周就坏了，质量太差。",
                "质量太差，客服不理人。",
            ],
            "summary": ["电池耐用", "音质很好", "外观漂亮", "质量太差", "客服不理人"],
        }
    )


def test_english_product_summary_values():
    r = summarize_product(_en())
    assert r["product_id"] == "P1" and r["n_reviews"] == 6 and r["language"] == "en"
    assert r["sentiment_counts"] == {"negative": 2, "neutral": 1, "positive": 3}
    assert r["sentiment_shares"]["positive"] == 0.5
    assert r["average_rating"] == pytest.approx(20 / 6, abs=1e-3)
    assert r["label_source"] == "rating" and r["summary_source"] == "data"
    pros = [p["phrase"] for p in r["pros"]]
    cons = [c["phrase"] for c in r["cons"]]
    assert pros[:2] == ["sound quality", "battery life"]
    assert r["pros"][0]["reviews"] == 3
    assert {"bluetooth connection", "stopped working"} <= set(cons)
    assert not set(pros) & set(cons)
    assert r["summary"].startswith("6 reviews: 50% positive, 17% neutral, 33% negative (average rating 3.3).")
    assert "Pros: sound quality, battery life" in r["summary"]
    assert r["representative"]["negative"] and all(
        s in _en()["summary"].tolist() for s in r["representative"]["negative"]
    )


def test_chinese_product_summary_uses_char_bigrams():
    r = summarize_product(_zh())
    assert r["language"] == "zh"
    assert r["sentiment_counts"] == {"negative": 2, "neutral": 0, "positive": 3}
    assert [p["phrase"] for p in r["pros"]] == ["音质", "电池", "耐用"]
    assert [c["phrase"] for c in r["cons"]] == ["质量"]
    assert r["summary"].startswith(
        "共5条评价，好评60%，中评0%，差评40%（平均评分3.2）。优点：音质、电池、耐用。缺点：质量。"
    )
    assert "代表评价：" in r["summary"]


def test_models_override_labels_and_summaries():
    class FakeSentiment:
        def predict(self, texts):
            return ["negative" if "差" in t or "坏" in t else "positive" for t in texts]

    r = summarize_product(
        _zh().drop(columns=["rating", "summary"]), summarizer=lambda ts: [t[:4] for t in ts], sentiment=FakeSentiment()
    )
    assert r["label_source"] == "model" and r["summary_source"] == "model"
    assert r["sentiment_counts"] == {"negative": 2, "neutral": 0, "positive": 3}
    assert r["average_rating"] is None
    assert "平均评分" not in r["summary"]


def test_phrase_helpers():
    assert aspect_phrases("电池很耐用") == {("电", "池"), ("耐", "用")}
    assert ("battery", "life") in aspect_phrases("The battery life is great")
    assert ("the",) not in aspect_phrases("The battery life is great")
    # A phrase as common in the other group is not distinctive.
    assert distinctive_phrases(["good price", "good price"], ["good price"]) == []
    assert representative(["great sound", "great sound quality", "bad"], k=1) == ["great sound"]


def test_errors_are_readable():
    with pytest.raises(ReviewOpsError, match="no reviews"):
        summarize_product(pd.DataFrame(columns=["text"]))
    with pytest.raises(ReviewOpsError, match="no sentiment source"):
        summarize_product(pd.DataFrame({"text": ["hello"]}))


def _scored_rows(rated: bool) -> pd.DataFrame:
    """Scored rows of product P1 as ``reviewops score`` writes them (rating null for an unrated stream)."""
    df = _en()
    predicted = [
        "positive",
        "positive",
        "positive",
        "negative",
        "negative",
        "negative",
    ]  # the model calls "okay" negative
    return pd.DataFrame(
        {
            "review_id": [f"r{i}" for i in range(len(df))],
            "product_id": "P1",
            "batch": "b1",
            "timestamp": pd.Timestamp("2024-03-04", tz="UTC"),
            "rating": df["rating"].astype(float) if rated else float("nan"),
            "text": df["text"],
            "language": "en",
            "sentiment": predicted,
            "p_negative": 0.1,
            "p_neutral": 0.1,
            "p_positive": 0.8,
            "summary": [*df["summary"][:3], None, None, None],  # summaries on a sample only
            "sentiment_model": "review-sentiment",
            "summarizer_model": "review-summarizer",
            "sentiment_version": "1",
            "summarizer_version": "1",
            "scored_at": pd.Timestamp("2024-03-05", tz="UTC"),
        }
    )


def _write_scored(out_dir, batches: dict[str, pd.DataFrame]) -> None:
    """A hand-made scored dataset: ``<out_dir>/batch=<name>/part-00000.parquet`` (the engine's layout)."""
    for name, rows in batches.items():
        (out_dir / f"batch={name}").mkdir(parents=True)
        rows.assign(batch=name).to_parquet(out_dir / f"batch={name}" / "part-00000.parquet", index=False)


def test_unrated_scored_rows_use_the_predicted_sentiment():
    r = summarize_product(_scored_rows(rated=False))
    assert r["label_source"] == "predicted" and r["summary_source"] == "data"
    assert r["sentiment_counts"] == {"negative": 3, "neutral": 0, "positive": 3}
    assert r["average_rating"] is None
    assert r["predicted_sentiment"] is None and r["agreement"] is None
    assert r["summary"].startswith("6 reviews: 50% positive, 0% neutral, 50% negative.")
    assert "sound quality" in [p["phrase"] for p in r["pros"]]
    assert r["representative"]["positive"] and set(r["representative"]["positive"]) <= set(_en()["summary"][:3])


def test_rated_scored_rows_report_ratings_predictions_and_agreement():
    r = summarize_product(_scored_rows(rated=True))
    assert r["label_source"] == "rating"  # the ratings' mix, as before
    assert r["sentiment_counts"] == {"negative": 2, "neutral": 1, "positive": 3}
    assert r["predicted_sentiment"]["counts"] == {"negative": 3, "neutral": 0, "positive": 3}
    assert r["predicted_sentiment"]["shares"]["negative"] == 0.5
    assert r["agreement"] == {
        "rate": round(5 / 6, 4),
        "rows": 6,
        "agree": 5,
        "by_label": {"negative": 1.0, "neutral": 0.0, "positive": 1.0},
    }
    # rated data without predictions keeps its shape: the new keys are None
    plain = summarize_product(_en())
    assert plain["predicted_sentiment"] is None and plain["agreement"] is None


def test_cli_summarize_product_reads_the_scored_dataset(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from reviewops.cli.app import app

    other = _scored_rows(rated=True).assign(product_id="P9")
    _write_scored(tmp_path / "scored", {"b1": _scored_rows(rated=True), "b2": other})
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["summarize-product", "P1", "--scored", "scored", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_reviews"] == 6 and out["label_source"] == "rating"
    assert out["agreement"]["rate"] == round(5 / 6, 4)
    res = CliRunner().invoke(app, ["summarize-product", "P1", "--scored", "scored"])
    assert res.exit_code == 0 and "agreement" in res.stdout and "0.8333" in res.stdout
    # the one-line errors (``reviewops`` prints them and exits 2)
    res = CliRunner().invoke(app, ["summarize-product", "P1", "--scored", "scored", "--sentiment", "m"])
    assert isinstance(res.exception, ReviewOpsError) and "--scored already holds predictions" in str(res.exception)
    res = CliRunner().invoke(app, ["summarize-product", "P1", "--scored", "empty"])
    assert isinstance(res.exception, ReviewOpsError) and "reviewops score" in str(res.exception)
    res = CliRunner().invoke(app, ["summarize-product", "P7", "--scored", "scored"])
    assert isinstance(res.exception, ReviewOpsError)
    assert str(res.exception) == "no reviews for product 'P7'; known ids include: P1, P9"
