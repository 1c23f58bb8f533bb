"""Where a drift check is kept: the Evidently workspace (history) and an MLflow run (numbers, page, summary)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewops.reports import file_lock

if TYPE_CHECKING:
    from reviewops.config import Settings

WORKSPACE_PROJECT = "reviewops-drift"
TAG_DRIFTED, TAG_CLEAN = "drifted", "not-drifted"


def snapshot_tags(summary: Mapping[str, Any]) -> list[str]:
    """``reviewops``, ``drifted`` or ``not-drifted``, and ``batch:<name>``: the snapshot's tags in the workspace."""
    verdict = TAG_DRIFTED if summary["decision"]["drifted"] else TAG_CLEAN
    return ["reviewops", verdict, f"batch:{summary['name']}"]


def snapshot_metadata(summary: Mapping[str, Any]) -> dict[str, str]:
    """What the workspace's snapshot list shows next to the tags: batch, decision, drifted columns, sampling."""
    from reviewops.monitoring.summary import drifted_columns_sentence

    decision = summary["decision"]
    return {
        "batch": str(summary["name"]),
        "decision": TAG_DRIFTED if decision["drifted"] else TAG_CLEAN,
        "fired": ", ".join(decision["fired"]) or "none",
        "drifted_columns": drifted_columns_sentence(summary),
        "sampling": str(summary["sampling"]["note"]),
    }


def _tests_of(model: Any) -> list[Any]:
    return [t for mid in model.top_level_metrics for t in (model.metric_results[mid].tests or [])]


def merged_snapshot(summary: Mapping[str, Any], full: Any, sample: Any) -> Any:
    """One Evidently snapshot for the batch: the all-rows and the sample reports as two titled groups.

    Both reports are two halves of one check (different rows: every row for the descriptors and
    categories, a fixed-seed sample for embeddings, text and predictions), so the workspace keeps
    one snapshot per batch, named after it and tagged with the decision
    (:func:`snapshot_tags`). The group titles state what each half ran on; the all-rows one
    repeats the drifted-column count in the page's wording.

    Args:
        summary: the drift summary with its decision; full / sample: the two Evidently snapshots.

    Returns:
        An ``evidently.core.serialization.SnapshotModel``.
    """
    from evidently.core.metric_types import metric_tests_widget
    from evidently.core.report import metric_tests_stats
    from evidently.core.serialization import ReportModel, SnapshotModel
    from evidently.legacy.renderers.html_widgets import group_widget

    from reviewops.monitoring.summary import drifted_columns_sentence

    f, s = full.to_snapshot_model(), sample.to_snapshot_model()
    rows = f"{summary['reference']['rows']} reference and {summary['current']['rows']} current rows"
    tests = _tests_of(f) + _tests_of(s)
    return SnapshotModel(
        report=ReportModel(items=[]),
        name=str(summary["name"]),
        timestamp=f.timestamp,
        metadata=snapshot_metadata(summary),
        tags=snapshot_tags(summary),
        metric_results={**f.metric_results, **s.metric_results},
        top_level_metrics=[*f.top_level_metrics, *s.top_level_metrics],
        widgets=[
            group_widget(title=f"All rows ({rows}): {drifted_columns_sentence(summary)}", widgets=f.widgets),
            group_widget(title=f"Sample: {summary['sampling']['note']}", widgets=s.widgets),
        ],
        tests_widgets=[metric_tests_stats(tests), metric_tests_widget(tests)] if tests else [],
    )


class _ModelRun:
    """Hands a ready ``SnapshotModel`` to ``Workspace.add_run`` (which asks a run for its model)."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def to_snapshot_model(self) -> Any:
        return self._model

    def get_name(self) -> str | None:
        return self._model.name


def add_to_workspace(path: Path | str, snapshot: Any, project: str = WORKSPACE_PROJECT) -> list[str]:
    """Add one batch's snapshot to a local Evidently workspace; create the project and its dashboard once.

    ``evidently ui --workspace <path>`` then shows every check as history, and the dashboard
    panels (:func:`reviewops.monitoring.dashboard.ensure_panels`) plot them over batches.

    Args:
        path: the workspace folder; snapshot: a ``SnapshotModel`` (:func:`merged_snapshot`).
        project: the project name.

    Returns:
        The snapshot ids added.
    """
    from evidently.ui.workspace import Workspace

    from reviewops.monitoring.dashboard import ensure_panels

    Path(path).mkdir(parents=True, exist_ok=True)
    # Opening a workspace reads every snapshot, which another process may be writing (not atomically):
    # one process at a time (two workers checking drift at once met a half-written snapshot).
    with file_lock(Path(path).parent / f".{Path(path).name}.lock"):
        ws = Workspace.create(str(path))
        found = ws.search_project(project)
        proj = (
            found[0]
            if found
            else ws.create_project(
                project, description="ReviewOps drift checks: each batch vs the champion's training data"
            )
        )
        ensure_panels(ws, proj.id)
        return [str(ws.add_run(proj.id, _ModelRun(snapshot)).id)]


def tracking_configured() -> bool:
    """True when ``$MLFLOW_TRACKING_URI`` is set or a local ``mlflow.db`` exists (``track=None`` logs then)."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI", "").strip()) or Path("mlflow.db").exists()


def _metrics_for_mlflow(summary: Mapping[str, Any]) -> dict[str, float]:
    metrics = {
        "drift/drifted": float(summary["decision"]["drifted"]),
        "drift/share_drifted": float(summary["share_drifted"]),
        "drift/n_drifted": float(summary["n_drifted"]),
        "drift/trend_alerts": float(len(summary["trend"]["alerts"])),
        "drift/reference_rows": float(summary["reference"]["rows"]),
        "drift/current_rows": float(summary["current"]["rows"]),
    }
    agreement = (summary["trend"].get("agreement") or {}).get("rate")
    if agreement is not None:  # ratings vs predicted sentiment: a monitoring signal of its own
        metrics["drift/sentiment_agreement"] = float(agreement)
    if summary["trend"].get("predicted"):
        metrics["drift/predicted_trend_alerts"] = float(len(summary["trend"]["predicted"]["alerts"]))
    if summary["embedding"].get("score") is not None:
        metrics["drift/embedding_auc"] = float(summary["embedding"]["score"])
    for col, res in summary["columns"].items():
        if res.get("score") is not None:
            metrics[f"drift/column/{col}"] = float(res["score"])
    return metrics


def log_to_mlflow(summary: Mapping[str, Any], html_path: Path, settings: Settings) -> str:
    """Log the drift numbers (``drift/...``), decision and reports to MLflow; returns the run id."""
    import mlflow

    from reviewops.monitoring.summary import drifted_columns_sentence
    from reviewops.registry.tracking import configure_mlflow, use_run

    configure_mlflow(settings)
    tags = {"reviewops.stage": "drift", "drift.name": summary["name"]}
    with use_run(run_name=f"drift {summary['name']}", tags=tags) as run_id:
        client = mlflow.MlflowClient()
        for key, value in _metrics_for_mlflow(summary).items():
            client.log_metric(run_id, key, value)
        client.set_tag(run_id, "drift.drifted", str(summary["decision"]["drifted"]).lower())
        client.set_tag(run_id, "drift.fired", ",".join(summary["decision"]["fired"]) or "none")
        client.set_tag(run_id, "drift.sampling", summary["sampling"]["note"])
        client.set_tag(run_id, "drift.drifted_columns", drifted_columns_sentence(summary))
        client.log_artifact(run_id, str(html_path), artifact_path="drift")
        client.log_dict(run_id, dict(summary), f"drift/{summary['name']}.json")
    return run_id
