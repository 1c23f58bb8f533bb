"""Deployments end to end: a real Prefect server, `python -m flows.deployments` serving both flows.

Retraining runs first through its deployment (so a champion exists), then a drifted batch is
dropped into the inbox and the monitor deployment is triggered; the drift decision, the re-tune
(a second retraining run, starting from the champion) and the gate decision are checked in the
files, the Prefect API and MLflow. Tiny random-weight models, quick profile.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import make_tiny_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} not up after {timeout}s:\n{log.read_text()[-3000:]}")


def _start(cmd: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    fh = log.open("w")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the process and its children only
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path):
    """(project, api_url, serve log): Prefect server + `python -m flows.deployments` in a tiny project."""
    project = make_tiny_project(tmp_path / "proj", {"drift.inbox_interval_minutes": 600})
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_API_URL": api,
        "BENTOML_HOME": str(tmp_path / "bentoml_home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    procs: list[subprocess.Popen] = []
    try:
        server_log = tmp_path / "server.log"
        procs.append(
            _start(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                tmp_path,
                env,
                server_log,
            )
        )
        _wait_http(f"{api}/health", 120, procs[0], server_log)
        serve_log = tmp_path / "serve.log"
        procs.append(_start([sys.executable, "-m", "flows.deployments"], project, env, serve_log))
        yield project, api, serve_log
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _wait_deployments(names: list[str], timeout: float, log: Path) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                for name in names:
                    client.read_deployment_by_name(name)
                return
            except Exception:  # noqa: BLE001 - not registered yet
                time.sleep(1)
    raise AssertionError(f"deployments {names} not registered after {timeout}s:\n{log.read_text()[-3000:]}")


def test_deployments_retrain_then_drifted_inbox_batch_retunes(served, monkeypatch):
    import mlflow
    from flows.deployments import INBOX_DEPLOYMENT, RETRAIN_DEPLOYMENT, SCORE_DEPLOYMENT
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from reviewops.monitoring import batches, cooldown, inbox

    project, api, serve_log = served
    monkeypatch.chdir(project)
    # served runs have PREFECT_API_URL: the ledger and the cooldown live in Prefect variables
    # (orchestration.state auto); the test reads them there too
    monkeypatch.setenv("PREFECT_API_URL", api)
    with temporary_settings({PREFECT_API_URL: api}):
        _wait_deployments([RETRAIN_DEPLOYMENT, INBOX_DEPLOYMENT, SCORE_DEPLOYMENT], 120, serve_log)

        first = run_deployment(RETRAIN_DEPLOYMENT, timeout=300, poll_interval=2)
        assert first.state.is_completed(), f"{first.state}\n{serve_log.read_text()[-4000:]}"
        first_gate = json.loads(Path("reports/gate.json").read_text())
        assert first_gate["passed"] and first_gate["registered"]["sentiment"]["aliases"] == ["champion"]
        # The promotion was packaged: champion models in the BentoML store and a built Bento.
        bentoml_home = project.parent / "bentoml_home"
        assert (bentoml_home / "models" / "review-sentiment").is_dir()
        assert any((bentoml_home / "bentos" / "reviewops").iterdir())

        batch = batches.generate_batch(project / "data" / "inbox", rows=600, seed=43, tag="T1")
        run = run_deployment(INBOX_DEPLOYMENT, timeout=300, poll_interval=2)
        assert run.state.is_completed(), f"{run.state}\n{serve_log.read_text()[-4000:]}"

    flows = {f["id"]: f["name"] for f in _post(f"{api}/flows/filter", {"limit": 200})}
    runs = [(flows[r["flow_id"]], r["state_type"]) for r in _post(f"{api}/flow_runs/filter", {"limit": 200})]
    assert ("reviewops-monitor", "COMPLETED") in runs
    # one retraining from the nightly deployment, one re-tune as the monitor's subflow
    assert sum(1 for name, state in runs if name == "reviewops-retrain" and state == "COMPLETED") >= 2, runs

    with temporary_settings({PREFECT_API_URL: api}):
        ledger = inbox.read_ledger(_settings())
    assert not inbox.ledger_path(_settings()).exists()
    assert ledger[batch.name]["status"] == "completed"
    summary = json.loads(Path(ledger[batch.name]["summary"]).read_text())
    assert summary["drift"]["drifted"] and summary["drift"]["fired"], summary["drift"]
    assert summary["action"] == "retrained"
    assert Path(summary["report"]).is_file() and summary["report"].endswith(f"drift/{batches.batch_name(batch)}.html")
    assert summary["drift"]["champion"]["sentiment"]  # champion predictions were part of the check
    # the batch was scored first; the drift check read those predictions for the current side
    scoring = summary["scoring"]
    assert scoring["ok"] and sum(scoring["counts"][k] for k in ("scored", "quarantined", "deduplicated")) == 600
    assert summary["drift"]["predictions"]["current"] == "scored dataset"
    assert summary["drift"]["predictions"]["scored"]["matched"] == scoring["counts"]["scored"]
    assert summary["drift"]["sentiment_agreement"] is not None  # ratings and predictions both: their agreement
    assert summary["data"]["new_version"] != summary["data"]["old_version"]
    assert (project / "data" / "raw" / summary["data"]["raw_file"]).is_file()
    split = summary["retune_split"]
    assert split["train"]["new"] > 0 and split["train"]["replay"] == min(
        split["train"]["new"], split["train"]["old_available"]
    )
    assert {v["start"] for k, v in summary["starting_point"].items() if isinstance(v, dict)} == {"champion"}
    assert summary["retrain"]["profile"] == "quick"

    # the gate's decision is recorded: reports/gate.json and a gate run under the re-tune's train run
    gate = json.loads(Path("reports/gate.json").read_text())
    assert gate["passed"] is summary["retrain"]["gate"]["passed"] is True
    assert gate["registered"]["summarizer"]["version"] == "2"
    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    client = mlflow.MlflowClient()
    train_run = client.get_run(summary["retrain"]["run_id"])
    assert train_run.data.params["train.profile"] == "quick"
    assert train_run.data.params["data/processed_dir"].endswith(f"retune/{batches.batch_name(batch)}")
    metrics = train_run.data.metrics
    assert "eval_old/sentiment_macro_f1" in metrics and "eval/sentiment_macro_f1" in metrics
    assert metrics["eval_old/n"] == summary["retune_split"]["test"]["old"]
    query = f"tags.mlflow.parentRunId = '{train_run.info.run_id}' and tags.`reviewops.stage` = 'gate'"
    gates = client.search_runs([train_run.info.experiment_id], query)
    assert [r.data.tags["gate.decision"] for r in gates] == ["passed"]
    drift_run = client.get_run(summary["drift"]["mlflow_run_id"])
    assert drift_run.data.tags["drift.drifted"] == "true"

    # the re-tune started the cooldown
    with temporary_settings({PREFECT_API_URL: api}):
        assert cooldown.cooldown_active(_settings())

    # a batch that fails validation: the monitor run fails with the message, nothing is appended
    raw_before = sorted(p.name for p in (project / "data" / "raw").iterdir())
    bad = project / "data" / "inbox" / "bad.csv"
    bad.write_text(
        "review_id,product_id,text,summary,rating,timestamp,language\n"
        + "".join(
            f"X-{i},P-1,{'fine product' if i % 2 else ''},ok,{9 if i % 3 else 5},2024-01-01T00:00:00Z,en\n"
            for i in range(30)
        )
    )
    with temporary_settings({PREFECT_API_URL: api}):
        run = run_deployment(INBOX_DEPLOYMENT, timeout=120, poll_interval=2)
        assert run.state.is_completed()  # the poller itself goes on
        entry = inbox.read_ledger(_settings())["bad.csv"]
    assert entry["status"] == "failed" and "failed validation" in entry["error"]
    assert sorted(p.name for p in (project / "data" / "raw").iterdir()) == raw_before
    monitor_runs = [
        r["state_type"]
        for r in _post(f"{api}/flow_runs/filter", {"limit": 200})
        if flows.get(r["flow_id"]) == "reviewops-monitor"
    ]
    assert sorted(monitor_runs) == ["COMPLETED", "FAILED"]


def _post(url: str, body: dict) -> list[dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def _settings():
    from reviewops.config import load_settings

    return load_settings("params.yaml")
