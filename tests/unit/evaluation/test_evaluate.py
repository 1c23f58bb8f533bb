"""Evaluation metrics: CJK-aware ROUGE, lead-N, macro-F1, slices, behaviour checks, the result layout."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from rouge_score import rouge_scorer

from reviewops.config import ProfileConfig, Settings, TrainConfig
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.evaluate import (
    CJKRougeTokenizer,
    check_directional_negation,
    check_invariance_pii_masks,
    check_invariance_product_names,
    check_summaries,
    evaluate_models,
    evaluate_predictors,
    lead_n,
    metrics_of,
    mlflow_metric_name,
    read_train_report,
    rouge_scores,
    sentiment_metrics,
    slice_metrics,
)

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


# --------------------------------------------------------------------------- lead-N


def test_lead8_english_and_chinese():
    text = "This kettle boils water fast, the handle stays cool and it is quiet."
    assert lead_n([text]) == ["This kettle boils water fast the handle stays"]
    zh = "这款电饭煲煮出来的米饭很香，操作也很简单。"
    # 8 words * 1.5 chars per Chinese word = 12 characters, punctuation dropped.
    assert lead_n([zh]) == ["这款电饭煲煮出来的米饭很"]
    assert lead_n(["short one"], n=8) == ["short one"]
    assert lead_n(["a b c d"], n=2) == ["a b"]


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


# --------------------------------------------------------------------------- behaviour checks

NEG_WORDS = ("not", "terrible", "awful", "disappointed", "waste", "no reply", "不", "差", "坏", "失望", "没人")


def keyword_classifier(texts: list[str]) -> list[str]:
    out = []
    for t in texts:
        low = t.lower()
        if any(w in low for w in NEG_WORDS):
            out.append("negative")
        elif "okay" in low or "一般" in low:
            out.append("neutral")
        else:
            out.append("positive")
    return out


def test_behaviour_checks_pass_for_a_sane_classifier():
    for check in (check_invariance_product_names, check_invariance_pii_masks, check_directional_negation):
        r = check(keyword_classifier)
        assert r.pass_rate == 1.0, (r.name, r.failures)
        assert set(r.by_language) == {"en", "zh"}
    neg = check_directional_negation(keyword_classifier)
    assert neg.total == 6
    assert neg.metrics() == {
        "behaviour/directional_negation": 1.0,
        "behaviour/directional_negation/en": 1.0,
        "behaviour/directional_negation/zh": 1.0,
    }


def test_behaviour_invariance_catches_name_and_mask_sensitivity():
    def name_biased(texts):
        return ["negative" if "Zentro" in t or "华为" in t else "positive" for t in texts]

    r = check_invariance_product_names(name_biased)
    # 3 en + 3 zh templates; each has one biased filler -> every template fails.
    assert (r.passed, r.total, r.pass_rate) == (0, 6, 0.0)

    def phone_biased(texts):
        return ["negative" if "[PHONE]" in t else keyword_classifier([t])[0] for t in texts]

    r = check_invariance_pii_masks(phone_biased)
    # Positive templates flip on [PHONE] (2 of 4 fail); negative ones stay negative.
    assert (r.passed, r.total) == (2, 4)
    assert r.metrics()["behaviour/invariance_pii_mask/en"] == 0.5


def test_behaviour_negation_fails_for_constant_classifier():
    r = check_directional_negation(lambda texts: ["positive"] * len(texts))
    assert r.pass_rate == 0.0


def test_check_summaries_nonempty_and_shorter():
    nonempty, shorter = check_summaries(lambda ts: [t[:10] for t in ts])
    assert nonempty.pass_rate == 1.0 and shorter.pass_rate == 1.0
    assert set(nonempty.by_language) == {"en", "zh"}

    def bad(ts):  # empty for Chinese, echoes English
        return ["" if "的" in t or "耳机" in t else t for t in ts]

    nonempty, shorter = check_summaries(bad)
    assert nonempty.metrics()["behaviour/summary_nonempty/zh"] == 0.0
    assert nonempty.metrics()["behaviour/summary_nonempty/en"] == 1.0
    assert shorter.metrics()["behaviour/summary_shorter/en"] == 0.0


# --------------------------------------------------------------------------- end to end on fakes


def _test_df(n: int = 10) -> pd.DataFrame:
    rows = []
    for i in range(n):
        zh = i % 2 == 1
        rows.append(
            {
                "review_id": f"r{i}",
                "product_id": f"p{i % 3}",
                "language": "zh" if zh else "en",
                "category": "toys" if i % 3 else "home",
                "text": (
                    f"第{i}个评论：这个产品质量很好，我很喜欢，推荐购买。"
                    if zh
                    else f"Review {i}: this product works well, good quality and I like it a lot."
                ),
                "summary": "质量很好" if zh else "good quality",
                "label": "positive" if i % 4 else "negative",
            }
        )
    return pd.DataFrame(rows)


def _settings(max_eval: int | None) -> Settings:
    return Settings(train=TrainConfig(profile="quick", profiles={"quick": ProfileConfig(max_eval_samples=max_eval)}))


def test_evaluate_predictors_layout_and_values(tmp_path):
    df = _test_df(10)
    refs = dict(zip(df["text"], df["summary"], strict=True))
    gold = dict(zip(df["text"], df["label"], strict=True))

    def perfect_summarizer(texts):
        return [refs.get(t, t[:5]) for t in texts]

    def perfect_classifier(texts):
        return [gold.get(t) or keyword_classifier([t])[0] for t in texts]

    settings = _settings(6)
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
    df = _test_df(4)
    result = evaluate_predictors(
        _settings(None),
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


def test_read_train_report_accepts_nested_uris(tmp_path):
    p = tmp_path / "train.json"
    p.write_text(
        json.dumps(
            {
                "run_id": "abc",
                "model_uris": {"summarizer": "models:/m-1", "sentiment": "models:/m-2"},
                "model_dirs": {"summarizer": "models/trained/summarizer"},
            }
        )
    )
    r = read_train_report(p)
    assert (r["summarizer_uri"], r["sentiment_uri"], r["run_id"]) == ("models:/m-1", "models:/m-2", "abc")
    p.write_text(json.dumps({"summarizer_uri": "runs:/x/s", "sentiment_uri": "runs:/x/t", "run_id": "x"}))
    assert read_train_report(p)["sentiment_uri"] == "runs:/x/t"


# --------------------------------------------------------------------------- real (tiny) models + CLI


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder

    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_causal_lm(root / "summarizer"), build_tiny_encoder(root / "sentiment")


def test_evaluate_models_with_tiny_models(tiny_models):
    summarizer, sentiment = tiny_models
    result = evaluate_models(_settings(4), _test_df(8), summarizer, sentiment, base_summarizer_path=summarizer)
    for key in (
        "eval/rougeL",
        "eval/sentiment_macro_f1",
        "baseline/lead8/rougeL",
        "baseline/untuned/rougeL",
        "slice/language=zh/rougeL",
        "behaviour/invariance_product_name",
        "behaviour/summary_nonempty",
    ):
        assert 0.0 <= result[key] <= 1.0, key
    # Greedy decoding: the "untuned" baseline with the same weights scores exactly the same.
    assert result["baseline/untuned/rougeL"] == result["eval/rougeL"]
    assert result["behaviour/summary_nonempty"] == 1.0  # the Summarizer never returns ""
    assert result["meta"]["summarization_rows"] == 4
    assert result["meta"]["models"]["untuned_summarizer"] == str(summarizer)


def test_evaluate_models_names_the_missing_model(tmp_path):
    with pytest.raises(ReviewOpsError, match="reviewops train"):
        evaluate_models(_settings(4), _test_df(4), tmp_path / "nope", None)


def test_cli_evaluate_writes_json(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    summarizer, sentiment = tiny_models
    processed = tmp_path / "processed"
    processed.mkdir()
    _test_df(6).to_parquet(processed / "test.parquet")
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(
        app,
        [
            "--set",
            "train.profile=quick",
            "--set",
            "evaluate.untuned_baseline=false",
            "evaluate",
            "--processed-dir",
            str(processed),
            "--summarizer",
            str(summarizer),
            "--sentiment",
            str(sentiment),
            "--out",
            str(out),
            "--no-log",
            "--no-compare-champion",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert printed["eval/rougeL"] == pytest.approx(saved["eval/rougeL"], abs=1e-4)
    assert "baseline/untuned/rougeL" not in saved
    assert len(saved["predictions"]) == 6
