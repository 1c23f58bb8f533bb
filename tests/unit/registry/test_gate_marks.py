"""What the gate leaves in MLflow for people: verdicts as descriptions, outcome tags, rounded version tags."""

from __future__ import annotations

import mlflow
import pytest

from reviewops.evaluation.gate import GateFailedError, decide_and_register
from reviewops.registry import registry
from reviewops.registry.tracking import NOTE_TAG
from tests.unit.registry.helpers import eval_result, gate_settings, train_run


def _gate_run(train_run_id: str):  # noqa: ANN202
    runs = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{train_run_id}' and tags.`reviewops.stage` = 'gate'",
        output_format="list",
    )
    assert len(runs) == 1
    return runs[0]


def test_a_passing_gate_describes_its_run_the_versions_and_the_training_run(store) -> None:
    _root, first, _ = store
    client = mlflow.MlflowClient()
    gate = _gate_run(first)
    verdict = gate.data.tags[NOTE_TAG]
    assert gate.info.run_name == "gate" and gate.data.tags["reviewops.gate"] == "passed"
    assert verdict.startswith("Quality gate passed: all 3 checks (floor/rougeL 0.1235 (needs >= 0.1000);")
    assert "\n" not in verdict
    version = client.get_model_version("l-sum", "1")
    assert version.description == verdict
    assert version.tags["eval/rougeL"] == "0.1235" and version.tags["eval/sentiment_accuracy"] == "0.8765"
    assert version.tags["eval/test_fingerprint"] == "fp" and version.tags["gate_run_id"] == gate.info.run_id
    # The rounded tag agrees with the training run's exact figure, so the gate keeps comparing exactly.
    assert registry.champion_metrics("l-sum")["eval/rougeL"] == 0.123456789
    train = client.get_run(first)
    assert train.data.tags["reviewops.gate"] == "passed"
    assert train.data.tags[NOTE_TAG] == "Passed the quality gate: registered l-sum v1 (champion), l-sent v1 (champion)."


def test_a_rejected_candidate_is_marked_on_its_training_run(store) -> None:
    root, _, _ = store
    rejected = train_run("retune batch-9")
    with pytest.raises(GateFailedError):
        decide_and_register(gate_settings(root, False), eval_result(0.05, 0.81), rejected)
    train = mlflow.MlflowClient().get_run(rejected["run_id"])
    assert train.data.tags["reviewops.gate"] == "rejected"
    note = train.data.tags[NOTE_TAG]
    assert note.startswith("REJECTED by the quality gate: floor/rougeL 0.0500 (needs >= 0.1000); regression/rougeL")
    assert note.endswith("The registry was not changed.")
    gate = _gate_run(rejected["run_id"])
    assert gate.data.tags["reviewops.gate"] == "rejected" and gate.data.tags["gate.decision"] == "failed"
    assert gate.data.tags[NOTE_TAG].startswith("Quality gate rejected: 2 of 5 checks failed (floor/rougeL 0.0500")
    assert sorted(int(v.version) for v in mlflow.MlflowClient().search_model_versions("name = 'l-sum'")) == [1, 2]
