"""MLflow faults: an unreachable server fails fast with one line; a copied store is caught and re-pointed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from reviewops.config import Settings, TrackingConfig
from reviewops.errors import ReviewOpsError
from reviewops.registry.relocate import relocate_store
from reviewops.registry.tracking import apply_http_limits, configure_mlflow, probe, tracking_errors
from tests.unit.training.helpers import synthetic_processed

ROOT = Path(__file__).resolve().parents[3]


def _dead_uri() -> str:
    """``http://127.0.0.1:<port>`` with nothing listening (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def restore_mlflow(monkeypatch: pytest.MonkeyPatch):
    # Earlier tests point the registry elsewhere (configure_mlflow sets both URIs): restore both.
    old_uri, old_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(key, raising=False)
    yield
    mlflow.set_tracking_uri(old_uri)
    mlflow.set_registry_uri(old_registry)


# --------------------------------------------------------------------------- unreachable server


def test_cli_gate_promote_train_fail_fast_with_one_line_naming_the_uri(tmp_path: Path) -> None:
    uri = _dead_uri()
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "eval.json").write_text(json.dumps({"eval/rougeL": 0.5, "eval/sentiment_macro_f1": 0.8}))
    (reports / "train.json").write_text(
        json.dumps({"run_id": "0" * 32, "model_uris": {"summarizer": "models:/m-0123", "sentiment": "models:/m-4567"}})
    )
    processed = tmp_path / "processed"
    processed.mkdir()
    df = synthetic_processed(20)
    df.iloc[:16].to_parquet(processed / "train.parquet", index=False)
    df.iloc[16:].to_parquet(processed / "val.parquet", index=False)
    commands = {
        "gate": [
            "gate",
            "--eval",
            str(reports / "eval.json"),
            "--train-report",
            str(reports / "train.json"),
            "--out",
            str(reports / "gate.json"),
        ],
        "promote": ["promote", "review-summarizer"],
        "train": [
            "train",
            "--profile",
            "quick",
            "--only",
            "sentiment",
            "--processed-dir",
            str(processed),
            "--out",
            str(tmp_path / "out"),
            "--report",
            str(reports / "train-new.json"),
            "--json",
        ],
    }
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "COLUMNS": "80"}
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        env.pop(key, None)  # MLflow's defaults: retries for about four minutes unless we bound them
    start = time.monotonic()
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "reviewops", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    try:
        outputs = {name: proc.communicate(timeout=120) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    elapsed = time.monotonic() - start
    for name, (stdout, stderr) in outputs.items():
        assert procs[name].returncode == 2, (name, stderr)
        assert "Traceback" not in stderr, (name, stderr)
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (name, stderr)
        assert uri in errors[0] and "unreachable" in errors[0], (name, errors[0])
        assert stdout.strip() == "", (name, stdout)
    assert elapsed < 60, f"{elapsed:.0f} s for three commands started together"
    assert not (reports / "gate.json").exists() and not (reports / "train-new.json").exists()


def test_probe_names_the_uri_without_password() -> None:
    uri = _dead_uri().replace("http://", "http://alice:s3cret@")
    with pytest.raises(ReviewOpsError) as err:
        probe(uri, timeout_s=5)
    assert "alice:***@127.0.0.1" in str(err.value) and "s3cret" not in str(err.value)
    assert "connection refused" in str(err.value)
    probe("sqlite:///nowhere/mlflow.db", timeout_s=1)  # only servers are probed


def test_server_lost_mid_stage_becomes_one_error(restore_mlflow: None) -> None:
    uri = _dead_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    apply_http_limits(TrackingConfig(max_retries=0, timeout_s=5))
    start = time.monotonic()
    with pytest.raises(ReviewOpsError) as err, tracking_errors(uri):
        mlflow.MlflowClient().get_model_version_by_alias("review-summarizer", "champion")
    assert time.monotonic() - start < 20
    message = str(err.value)
    assert "\n" not in message and uri in message and "Connection refused" in message
    # Other failures keep their own type.
    with pytest.raises(ValueError), tracking_errors(uri):
        raise ValueError("not a connection problem")


def test_http_limits_follow_settings_but_user_env_wins(restore_mlflow: None, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_http_limits(TrackingConfig(timeout_s=7, max_retries=1))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    apply_http_limits(TrackingConfig(timeout_s=9, max_retries=3))  # a later stage's settings replace ours
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "9"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    apply_http_limits(TrackingConfig(max_retries=0))
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"


def test_params_yaml_mirrors_tracking_defaults() -> None:
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())["tracking"]
    assert Settings(tracking=params).tracking == TrackingConfig()


# --------------------------------------------------------------------------- a copied project


def test_copied_project_is_refused_then_relocated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_mlflow: None
) -> None:
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(original)
    configure_mlflow(Settings())
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_dict({"a": 1}, "eval/eval.json")
    run_id = run.info.run_id
    shutil.copytree(original, copy)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # set_tracking_uri may export the original's

    # Before: the copy's runs silently wrote into original/mlartifacts.
    with pytest.raises(ReviewOpsError) as err:
        configure_mlflow(Settings())
    message = str(err.value)
    assert str(original / "mlartifacts") in message and str(copy) in message
    assert f"python -m reviewops.registry.tracking relocate {original} {copy}" in message
    # A deliberate external artifact root stays possible.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert configure_mlflow(Settings(tracking={"allow_external_artifacts": True}))

    proc = subprocess.run(
        [sys.executable, "-m", "reviewops.registry.tracking", "relocate", str(original), str(copy)],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "re-pointed" in proc.stdout
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert configure_mlflow(Settings()) == f"sqlite:///{copy / 'mlflow.db'}"
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.artifact_uri.startswith((copy / "mlartifacts").as_uri())
    assert json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="eval/eval.json", dst_path=str(tmp_path / "dl")
            )
        ).read_text()
    ) == {"a": 1}
    with mlflow.start_run(run_name="after-move") as new:
        mlflow.log_dict({"b": 2}, "x.json")
    assert (copy / "mlartifacts" / new.info.run_id / "artifacts" / "x.json").is_file()
    assert not (original / "mlartifacts" / new.info.run_id).exists()


def test_relocate_needs_the_database(tmp_path: Path) -> None:
    with pytest.raises(ReviewOpsError, match="mlflow.db not found"):
        relocate_store(tmp_path / "old", tmp_path / "new")
