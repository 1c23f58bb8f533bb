"""Scores: CJK-aware ROUGE, sentiment accuracy and macro-F1, per-slice metrics."""

from __future__ import annotations

import pandas as pd
import pytest
from rouge_score import rouge_scorer

from reviewops.evaluation.evaluate import mlflow_metric_name
from reviewops.evaluation.metrics import CJKRougeTokenizer, rouge_scores, sentiment_metrics, slice_metrics

# --------------------------------------------------------------------------- ROUGE


def test_rouge_identical_english_is_one():
    assert rouge_scores(["The battery lasts long"], ["the battery lasts long"]) == {
        "rouge1": 1.0,
        "rouge2": 1.0,
        "rougeL": 1.0,
    }


def test_rouge_english_known_values_with_stemming():
    # pred: the batteri last long / ref: batteri life is long -> 2 of 4 unigrams, no bigram.
    s = rouge_scores(["the battery lasts long"], ["battery life is long"])
    assert s["rouge1"] == pytest.approx(0.5)
    assert s["rouge2"] == pytest.approx(0.0)
    assert s["rougeL"] == pytest.approx(0.5)
    # Porter stemming on Latin words: batteries == battery.
    assert rouge_scores(["batteries"], ["battery"])["rouge1"] == 1.0


def test_default_rouge_tokenizer_drops_chinese_ours_does_not():
    default = rouge_scorer.RougeScorer(["rouge1"]).score("味道很好", "味道很好")["rouge1"].fmeasure
    assert default == 0.0  # why the custom tokenizer exists
    assert rouge_scores(["味道很好"], ["味道很好"]) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_rouge_chinese_partial_overlap_known_values():
    # chars: 味 道 很 好 vs 味 道 不 好 -> 3/4 unigrams, 1/3 bigrams (味道), LCS 味道好 = 3.
    s = rouge_scores(["味道很好"], ["味道不好"])
    assert s["rouge1"] == pytest.approx(0.75)
    assert s["rouge2"] == pytest.approx(1 / 3)
    assert s["rougeL"] == pytest.approx(0.75)
    assert rouge_scores(["电池"], ["质量"])["rouge1"] == 0.0


def test_rouge_tokenizer_mixed_script_and_mean():
    assert CJKRougeTokenizer().tokenize("Great batteries 味道好!") == ["great", "batteri", "味", "道", "好"]
    s = rouge_scores(["味道很好", "great"], ["味道不好", "great"])
    assert s["rouge1"] == pytest.approx((0.75 + 1.0) / 2)


def test_rouge_rejects_mismatched_or_empty():
    with pytest.raises(ValueError):
        rouge_scores(["a"], [])
    with pytest.raises(ValueError):
        rouge_scores([], [])


# --------------------------------------------------------------------------- sentiment


def test_sentiment_metrics_values():
    m = sentiment_metrics(
        ["positive", "positive", "negative", "neutral"], ["positive", "negative", "negative", "neutral"]
    )
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1_positive"] == pytest.approx(2 / 3)
    assert m["f1_negative"] == pytest.approx(2 / 3)
    assert m["f1_neutral"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_sentiment_macro_f1_ignores_classes_absent_everywhere_but_keeps_keys():
    m = sentiment_metrics(["positive", "negative"], ["positive", "negative"])
    assert m["macro_f1"] == 1.0
    assert m["f1_neutral"] == 0.0
    # A class in the truth that is never predicted counts (as 0).
    m = sentiment_metrics(["positive", "neutral"], ["positive", "positive"])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_sentiment_metrics_rejects_unknown_labels():
    with pytest.raises(ValueError, match="unknown sentiment labels"):
        sentiment_metrics(["good"], ["positive"])


# --------------------------------------------------------------------------- slices


def _slice_df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "language": ["en", "en", "zh", "zh"],
            "category": ["toys", "home", "toys", "home"],
            "summary": ["great toy", "bad lamp", "味道很好", "质量很差"],
            "prediction": ["great toy", "good lamp", "味道不好", None],
            "label": ["positive", "negative", "positive", "negative"],
            "pred_label": ["positive", "positive", "positive", "negative"],
        }
    )


def test_slice_metrics_per_language_and_category():
    out = slice_metrics(_slice_df())
    assert out["slice/language=en/n"] == 2
    assert out["slice/language=en/rouge1"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["slice/language=zh/n_summaries"] == 1  # the None prediction is not scored
    assert out["slice/language=zh/rouge1"] == pytest.approx(0.75)
    assert out["slice/language=zh/sentiment_accuracy"] == 1.0
    assert out["slice/language=en/sentiment_accuracy"] == 0.5
    assert out["slice/category=toys/rougeL"] == pytest.approx((1.0 + 0.75) / 2)
    # home: truth [neg, neg], predicted [pos, neg] -> F1 neg 2/3, F1 pos 0 -> macro 1/3
    assert out["slice/category=home/sentiment_macro_f1"] == pytest.approx(1 / 3)


def test_slice_metrics_skips_missing_category():
    out = slice_metrics(_slice_df().drop(columns=["category"]))
    assert not any(k.startswith("slice/category") for k in out)
    assert mlflow_metric_name("slice/language=zh/rougeL") == "slice/language_zh/rougeL"


def test_slice_metrics_contradiction_rate_over_judged_rows():
    df = _slice_df().assign(contradiction=pd.Series([False, True, True, None], dtype=object))
    assert "slice/language=en/contradiction_rate_macro" not in slice_metrics(df)  # no review labels
    df["review_polarity"] = df["label"]
    out = slice_metrics(df)
    assert out["slice/language=en/contradiction_rate"] == 0.5
    assert out["slice/language=en/contradiction_rate_macro"] == 0.5  # positive 0/1, negative 1/1
    assert out["slice/language=zh/contradiction_rate_macro"] == 1.0  # only the positive row is judged
    assert out["slice/language=zh/contradiction_rate"] == 1.0  # the unjudged row is left out
    assert out["slice/language=zh/contradiction_n"] == 1.0
    assert out["slice/category=home/contradiction_rate"] == 1.0
    assert not any("contradiction" in k for k in slice_metrics(_slice_df()))
    unjudged = _slice_df().assign(contradiction=pd.Series([None] * 4, dtype=object))
    assert not any("contradiction" in k for k in slice_metrics(unjudged))
