"""The scorecard from prediction callables: layout, values, sampling and the champion re-score."""

from __future__ import annotations

import json

import pytest

from reviewops.evaluation.scorecard import evaluate_predictors, metrics_of
from tests.unit.evaluation.fakes import keyword_classifier, make_settings, make_test_df


def test_evaluate_predictors_layout_and_values(tmp_path):
    df = make_test_df(10)
    refs = dict(zip(df["text"], df["summary"], strict=True))
    gold = dict(zip(df["text"], df["label"], strict=True))

    def perfect_summarizer(texts):
        return [refs.get(t, t[:5]) for t in texts]

    def perfect_classifier(texts):
        return [gold.get(t) or keyword_classifier([t])[0] for t in texts]

    settings = make_settings(6)
    out = tmp_path / "reports" / "eval.json"
    result = evaluate_predictors(
        settings,
        df,
        perfect_summarizer,
        perfect_classifier,
        base_summarize=lambda ts: ["nothing" for _ in ts],
        out_json=out,
    )
    assert result["eval/rougeL"] == 1.0
    assert result["eval/rouge1"] == 1.0
    assert result["eval/sentiment_macro_f1"] == 1.0
    assert result["baseline/untuned/rougeL"] == 0.0
    assert 0.0 < result["baseline/lead8/rougeL"] < 1.0
    assert result["slice/language=zh/rougeL"] == 1.0
    assert result["slice/language=en/sentiment_macro_f1"] == 1.0
    assert result["behaviour/directional_negation"] == 1.0
    assert result["behaviour/summary_nonempty"] == 1.0
    meta = result["meta"]
    assert meta["test_rows"] == 10 and meta["summarization_rows"] == 6 and meta["summarization_sampled"]
    assert meta["sample_seed"] == settings.seed and meta["max_eval_samples"] == 6
    preds = result["predictions"]
    assert len(preds) == 10
    assert sum(p["prediction"] is not None for p in preds) == 6  # generation on the sample only
    assert sum(p["pred_label"] is not None for p in preds) == 10  # classification on every row
    on_disk = json.loads(out.read_text(encoding="utf-8"))
    assert on_disk["eval/rougeL"] == 1.0 and on_disk["meta"]["summarization_rows"] == 6
    assert all("/" in k for k in metrics_of(result))

    # Same seed -> same sample; the fingerprint identifies the split.
    again = evaluate_predictors(settings, df, perfect_summarizer, perfect_classifier)
    assert [p["prediction"] is not None for p in again["predictions"]] == [p["prediction"] is not None for p in preds]
    assert again["meta"]["test_fingerprint"] == meta["test_fingerprint"]


def test_evaluate_predictors_champion_rescore_and_no_sampling():
    df = make_test_df(4)
    result = evaluate_predictors(
        make_settings(None),
        df,
        lambda ts: ["good quality"] * len(ts),
        lambda ts: ["positive"] * len(ts),
        champion_summarize=lambda ts: ["x"] * len(ts),
        champion_classify=lambda ts: ["negative"] * len(ts),
    )
    assert result["meta"]["summarization_sampled"] is False
    assert result["champion/eval/rougeL"] == 0.0
    assert result["eval/rougeL"] == pytest.approx(0.5)  # exact on en rows, 0 on zh rows
    assert result["champion/eval/sentiment_accuracy"] == pytest.approx(0.25)


def _upbeat_en_gloomy_zh(texts):
    """A summarizer that writes upbeat English titles and gloomy Chinese ones, whatever the review says."""
    return ["质量很差" if t.startswith("第") else "Exceeded my expectations" for t in texts]


def test_contradiction_rate_next_to_rouge_per_language_and_per_row():
    df = make_test_df(8)  # en rows 0, 2, 4, 6 (0 and 4 negative); zh rows 1, 3, 5, 7 (positive)
    df.loc[2, "label"] = "neutral"
    result = evaluate_predictors(
        make_settings(None),
        df,
        _upbeat_en_gloomy_zh,
        keyword_classifier,
        base_summarize=lambda ts: ["okay"] * len(ts),
        champion_summarize=lambda ts: ["Awful"] * len(ts),
    )
    # Candidate: en negatives 0 and 4 get upbeat titles, every zh positive a gloomy one; row 2 is neutral.
    assert result["eval/contradiction_rate"] == pytest.approx(6 / 7)
    assert result["eval/contradiction_rate_negative"] == 1.0
    assert result["eval/contradiction_rate_positive"] == pytest.approx(4 / 5)
    assert result["eval/contradiction_rate_macro"] == pytest.approx((1.0 + 4 / 5) / 2)
    assert result["eval/contradiction_n"] == 7.0
    assert result["slice/language=en/contradiction_rate"] == pytest.approx(2 / 3)
    assert result["slice/language=en/contradiction_rate_macro"] == pytest.approx(0.5)  # negatives 1.0, positives 0
    assert result["slice/language=zh/contradiction_rate"] == 1.0
    assert result["slice/language=zh/contradiction_n"] == 4.0
    assert "slice/language=zh/rougeL" in result  # next to ROUGE, same slices
    # The same judge on the other summaries of the same rows.
    assert result["champion/eval/contradiction_rate"] == pytest.approx(5 / 7)  # "Awful" for positive rows
    assert result["champion/eval/contradiction_rate_macro"] == pytest.approx(0.5)
    assert result["baseline/untuned/contradiction_rate"] == 0.0  # "okay" is neutral: never a contradiction
    assert result["baseline/lead8/contradiction_rate"] == pytest.approx(2 / 7)  # the reviews read positive
    assert result["reference/contradiction_rate"] == pytest.approx(2 / 7)
    rows = {p["review_id"]: p for p in result["predictions"]}
    assert rows["r0"]["contradiction"] is True and rows["r0"]["summary_label"] == "positive"
    assert rows["r2"]["contradiction"] is None and rows["r2"]["summary_label"] == "positive"  # neutral review
    assert rows["r6"]["contradiction"] is False
    assert rows["r1"]["contradiction"] is True and rows["r1"]["summary_label"] == "negative"
    assert "contradiction" in result["meta"]


def test_contradiction_without_gold_labels_uses_the_predicted_review_sentiment():
    df = make_test_df(8).drop(columns=["label"])  # every review reads positive to the keyword model
    result = evaluate_predictors(make_settings(4), df, _upbeat_en_gloomy_zh, keyword_classifier)
    zh = sum(p["language"] == "zh" and p["prediction"] is not None for p in result["predictions"])
    assert result["eval/contradiction_n"] == 4.0
    assert result["eval/contradiction_rate"] == pytest.approx(zh / 4)
    assert "eval/sentiment_macro_f1" not in result


def test_no_contradiction_rate_without_a_sentiment_model():
    result = evaluate_predictors(make_settings(None), make_test_df(4), _upbeat_en_gloomy_zh, None)
    assert "eval/rougeL" in result and "eval/contradiction_rate" not in result
    assert any("contradiction rate not scored" in n for n in result["meta"]["notes"])
    assert all(p["contradiction"] is None for p in result["predictions"])
