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
