"""Workspace outputs of a drift check: the batch's tags and metadata, and the one merged Evidently snapshot."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from reviewops.monitoring.outputs import add_to_workspace, merged_snapshot, snapshot_metadata, snapshot_tags


def _summary(drifted: bool) -> dict:
    return {
        "name": "batch-7",
        "reference": {"rows": 10},
        "current": {"rows": 8},
        "n_drifted": 1,
        "n_columns": 2,
        "share_drifted": 0.5,
        "sampling": {"note": "sampled 8 of 8 current rows with seed 42"},
        "decision": {"drifted": drifted, "fired": ["share_drifted", "language_shift"] if drifted else []},
    }


def _snapshot(column: str, tags: list[str]):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    ref = pd.DataFrame({column: [1.0, 2.0, 3.0, 4.0, 5.0] * 2})
    cur = pd.DataFrame({column: [4.0, 5.0, 6.0, 7.0] * 2})
    definition = DataDefinition(numerical_columns=[column])
    report = Report(
        [DriftedColumnsCount(columns=[column], num_method="wasserstein", num_threshold=0.1), ValueDrift(column=column)],
        tags=tags,
        include_tests=True,
    )
    return report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
        timestamp=datetime(2026, 1, 1),
    )


def test_tags_and_metadata_say_the_decision_and_the_batch():
    assert snapshot_tags(_summary(True)) == ["reviewops", "drifted", "batch:batch-7"]
    assert snapshot_tags(_summary(False)) == ["reviewops", "not-drifted", "batch:batch-7"]
    assert snapshot_metadata(_summary(True)) == {
        "batch": "batch-7",
        "decision": "drifted",
        "fired": "share_drifted, language_shift",
        "drifted_columns": "1 of 2 columns drifted on all rows (share 0.50)",
        "sampling": "sampled 8 of 8 current rows with seed 42",
    }
    assert snapshot_metadata(_summary(False))["fired"] == "none"


@pytest.fixture(scope="module")
def merged():
    return merged_snapshot(_summary(True), _snapshot("a", ["all-rows"]), _snapshot("b", ["sample"]))


def test_merged_snapshot_holds_both_reports_as_two_groups(merged):
    assert merged.name == "batch-7" and merged.tags == ["reviewops", "drifted", "batch:batch-7"]
    assert [w.title for w in merged.widgets] == [
        "All rows (10 reference and 8 current rows): 1 of 2 columns drifted on all rows (share 0.50)",
        "Sample: sampled 8 of 8 current rows with seed 42",
    ]
    columns = sorted(r.metric_value_location.metric.params.get("column", "") for r in merged.metric_results.values())
    assert columns == ["", "", "a", "b"]  # two DriftedColumnsCount (no column) + two ValueDrift
    assert len(merged.top_level_metrics) == 4
    # one tests summary over both halves: 2 DriftedColumnsCount tests + 2 ValueDrift tests
    stats, listing = merged.tests_widgets
    assert len(listing.params["tests"]) == 4


def test_add_to_workspace_keeps_one_snapshot_per_call(merged, tmp_path):
    from evidently.ui.workspace import Workspace

    first = add_to_workspace(tmp_path / "ws", merged)
    second = add_to_workspace(tmp_path / "ws", merged)
    ws = Workspace(str(tmp_path / "ws"))
    project = ws.search_project("reviewops-drift")[0]
    assert len(first) == len(second) == 1
    assert sorted(str(i) for i in ws.list_runs(project.id)) == sorted(first + second)
    stored = ws.get_run(project.id, first[0])
    assert stored.tags == merged.tags and stored.metadata["decision"] == "drifted"
    assert len(ws.get_dashboard(project.id).panels) == 4
