"""Under a real (temporary) Prefect server: a gate rejection is a Completed run with a WARNING, a real
failure still fails, and every artifact can be read back by its key."""

from __future__ import annotations

import json
import logging

import pytest
from flows import artifacts, monitor, retrain
from prefect import flow

from reviewops.config import GateConfig, PathsConfig, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Reports as the evaluate and train stages leave them, and MLflow on SQLite in the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "eval.json").write_text(
        json.dumps(
            {
                "eval/rougeL": 0.01,  # under the 0.05 floor
                "eval/sentiment_macro_f1": 0.8,
                "eval/contradiction_rate_macro": 0.1,
                "meta": {"test_fingerprint": "abc123"},
            }
        )
    )
    (reports / "train.json").write_text(
        json.dumps({"model_uris": {"summarizer": "models:/m-x", "sentiment": "models:/m-y"}, "run_id": None})
    )
    gate = GateConfig(min_rougeL=0.05, summarizer_name="o-sum", sentiment_name="o-sent")
    return Settings(paths=PathsConfig(reports_dir=reports, models_dir=tmp_path / "models"), gate=gate)


@flow(name="gate-only")
def gate_only(settings: Settings) -> dict:
    return retrain.quality_gate(settings)


def _logs(flow_run_id) -> list[tuple[int, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs reach the API in batches: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200, offset=0)
    return [(log.level, log.message) for log in logs]


def _artifact(key: str):
    """The latest artifact with ``key``.

    A plain request: Prefect 3.8's ``Artifact.get`` and client send null run filters its server
    refuses, and an empty task-run filter leaves out artifacts created by a flow.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "UPDATED_DESC", "limit": 1, "offset": 0}
    with get_client(sync_client=True) as client:
        found = Artifact.model_validate_list(client.request("POST", "/artifacts/filter", json=body).json())
    assert found, f"no artifact {key}"
    return found[0]


def test_a_gate_rejection_completes_with_a_warning_and_an_artifact(prefect_server, project):
    state = gate_only(project, return_state=True)
    assert state.is_completed(), state.message
    decision = state.result()
    assert decision["passed"] is False and decision["champion"] is None
    assert [c["name"] for c in decision["checks"] if not c["passed"]] == ["floor/rougeL"]
    logs = _logs(state.state_details.flow_run_id)
    warnings = [m for level, m in logs if level == logging.WARNING]
    assert any("quality gate rejected the candidates" in m and "floor/rougeL" in m for m in warnings)
    assert not [m for level, m in logs if level >= logging.ERROR]
    gate = _artifact(artifacts.GATE_DECISION_KEY)
    assert gate.type == "markdown" and gate.flow_run_id == state.state_details.flow_run_id
    assert gate.data.startswith("# Quality gate: REJECTED: the registry was not changed; there is no champion yet")
    assert "| floor/rougeL | 0.0100 | >= 0.0500 | **FAIL** | gate.min_rougeL |" in gate.data
    assert json.loads((project.paths.reports_dir / "gate.json").read_text())["passed"] is False


def test_a_real_gate_failure_still_fails_the_run(prefect_server, project):
    (project.paths.reports_dir / "eval.json").unlink()
    state = gate_only(project, return_state=True)
    assert state.is_failed()
    assert "eval.json not found" in str(state.result(raise_on_failure=False))


def test_a_rejected_retune_is_a_warning_in_the_monitor(prefect_server, monkeypatch):
    @flow(name="retrain-stand-in")
    def rejected(settings, refresh_data=True):  # noqa: ANN001 - the retrain flow's signature
        return {"gate": {"passed": False}}

    @flow(name="retune-only")
    def retune_only() -> str | None:
        return monitor._retune(Settings())

    monkeypatch.setattr(monitor.retrain, "retrain_flow", rejected)
    state = retune_only(return_state=True)
    assert state.is_completed() and state.result() is None  # no Bento: nothing promoted
    logs = _logs(state.state_details.flow_run_id)
    assert (logging.WARNING, "re-tuned models rejected by the quality gate; the champion stays") in logs


def test_each_artifact_is_read_back_by_its_key(prefect_server):
    data = {"ingested": 10, "valid": 8, "quarantined": 2, "deduplicated": 1, "empty_after_cleaning": 0}
    data.update({"clean": 7, "splits": {"train": 5, "val": 1, "test": 1}, "data_version": "v1.dir"})
    signal = {"name": "embedding", "score": 0.51, "threshold": 0.55, "fired": False}
    summary = {
        "name": "batch-7",
        "action": "none: no drift",
        "report": "reports/drift/batch-7.html",
        "drift": {"drifted": False, "signals": [signal]},
    }

    @flow(name="publish-all")
    def publish_all() -> None:
        artifacts.publish_data_counts(data)
        artifacts.publish_test_metrics({"eval/rougeL": 0.123456, "baseline/lead8/rougeL": 0.1})
        artifacts.publish_drift_summary(summary)

    publish_all()
    counts = _artifact(artifacts.DATA_COUNTS_KEY)
    assert counts.type == "table"
    rows = json.loads(counts.data)
    assert [(r["step"], r["rows"]) for r in rows][:3] == [("ingested", 10), ("valid", 8), ("quarantined", 2)]
    assert rows[-1] == {"step": "split: test", "rows": 1, "note": ""}
    metrics = json.loads(_artifact(artifacts.TEST_METRICS_KEY).data)
    assert metrics == [{"metric": "rougeL", "fine-tuned": 0.1235, "lead-8": 0.1}]
    drift = _artifact(artifacts.DRIFT_SUMMARY_KEY)
    assert drift.data.splitlines()[0] == "# Batch batch-7: no drift"
    assert drift.description == "Drift check of batch-7: none: no drift"
