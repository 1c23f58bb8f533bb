"""The MLflow side of bulk scoring: one run per scored batch, named ``score <batch>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reviewops.config import Settings


def log_score_run(settings: Settings, report: Mapping[str, Any]) -> str:
    """One MLflow run ``score <batch>`` from a scoring report (:meth:`ScoreResult.to_dict`); returns its id.

    Tags: the stage, the batch, the output folder and each input file's sha256. Params: the
    summaries mode, chunk rows, model names and registry versions. Metrics (``score/...``): the
    counts, summaries written, reviews per second and seconds. The report itself as an artifact.
    """
    import mlflow

    from reviewops.registry.tracking import configure_mlflow, use_run

    configure_mlflow(settings)
    tags = {"reviewops.stage": "score", "score.batch": report["batch"], "score.output": report["outputs"]["scored"]}
    for i, (name, digest) in enumerate(report["inputs"].items()):
        tags[f"score.input.{i}"] = f"{name} sha256:{digest}"
    with use_run(run_name=f"score {report['batch']}", tags=tags) as run_id:
        client = mlflow.MlflowClient()
        params = {"summaries": report["summaries"]["mode"], "chunk_rows": report["partitions"]["chunk_rows"]}
        for role, choice in report["models"].items():
            params[f"{role}_model"] = choice["name"] if choice else "off"
            params[f"{role}_version"] = (choice or {}).get("version") or "none"
        for key, value in params.items():
            client.log_param(run_id, key, str(value)[:500])
        metrics: dict[str, float] = {f"score/{k}": float(v) for k, v in report["counts"].items()}
        metrics["score/summaries"] = report["summaries"]["count"]
        metrics["score/rows_per_s"] = report["throughput"].get("rows_per_s") or 0.0
        metrics["score/seconds"] = report["throughput"]["seconds"]
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))
        client.log_dict(run_id, dict(report), f"score/{report['batch']}.json")
    return run_id
