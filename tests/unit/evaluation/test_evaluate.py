"""The evaluate stage: the training report, real (tiny) model folders and the CLI."""

from __future__ import annotations

import json

import pytest

from reviewops.errors import ReviewOpsError
from reviewops.evaluation.evaluate import evaluate_models, read_train_report
from tests.unit.evaluation.fakes import make_settings, make_test_df


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
    result = evaluate_models(make_settings(4), make_test_df(8), summarizer, sentiment, base_summarizer_path=summarizer)
    for key in (
        "eval/rougeL",
        "eval/sentiment_macro_f1",
        "baseline/lead8/rougeL",
        "baseline/untuned/rougeL",
        "slice/language=zh/rougeL",
        "behaviour/invariance_product_name",
        "behaviour/summary_nonempty",
        "eval/contradiction_rate",
        "reference/contradiction_rate",
    ):
        assert 0.0 <= result[key] <= 1.0, key
    judged = [p["contradiction"] for p in result["predictions"] if p["contradiction"] is not None]
    assert result["eval/contradiction_n"] == len(judged) == 4  # every review of make_test_df is polar
    assert result["eval/contradiction_rate"] == sum(judged) / 4
    # Greedy decoding: the "untuned" baseline with the same weights scores exactly the same.
    assert result["baseline/untuned/rougeL"] == result["eval/rougeL"]
    assert result["behaviour/summary_nonempty"] == 1.0  # the Summarizer never returns ""
    assert result["meta"]["summarization_rows"] == 4
    assert result["meta"]["models"]["untuned_summarizer"] == str(summarizer)


def test_evaluate_models_names_the_missing_model(tmp_path):
    with pytest.raises(ReviewOpsError, match="reviewops train"):
        evaluate_models(make_settings(4), make_test_df(4), tmp_path / "nope", None)


def test_cli_evaluate_writes_json(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    summarizer, sentiment = tiny_models
    processed = tmp_path / "processed"
    processed.mkdir()
    make_test_df(6).to_parquet(processed / "test.parquet")
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


def test_run_evaluate_turns_a_champion_download_error_into_a_note(tiny_models, tmp_path, monkeypatch):
    from reviewops.config import PathsConfig
    from reviewops.evaluation.evaluate import run_evaluate
    from reviewops.registry import registry, tracking

    def champion_dir(name: str):
        if name == "review-summarizer":
            raise ReviewOpsError("artifact store unreachable")
        return None  # no sentiment champion yet

    monkeypatch.setattr(tracking, "configure_mlflow", lambda settings: None)
    monkeypatch.setattr(registry, "champion_dir", champion_dir)
    summarizer, sentiment = tiny_models
    processed = tmp_path / "processed"
    processed.mkdir()
    make_test_df(4).to_parquet(processed / "test.parquet")
    settings = make_settings(2).model_copy(update={"paths": PathsConfig(reports_dir=tmp_path / "reports")})
    logged: list[str] = []
    result = run_evaluate(
        settings,
        processed_dir=processed,
        summarizer_path=summarizer,
        sentiment_path=sentiment,
        base_summarizer_path=summarizer,
        log_mlflow=False,
        compare_champion=True,
        log=logged.append,
    )
    assert result["meta"]["notes"] == ["champion review-summarizer not re-scored: artifact store unreachable"]
    assert result["meta"]["models"]["champion_summarizer"] is None
    assert not any(k.startswith("champion/") for k in result)
    assert result["meta"]["out"] == str(tmp_path / "reports" / "eval.json")
    saved = json.loads((tmp_path / "reports" / "eval.json").read_text(encoding="utf-8"))
    assert saved["meta"]["notes"] == result["meta"]["notes"]
