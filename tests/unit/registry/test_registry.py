"""MLflow registry helpers and the gate's side effects, on a real SQLite-backed MLflow in tmp."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from pathlib import Path

import mlflow
import pytest

from reviewops.config import GateConfig, PathsConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.evaluate import log_to_mlflow
from reviewops.evaluation.gate import GateFailedError, decide_and_register, run_gate
from reviewops.registry import registry
from reviewops.registry.tracking import configure_mlflow, tracking_uri


class _Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # noqa: ANN001
        return model_input


@pytest.fixture(scope="module")
def mlflow_env(tmp_path_factory):
    """One SQLite store for the module (creating the schema takes seconds); tests use distinct names."""
    root = tmp_path_factory.mktemp("mlflow")
    old_env, old_cwd, old_uri = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd(), mlflow.get_tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    os.chdir(root)
    settings = Settings(paths=PathsConfig(reports_dir=root / "reports", models_dir=root / "models"))
    configure_mlflow(settings)
    yield root, settings
    os.chdir(old_cwd)
    if old_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old_env
    mlflow.set_tracking_uri(old_uri)


def _alias(name: str, alias: str) -> str | None:
    mv = registry.get_alias_version(name, alias)
    return None if mv is None else str(mv.version)


def _log_model(root: Path, marker: str, metrics: dict[str, float] | None = None) -> tuple[str, str]:
    """Log a trivial pyfunc with a ``model_dir`` artifact (like training does); return (uri, run_id)."""
    hf = root / f"hf-{marker}"
    hf.mkdir(exist_ok=True)
    (hf / "config.json").write_text(json.dumps({"marker": marker}))
    with mlflow.start_run(run_name=f"train-{marker}") as run:
        if metrics:
            mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=_Echo(), artifacts={"model_dir": str(hf)}, pip_requirements=[]
        )  # skip slow requirement inference
    return info.model_uri, run.info.run_id


def test_tracking_uri_respects_env(mlflow_env):
    root, _ = mlflow_env
    assert tracking_uri() == f"sqlite:///{root}/mlflow.db"
    assert mlflow.get_registry_uri() == tracking_uri()
    exp = mlflow.get_experiment_by_name("reviewops")
    assert exp.artifact_location.startswith((root / "mlartifacts").as_uri())


def test_register_and_aliases(mlflow_env):
    root, _ = mlflow_env
    assert registry.get_alias_version("never-registered", "champion") is None
    uri, run_id = _log_model(root, "basic")
    version = registry.register(uri, "t-basic", {"stage": "test"})
    assert version == "1"
    assert registry.get_alias_version("t-basic", "challenger") is None
    registry.set_alias("t-basic", "challenger", version)
    mv = registry.get_alias_version("t-basic", "challenger")
    assert (str(mv.version), mv.run_id, mv.tags["stage"]) == ("1", run_id, "test")


def test_promote_and_rollback_walk_the_history(mlflow_env):
    root, _ = mlflow_env
    name = "t-promote"
    versions = [registry.register(_log_model(root, f"p{i}")[0], name) for i in range(3)]
    assert versions == ["1", "2", "3"]
    with pytest.raises(ReviewOpsError, match="no 'challenger'"):
        registry.promote(name)
    with pytest.raises(ReviewOpsError, match="no version 9"):
        registry.promote(name, 9)
    assert registry.promote(name, 1) == {"name": name, "champion": "1", "previous_champion": None}
    with pytest.raises(ReviewOpsError, match="no 'previous_champion'"):
        registry.rollback(name)

    registry.set_alias(name, "challenger", "2")
    assert registry.promote(name)["previous_champion"] == "1"
    assert registry.get_alias_version(name, "challenger") is None  # it is the champion now
    registry.promote(name, "3")
    assert _alias(name, "champion") == "3"
    assert _alias(name, "previous_champion") == "2"

    assert registry.rollback(name) == {"name": name, "champion": "2", "rolled_back": "3", "previous_champion": "1"}
    assert "rolled_back" in mlflow.MlflowClient().get_model_version(name, "3").tags
    assert registry.rollback(name)["champion"] == "1"
    assert registry.get_alias_version(name, "previous_champion") is None
    with pytest.raises(ReviewOpsError, match="promote a specific version"):
        registry.rollback(name)


def test_champion_metrics_prefers_version_tags(mlflow_env):
    root, _ = mlflow_env
    uri, _ = _log_model(root, "metrics", {"eval/rougeL": 0.30, "train/loss": 1.5})
    version = registry.register(uri, "t-metrics", {"eval/rougeL": 0.42, "eval/test_fingerprint": "abc"})
    assert registry.champion_metrics("t-metrics") is None
    registry.promote("t-metrics", version)
    m = registry.champion_metrics("t-metrics")
    assert m["eval/rougeL"] == pytest.approx(0.42)
    assert m["train/loss"] == pytest.approx(1.5)
    assert m["eval/test_fingerprint"] == "abc" and m["version"] == "1"


def test_download_model_dir_finds_the_hf_directory(mlflow_env):
    root, _ = mlflow_env
    uri, _ = _log_model(root, "download")
    registry.promote("t-download", registry.register(uri, "t-download"))
    path = registry.download_model_dir("t-download")
    assert json.loads((path / "config.json").read_text()) == {"marker": "download"}
    assert path.is_relative_to(root / "models" / "registry" / "t-download-v1")
    # An explicit URI works too, and a missing alias names the command to run.
    again = registry.download_model_dir(uri, dst=root / "by-uri")
    assert json.loads((again / "config.json").read_text()) == {"marker": "download"}
    with pytest.raises(ReviewOpsError, match="reviewops gate"):
        registry.download_model_dir("t-download", alias="challenger")


def _eval_result(rouge: float, f1: float) -> dict:
    return {
        "eval/rougeL": rouge,
        "eval/sentiment_macro_f1": f1,
        "eval/contradiction_rate_macro": 0.1,
        "baseline/lead8/rougeL": 0.1,
        "meta": {"test_fingerprint": "fp1"},
        "predictions": [],
    }


def _gate_settings(root: Path, auto_promote: bool) -> Settings:
    return Settings(
        paths=PathsConfig(reports_dir=root / "reports", models_dir=root / "models"),
        gate=GateConfig(
            min_rougeL=0.1,
            min_macro_f1=0.5,
            max_regression=0.02,
            auto_promote=auto_promote,
            summarizer_name="g-sum",
            sentiment_name="g-sent",
        ),
    )


def _uris(root: Path, tag: str) -> dict:
    s_uri, run_id = _log_model(root, f"{tag}-sum")
    c_uri, _ = _log_model(root, f"{tag}-sent")
    return {"summarizer_uri": s_uri, "sentiment_uri": c_uri, "run_id": run_id}


def _versions(name: str) -> list[str]:
    return sorted(str(mv.version) for mv in mlflow.MlflowClient().search_model_versions(f"name='{name}'"))


def test_gate_registers_promotes_and_a_failed_gate_leaves_registry_untouched(mlflow_env):
    root, _ = mlflow_env
    client = mlflow.MlflowClient()

    # 1. First candidate, no champion yet: floors only -> registered and promoted.
    decision = decide_and_register(_gate_settings(root, True), _eval_result(0.30, 0.80), _uris(root, "c1"))
    assert decision.passed
    assert decision.registered["summarizer"] == {
        "name": "g-sum",
        "version": "1",
        "aliases": ["champion"],
        "promoted": True,
        "previous_champion": None,
    }
    assert _alias("g-sent", "champion") == "1"
    assert registry.champion_metrics("g-sum")["eval/rougeL"] == pytest.approx(0.30)
    gate_run = client.get_run(client.get_model_version("g-sum", "1").tags["gate_run_id"])
    assert gate_run.data.metrics["gate/passed"] == 1.0
    assert gate_run.data.params["gate.min_rougeL"] == "0.1"

    # 2. A regressed candidate: fails, nothing registered, aliases unchanged, decision logged.
    with pytest.raises(GateFailedError) as exc:
        decide_and_register(_gate_settings(root, True), _eval_result(0.20, 0.81), _uris(root, "c2"))
    assert "regression/rougeL" in str(exc.value) and "0.2800" in str(exc.value)
    assert _versions("g-sum") == ["1"] and _versions("g-sent") == ["1"]
    assert _alias("g-sum", "champion") == "1"
    assert _alias("g-sum", "challenger") is None
    failed = mlflow.search_runs(filter_string="tags.`gate.decision` = 'failed'", output_format="list")
    assert len(failed) == 1 and failed[0].data.metrics["gate/passed"] == 0.0
    assert failed[0].data.metrics["gate/regression/rougeL/threshold"] == pytest.approx(0.28)
    local = mlflow.artifacts.download_artifacts(run_id=failed[0].info.run_id, artifact_path="gate/decision.json")
    assert json.loads(Path(local).read_text())["passed"] is False

    # 3. A good candidate without auto-promotion: challenger only, then promote and roll back.
    decision = decide_and_register(_gate_settings(root, False), _eval_result(0.31, 0.82), _uris(root, "c3"))
    assert decision.registered["sentiment"]["aliases"] == ["challenger"]
    assert _alias("g-sum", "champion") == "1"
    assert _alias("g-sum", "challenger") == "2"
    assert registry.promote("g-sum")["previous_champion"] == "1"
    assert registry.rollback("g-sum")["champion"] == "1"


def test_run_gate_writes_decision_file_on_failure(mlflow_env):
    root, _ = mlflow_env
    settings = _gate_settings(root, True).model_copy(
        update={"gate": GateConfig(min_rougeL=0.9, summarizer_name="s-sum", sentiment_name="s-sent")}
    )
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "eval.json").write_text(json.dumps(_eval_result(0.3, 0.8)))
    (reports / "train.json").write_text(
        json.dumps({"model_uris": {"summarizer": "models:/m-x", "sentiment": "models:/m-y"}, "run_id": None})
    )
    with pytest.raises(GateFailedError):
        run_gate(settings)
    saved = json.loads((reports / "gate.json").read_text())
    assert saved["passed"] is False and saved["checks"][0]["name"] == "floor/rougeL"
    assert _versions("s-sum") == []


def test_log_to_mlflow_metrics_table_and_json(mlflow_env):
    result = {
        "eval/rougeL": 0.25,
        "slice/language=zh/rougeL": 0.5,
        "behaviour/summary_nonempty": float("nan"),
        "meta": {"test_fingerprint": "fp"},
        "predictions": [{"text": "味道很好", "prediction": "好"}],
    }
    run_id = log_to_mlflow(result)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.metrics == {"eval/rougeL": 0.25, "slice/language_zh/rougeL": 0.5}
    assert run.data.tags["eval.test_fingerprint"] == "fp"
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "eval")}
    assert {"eval/predictions.json", "eval/eval.json"} <= files
    # Logging again to the same (finished) run by id adds to it instead of opening a new one.
    assert log_to_mlflow({"eval/rouge1": 0.4}, run_id=run_id) == run_id
    assert mlflow.MlflowClient().get_run(run_id).data.metrics["eval/rouge1"] == 0.4


def test_cli_gate_exit_code_and_promote_rollback(mlflow_env):
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    root, _ = mlflow_env
    reports = root / "cli-reports"
    reports.mkdir()
    (reports / "eval.json").write_text(json.dumps(_eval_result(0.01, 0.8)))
    (reports / "train.json").write_text(json.dumps(_uris(root, "cli")))
    args = [
        "--set",
        "gate.summarizer_name=cli-sum",
        "--set",
        "gate.sentiment_name=cli-sent",
        "gate",
        "--eval",
        str(reports / "eval.json"),
        "--train-report",
        str(reports / "train.json"),
        "--out",
        str(reports / "gate.json"),
    ]
    runner = CliRunner()
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1
    assert "floor/rougeL" in failed.output and "FAIL" in failed.output
    assert _versions("cli-sum") == []

    (reports / "eval.json").write_text(json.dumps(_eval_result(0.5, 0.8)))
    passed = runner.invoke(app, [*args, "--json"])
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.stdout.strip().splitlines()[-1])["registered"]["summarizer"]["version"] == "1"
    res = runner.invoke(app, ["rollback", "cli-sum"])
    assert res.exit_code != 0  # nothing to roll back to: a one-line ReviewOpsError


def test_drift_reference_is_the_champions_training_split(mlflow_env):
    """drift.champion_reference follows the champion's MLflow lineage and checks the sha256."""
    import hashlib

    import pandas as pd

    from reviewops.config import GateConfig
    from reviewops.monitoring.reference import champion_reference

    root, _ = mlflow_env
    settings = Settings(
        paths=PathsConfig(reports_dir=root / "reports", models_dir=root / "models", processed_dir=root / "current"),
        gate=GateConfig(sentiment_name="ref-sent"),
    )
    path, info = champion_reference(settings)
    assert path == root / "current" / "train.parquet" and "no champion" in info["note"]

    lineage_dir = root / "retune-x"
    lineage_dir.mkdir()
    pd.DataFrame({"text": ["a", "b"], "label": ["positive", "negative"]}).to_parquet(lineage_dir / "train.parquet")
    digest = hashlib.sha256((lineage_dir / "train.parquet").read_bytes()).hexdigest()
    uri, run_id = _log_model(root, "refsent")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(
            {
                "data/processed_dir": str(lineage_dir),
                "data/train_sha256": digest,
                "data/dvc_md5": "abc.dir",
                "git_commit": "deadbeef",
            }
        )
    registry.set_alias("ref-sent", registry.CHAMPION, registry.register(uri, "ref-sent"))

    path, info = champion_reference(settings)
    assert path == lineage_dir / "train.parquet"
    assert info["source"] == "champion run" and info["champion_run_id"] == run_id
    assert info["data_dvc_md5"] == "abc.dir"

    # The split was rebuilt since: the copy registration uploaded to the champion's run is the reference.
    original = pd.read_parquet(lineage_dir / "train.parquet")
    pd.DataFrame({"text": ["changed"], "label": ["neutral"]}).to_parquet(lineage_dir / "train.parquet")
    path, info = champion_reference(settings)
    assert info["source"] == "champion run artifact" and info["sha256"] == digest
    assert path.resolve() == (root / "data" / "interim" / "reference" / run_id / "train.parquet").resolve()
    pd.testing.assert_frame_equal(pd.read_parquet(path), original)

    # A run without that artifact (registered before splits were uploaded): the current split, and how
    # to get the exact data.
    run_dir = Path(urllib.parse.urlsplit(mlflow.get_run(run_id).info.artifact_uri).path)
    shutil.rmtree(run_dir / "data")
    shutil.rmtree(root / "data" / "interim" / "reference")
    path, info = champion_reference(settings)
    assert path == root / "current" / "train.parquet"
    assert "git checkout deadbeef && dvc checkout" in info["note"]
