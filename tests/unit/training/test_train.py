"""The training stage: both tiny models with the quick profile, MLflow tracking, pyfunc models, the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewops.models.summarizer import Summarizer
from reviewops.schema import LABELS
from reviewops.training.train import run_train
from tests.unit.training.helpers import quick_settings

MD5 = "0123456789abcdef0123456789abcdef.dir"  # the data.dvc md5 of the ``project`` fixture


# ~8 s on an idle 2-core box (up to ~50 s when the box is shared): the end-to-end contract.
def test_run_train_tracks_params_lineage_losses_and_loadable_models(project: Path, tiny: dict[str, Path]) -> None:
    import mlflow

    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    result = run_train(settings, processed_dir=project / "processed", out_dir=project / "out")

    client = mlflow.MlflowClient()
    parent = client.get_run(result["run_id"])
    assert parent.info.run_name == "train" and "reviewops.batch" not in parent.data.tags
    params = parent.data.params
    assert params["summarizer.model"] == str(tiny["causal"])
    assert params["train.profile"] == "quick" and params["train.active.summarizer_max_steps"] == "4"
    assert params["data/dvc_md5"] == "0123456789abcdef0123456789abcdef.dir"
    train_sha = hashlib.sha256((project / "processed" / "train.parquet").read_bytes()).hexdigest()
    assert params["data/train_sha256"] == train_sha
    assert params["data/n_train_rows"] == "32"
    metrics = parent.data.metrics
    for key in (
        "train/summarizer_loss",
        "train/summarizer_eval_loss",
        "train/sentiment_loss",
        "train/sentiment_eval_loss",
        "train/sentiment_eval_macro_f1",
    ):
        assert np.isfinite(metrics[key]), key
    assert metrics["train/summarizer_global_step"] == 4 and metrics["train/sentiment_global_step"] == 6

    # Per-step curves live in the nested run of each model, namespaced.
    for name, steps in (("summarizer", 4), ("sentiment", 6)):
        child = result["child_run_ids"][name]
        assert client.get_run(child).data.tags["mlflow.parentRunId"] == result["run_id"]
        losses = client.get_metric_history(child, "train/loss")
        assert len(losses) >= 2 and all(np.isfinite(m.value) for m in losses)
        assert max(m.step for m in client.get_metric_history(child, "eval/loss")) == steps

    # Models: HF directories for evaluation/serving, and pyfunc URIs for the registry.
    assert (Path(result["model_dirs"]["summarizer"]) / "config.json").is_file()
    assert Summarizer.load(result["model_dirs"]["summarizer"], settings.summarizer).summarize(["好吃"])[0]
    texts = pd.DataFrame({"text": ["Love it, great flavor", "太难吃了"]})
    summaries = mlflow.pyfunc.load_model(result["model_uris"]["summarizer"]).predict(texts)
    assert list(summaries.columns) == ["summary"] and all(s.strip() for s in summaries["summary"])
    sentiment = mlflow.pyfunc.load_model(result["model_uris"]["sentiment"]).predict(texts)
    assert set(sentiment["label"]) <= set(LABELS)
    proba = sentiment[[f"proba_{label}" for label in LABELS]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # Artifacts stay beside the sqlite database, not in the working directory.
    assert (project / "mlartifacts").is_dir() and not (project / "mlruns").exists()


def test_a_retune_run_is_named_after_its_batch_and_logs_its_splits_as_inputs(
    project: Path, tiny: dict[str, Path]
) -> None:
    import mlflow

    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    retune = project / "data" / "interim" / "retune" / "batch-007"  # retune_dir() under the default interim_dir
    shutil.copytree(project / "processed", retune)
    pd.read_parquet(retune / "val.parquet").to_parquet(retune / "test.parquet", index=False)
    result = run_train(settings, processed_dir=retune, out_dir=project / "out", only="sentiment", log_models=False)

    run = mlflow.MlflowClient().get_run(result["run_id"])
    assert run.info.run_name == "retune batch-007" and run.data.tags["reviewops.batch"] == "batch-007"
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["test", "train", "val"]
    for split, context, rows in (("train", "training", 32), ("val", "validation", 8), ("test", "testing", 8)):
        sha = hashlib.sha256((retune / f"{split}.parquet").read_bytes()).hexdigest()
        tags = {t.key: t.value for t in inputs[split].tags}
        assert tags == {"mlflow.data.context": context, "split": split, "sha256": sha, "dvc_md5": MD5}
        assert inputs[split].dataset.digest == sha[:16]
        assert json.loads(inputs[split].dataset.profile)["num_rows"] == rows
        assert json.loads(inputs[split].dataset.source)["uri"].endswith(f"batch-007/{split}.parquet")


def test_run_name_says_train_or_retune_batch(tmp_path: Path) -> None:
    from reviewops.config import Settings
    from reviewops.monitoring.retune import retune_dir
    from reviewops.training.common import retune_batch, run_name

    settings = Settings(paths={"interim_dir": str(tmp_path / "interim")})
    assert run_name(settings, retune_dir(settings, "2024-06-batch")) == "retune 2024-06-batch"
    assert retune_batch(settings, tmp_path / "interim" / "retune" / "x" / "..") is None  # that is retune/ itself
    assert run_name(settings, tmp_path / "processed") == "train"


def test_train_cli_quick_json(project: Path, tiny: dict[str, Path]) -> None:
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    args = [
        "--set",
        f"sentiment.model={tiny['encoder']}",
        "--set",
        f"summarizer.model={tiny['causal']}",
        "--set",
        f"paths.models_dir={project / 'models'}",
        "--set",
        f"paths.reports_dir={project / 'reports'}",
        "train",
        "--profile",
        "quick",
        "--only",
        "sentiment",
        "--processed-dir",
        str(project / "processed"),
        "--out",
        str(project / "out"),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # stdout holds only the result; progress goes to stderr
    assert payload["profile"] == "quick" and set(payload["model_uris"]) == {"sentiment"}
    assert payload["model_uris"]["sentiment"].startswith("models:/")
    assert payload["timings"]["sentiment_train_s"] > 0 and len(payload["run_id"]) == 32
    # The report that evaluate/gate read by default.
    report = json.loads((project / "reports" / "train.json").read_text())
    assert report["run_id"] == payload["run_id"] and report["model_uris"] == payload["model_uris"]
    assert Path(report["model_dirs"]["sentiment"]).is_dir()


def test_train_cli_missing_data_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--processed-dir", str(tmp_path / "nope"), "--json"])
    assert result.exit_code != 0
    assert "dvc repro split" in str(result.exception) or "dvc repro split" in result.output


def test_logged_models_carry_their_code_and_installable_requirements(project: Path, tiny: dict[str, Path]) -> None:
    import mlflow
    from packaging.requirements import Requirement

    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    mlflow.set_experiment("pyfunc-logging")  # not the experiment id an earlier test left active
    with mlflow.start_run():
        from reviewops.models.pyfunc import log_sentiment

        info = log_sentiment(str(tiny["encoder"]), settings.sentiment)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    reqs = [
        Requirement(line)
        for line in (local / "requirements.txt").read_text().split()
        if line and not line.startswith("-")
    ]
    pins = {r.name: str(r.specifier) for r in reqs}
    assert {"torch", "transformers", "mlflow", "pyyaml"} <= set(pins)
    assert not [s for s in pins.values() if "+" in s], pins  # pip cannot install a local "+cpu" build tag
    assert (local / "code" / "reviewops" / "models" / "pyfunc.py").is_file()
    assert (local / "code" / "reviewops" / "config.py").is_file()
