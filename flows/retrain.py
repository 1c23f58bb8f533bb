"""Retraining flow: raw data -> DVC-tracked validate/preprocess/split -> (models stages).

Run it with ``python flows/retrain.py`` (what ``make run`` does) or deploy it with
``python flows/deployments.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from reviewops.data.generate import write_generated

from reviewops import versioning
from reviewops.config import Settings, load_settings


@task(name="ensure-raw-data", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ensure_raw_data(settings: Settings) -> dict:
    """Generate the embedded default data set when the raw folder has no files."""
    raw = settings.paths.raw_dir
    existing = sorted(p.name for p in raw.glob("*") if p.is_file()) if raw.exists() else []
    if existing:
        return {"raw_dir": str(raw), "files": existing, "generated": False}
    g = settings.generate
    path = write_generated(raw, g.rows, g.seed, g.scenario, g.zh_share)
    return {"raw_dir": str(raw), "files": [path.name], "generated": True}


@task(name="dvc-track-raw", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def track_raw(settings: Settings) -> dict:
    """Record the raw folder's content in data.dvc (one DVC call at a time)."""
    versioning.ensure_repo()
    return versioning.track_raw(raw_dir=settings.paths.raw_dir)


@task(name="dvc-repro-data-stages", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def reproduce_data_stages() -> str:
    """validate -> preprocess -> split through ``dvc repro`` (reruns only what changed)."""
    return versioning.repro(targets=("split",))


@task(name="collect-data-reports", cache_policy=NO_CACHE)
def collect_data_reports(settings: Settings) -> dict:
    """Counts from the stage reports: ingested, valid, quarantined, deduplicated, per split."""
    reports = settings.paths.reports_dir
    validation = json.loads((reports / "validation" / "raw.json").read_text())
    pre = json.loads((reports / "preprocess.json").read_text())
    split = json.loads((reports / "split.json").read_text())
    return {
        "ingested": validation["ingested"],
        "valid": validation["valid"],
        "quarantined": validation["quarantined"],
        "quarantine_path": validation["quarantine_path"],
        "top_failures": dict(sorted(validation["failures"].items(), key=lambda kv: -kv[1])[:5]),
        "deduplicated": pre["duplicates"],
        "empty_after_cleaning": pre["rejected_empty_after_cleaning"],
        "clean": pre["clean_rows"],
        "splits": {name: split[name]["rows"] for name in ("train", "val", "test")},
        "data_docs": validation["data_docs"],
        "data_version": versioning.data_version(),
    }


@flow(name="reviewops-data", log_prints=True)
def data_flow(settings: Settings | None = None) -> dict:
    """Data half of retraining.

    Steps: ensure raw data (generate the default) -> track it in data.dvc -> dvc repro
    (validate with Great Expectations + quarantine, preprocess, split) -> collect counts.
    """
    settings = settings or load_settings()
    raw = ensure_raw_data(settings)
    tracked = track_raw(settings)
    reproduce_data_stages()
    summary = collect_data_reports(settings)
    summary["raw"] = raw
    summary["data_dvc"] = tracked
    get_run_logger().info("data summary: %s", json.dumps(summary, default=str))
    return summary


@flow(name="reviewops-retrain", log_prints=True)
def retrain_flow(settings: Settings | None = None) -> dict:
    """Retraining: data half (validate -> preprocess -> split); model stages follow."""
    settings = settings or load_settings()
    return {"data": data_flow(settings)}


def _print_summary(result: dict) -> None:
    from reviewops.cli_common import emit

    data = result["data"]
    emit({
        "ingested": data["ingested"], "valid": data["valid"], "quarantined": data["quarantined"],
        "deduplicated": data["deduplicated"], "empty_after_cleaning": data["empty_after_cleaning"],
        "clean": data["clean"], **{f"split.{k}": v for k, v in data["splits"].items()},
        "quarantine": data["quarantine_path"], "data_version (data.dvc md5)": data["data_version"],
        "data_docs": f"file://{Path(data['data_docs']).resolve()}" if data["data_docs"] else None,
    }, as_json=False, title="ReviewOps retraining: data")


if __name__ == "__main__":
    _print_summary(retrain_flow())
    sys.exit(0)
