"""Where a drift check is kept: the Evidently workspace (history) and an MLflow run (numbers, page, summary)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reviewops.config import Settings

WORKSPACE_PROJECT = "reviewops-drift"


def add_to_workspace(path: Path | str, snapshots: Sequence[Any], project: str = WORKSPACE_PROJECT) -> list[str]:
    """Add snapshots to a local Evidently workspace, creating the project once.

    ``evidently ui --workspace <path>`` then shows every check as history.

    Returns:
        The snapshot ids added.
    """
    from evidently.ui.workspace import Workspace

    Path(path).mkdir(parents=True, exist_ok=True)
    ws = Workspace.create(str(path))
    found = ws.search_project(project)
    proj = (
        found[0]
        if found
        else ws.create_project(
            project, description="ReviewOps drift checks: each batch vs the champion's training data"
        )
    )
    return [str(ws.add_run(proj.id, snap).id) for snap in snapshots]


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
        client.log_artifact(run_id, str(html_path), artifact_path="drift")
        client.log_dict(run_id, dict(summary), f"drift/{summary['name']}.json")
    return run_id
