"""Retraining flow: raw data -> DVC-tracked validate/preprocess/split -> (models stages).

Run it with ``python -m flows.retrain`` (what ``make run`` does) or deploy it with
``python -m flows.deployments``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from reviewops.config import Settings, load_settings
from reviewops.data import versioning
from reviewops.data.generate import write_generated
from reviewops.evaluation import evaluate, gate
from reviewops.models import pretrained
from reviewops.serving import packaging
from reviewops.training import train


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


@task(name="dvc-push", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def push_data() -> str:
    """Push raw data and stage outputs to the default DVC remote (repo-local `.dvc_storage/`)."""
    return versioning.push()


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
        "repeated": validation.get("repeated", 0),
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
    (validate with Great Expectations + quarantine, preprocess, split) -> dvc push to the
    default remote -> collect counts.
    """
    settings = settings or load_settings()
    raw = ensure_raw_data(settings)
    tracked = track_raw(settings)
    reproduce_data_stages()
    push_data()
    summary = collect_data_reports(settings)
    summary["raw"] = raw
    summary["data_dvc"] = tracked
    get_run_logger().info("data summary: %s", json.dumps(summary, default=str))
    return summary


@task(name="models-pull", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def pull_models(settings: Settings) -> dict:
    """Install/convert the default pretrained weights once (idempotent)."""
    return pretrained.pull(settings)


@task(name="train", cache_policy=NO_CACHE)
def train_models(settings: Settings) -> dict:
    """Fine-tune both models with the Trainer; tracked in MLflow (writes reports/train.json)."""
    result = train.run_train(settings)
    return {k: result[k] for k in ("run_id", "model_uris", "model_dirs", "metrics", "timings", "profile")}


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_models(settings: Settings) -> dict:
    """Test-split metrics, baselines (lead-8, untuned) and behaviour checks (reports/eval.json)."""
    return evaluate.metrics_of(evaluate.run_evaluate(settings))


@task(name="quality-gate", cache_policy=NO_CACHE)
def quality_gate(settings: Settings) -> dict:
    """Floors + no regression vs champion; registers and (if configured) promotes on pass."""
    return gate.run_gate(settings).to_dict()


@task(name="package-bento", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def package_champion(settings: Settings) -> dict:
    """Import the champions into the BentoML store and build the Bento (`reviewops package`)."""
    imported = packaging.import_champions(settings)
    return {"imported": imported, "bento": packaging.run_package(settings)}


@flow(name="reviewops-retrain", log_prints=True)
def retrain_flow(settings: Settings | None = None, refresh_data: bool = True) -> dict:
    """Retraining, end to end.

    Steps: data half (raw -> data.dvc -> dvc repro: validate, preprocess, split) ->
    models pull -> train -> evaluate -> quality gate (register, alias, promote) ->
    package the champion as a Bento (only when this run promoted a new champion).
    A failed gate fails the flow with the table of failed checks; the registry is untouched.
    ``refresh_data=False`` skips the data half for a caller that already ran it (the monitor's
    drift-triggered re-tune, which points ``paths.processed_dir`` at its own split).
    """
    settings = settings or load_settings()
    result = {"data": data_flow(settings) if refresh_data else collect_data_reports(settings)}
    pull_models(settings)
    result["train"] = train_models(settings)
    result["eval"] = evaluate_models(settings)
    result["gate"] = quality_gate(settings)
    if any(entry.get("promoted") for entry in result["gate"].get("registered", {}).values()):
        result["package"] = package_champion(settings)
    return result


def _fmt(value: object) -> object:
    """A gate figure as an operator reads it: 4 decimals (0.1181, not 0.11805699855699857)."""
    return round(value, 4) if isinstance(value, float) else value


def _print_summary(result: dict) -> None:
    from reviewops.cli.common import emit, out_console

    data = result["data"]
    emit(
        {
            "ingested": data["ingested"],
            "valid": data["valid"],
            "quarantined": data["quarantined"],
            "deduplicated": data["deduplicated"],
            "empty_after_cleaning": data["empty_after_cleaning"],
            "clean": data["clean"],
            **{f"split.{k}": v for k, v in data["splits"].items()},
            "quarantine": data["quarantine_path"],
            "data_version (data.dvc md5)": data["data_version"],
            "data_docs": f"file://{Path(data['data_docs']).resolve()}" if data["data_docs"] else None,
        },
        as_json=False,
        title="ReviewOps retraining: data",
    )
    if "eval" in result:
        keys = [k for k in result["eval"] if k.startswith(("eval/", "baseline/"))]
        emit(
            {k: round(result["eval"][k], 4) for k in sorted(keys)},
            as_json=False,
            title="ReviewOps retraining: test-split metrics (fine-tuned vs baselines)",
        )
    if "gate" in result:
        gate_result = result["gate"]
        rows = {
            f"{c['name']} ({_fmt(c.get('value'))} vs {_fmt(c.get('threshold'))})": "pass" if c["passed"] else "FAIL"
            for c in gate_result.get("checks", [])
        }
        emit(
            {"passed": gate_result.get("passed"), **rows, "registered": gate_result.get("registered")},
            as_json=False,
            title="quality gate",
        )
        if "package" in result:
            out_console.print(
                f"Bento: {result['package']['bento']}   serve it: "
                f"BENTOML_HOME=bentoml_home .venv/bin/bentoml serve {result['package']['bento']} "
                "--host 127.0.0.1 --port 3000",
                highlight=False,
            )
        out_console.print(
            "MLflow UI:  .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000",
            highlight=False,
        )


if __name__ == "__main__":
    _print_summary(retrain_flow())
    sys.exit(0)
