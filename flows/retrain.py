"""Retraining flow: raw data -> DVC-tracked validate/preprocess/split -> (models stages).

Run it with ``python -m flows.retrain`` (what ``make run`` does) or deploy it with
``python -m flows.deployments``. The command prints the data counts, test metrics and gate
checks, then where to look (``--no-links`` leaves that list to the monitor that follows in
``make run``). It exits 1 only when the gate rejected the candidates and no champion exists
(nothing to serve or monitor); a rejection with a champion in place exits 0, champion kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.console import Console

from flows import artifacts
from reviewops.cli.common import emit, print_links, quiet_output
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
    default remote -> collect counts (artifact ``reviewops-data-counts``).
    """
    quiet_output()
    settings = settings or load_settings()
    raw = ensure_raw_data(settings)
    tracked = track_raw(settings)
    reproduce_data_stages()
    push_data()
    summary = collect_data_reports(settings)
    summary["raw"] = raw
    summary["data_dvc"] = tracked
    get_run_logger().info("data summary: %s", json.dumps(summary, default=str))
    artifacts.publish_data_counts(summary)
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
    metrics = evaluate.metrics_of(evaluate.run_evaluate(settings, log=get_run_logger().info))
    artifacts.publish_test_metrics(metrics)
    return metrics


@task(name="quality-gate", cache_policy=NO_CACHE)
def quality_gate(settings: Settings) -> dict:
    """Floors + no regression vs champion; registers and (if configured) promotes on pass.

    A rejection is an outcome, not a failure: a WARNING with the failed checks, the decision
    as an artifact, ``passed: False`` in the result; the registry is untouched. Anything else
    raised (a missing report, MLflow down) fails the task.
    """
    try:
        decision = gate.run_gate(settings).to_dict()
    except gate.GateFailedError as exc:
        decision = exc.decision.to_dict()
        get_run_logger().warning(
            "quality gate rejected the candidates; the registry was not changed (%s):\n%s",
            "the champion stays" if decision.get("champion") else "there is no champion yet",
            exc.decision.to_text(only_failed=True),
        )
    artifacts.publish_gate_decision(decision)
    return decision


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
    A rejected candidate is an outcome: the flow completes with ``gate.passed`` False, a
    WARNING and the gate artifact; the registry is untouched.
    ``refresh_data=False`` skips the data half for a caller that already ran it (the monitor's
    drift-triggered re-tune, which points ``paths.processed_dir`` at its own split).
    Artifacts: data counts, test metrics, gate decision (keys in :mod:`flows.artifacts`).
    """
    quiet_output()
    settings = settings or load_settings()
    result = {"data": data_flow(settings) if refresh_data else collect_data_reports(settings)}
    pull_models(settings)
    result["train"] = train_models(settings)
    result["eval"] = evaluate_models(settings)
    result["gate"] = quality_gate(settings)
    if any(entry.get("promoted") for entry in result["gate"].get("registered", {}).values()):
        result["package"] = package_champion(settings)
    return result


BENTO_NAME = "reviewops"  # bentofile.yaml's name


def _fmt(value: object) -> object:
    """A gate figure as an operator reads it: 4 decimals (0.1181, not 0.11805699855699857)."""
    return round(value, 4) if isinstance(value, float) else value


def _here(path: Path | str) -> str:
    """``path`` relative to the working directory (the project root) when inside it, else absolute."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(resolved)


def bin_path(name: str) -> str:
    """A console script of this Python's environment, as typed from the project root (``.venv/bin/mlflow``)."""
    return _here(Path(sys.executable).parent / name)


def data_docs_url(settings: Settings) -> str | None:
    """The Great Expectations Data Docs index of the last validation of data/raw, as a file:// URL."""
    report = Path(settings.paths.reports_dir) / "validation" / "raw.json"
    docs = json.loads(report.read_text()).get("data_docs") if report.is_file() else None
    return Path(docs).resolve().as_uri() if docs else None


def latest_bento() -> str | None:
    """The newest ReviewOps Bento in the BentoML store (``$BENTOML_HOME``), as ``name:version``."""
    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    latest = home / "bentos" / BENTO_NAME / "latest"
    return f"{BENTO_NAME}:{latest.read_text().strip()}" if latest.is_file() else None


def ui_links(settings: Settings, bento: str | None = None) -> list[tuple[str, str | None]]:
    """Where to look after retraining: Data Docs, MLflow UI, the Bento, Prefect UI (label, path or command)."""
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    mlflow_ui = (
        tracking
        if tracking.startswith(("http://", "https://"))
        else f"{bin_path('mlflow')} ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000"
    )
    bento = bento or latest_bento()
    bentoml_home = _here(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    prefect_home = _here(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    return [
        ("Data Docs: validation of data/raw and its quarantine (open in a browser)", data_docs_url(settings)),
        ("MLflow UI: runs, registry, aliases (serves http://127.0.0.1:5000)", mlflow_ui),
        (
            "Champion Bento: the HTTP API (serves http://127.0.0.1:3000)",
            bento and f"BENTOML_HOME={bentoml_home} {bin_path('bentoml')} serve {bento} --host 127.0.0.1 --port 3000",
        ),
        (
            "Prefect UI: flow runs and their artifacts (serves http://127.0.0.1:4200)",
            f"PREFECT_HOME={prefect_home} {bin_path('prefect')} server start --host 127.0.0.1 --port 4200 --ui",
        ),
    ]


def _data_rows(data: dict) -> dict:
    return {
        "ingested": data["ingested"],
        "valid": data["valid"],
        "quarantined": data["quarantined"],
        "deduplicated": data["deduplicated"],
        "empty_after_cleaning": data["empty_after_cleaning"],
        "clean": data["clean"],
        **{f"split.{k}": v for k, v in data["splits"].items()},
        "quarantine": data["quarantine_path"],
        "data_version (data.dvc md5)": data["data_version"],
    }


def gate_verdict(gate_result: dict) -> str:
    """``passed``, ``REJECTED (champion kept)`` or ``REJECTED (no champion yet)``."""
    if gate_result.get("passed"):
        return "passed"
    return f"REJECTED ({'champion kept' if gate_result.get('champion') else 'no champion yet'})"


def print_summary(result: dict, console: Console | None = None) -> None:
    """The retraining result as tables: data counts, test metrics, gate checks."""
    emit(_data_rows(result["data"]), as_json=False, title="ReviewOps retraining: data", console=console)
    if "eval" in result:
        keys = [k for k in result["eval"] if k.startswith(("eval/", "baseline/"))]
        emit(
            {k: round(result["eval"][k], 4) for k in sorted(keys)},
            as_json=False,
            title="ReviewOps retraining: test-split metrics (fine-tuned vs baselines)",
            console=console,
        )
    if "gate" in result:
        gate_result = result["gate"]
        rows = {
            f"{c['name']} ({_fmt(c.get('value'))} vs {_fmt(c.get('threshold'))})": "pass" if c["passed"] else "FAIL"
            for c in gate_result.get("checks", [])
        }
        emit(
            {"verdict": gate_verdict(gate_result), **rows, "registered": gate_result.get("registered") or "nothing"},
            as_json=False,
            title="quality gate",
            console=console,
        )


def main(argv: list[str] | None = None) -> int:
    """Run retraining once and print its summary; 1 when the gate rejected and there is no champion."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--no-links", action="store_true", help="leave out the closing list of UIs (the monitor prints it)"
    )
    args = parser.parse_args(argv)
    quiet_output()
    settings = load_settings()
    result = retrain_flow(settings)
    print_summary(result)
    if not args.no_links:
        bento = (result.get("package") or {}).get("bento")
        print_links(ui_links(settings, bento), "ReviewOps retraining: where to look (one path or command a line)")
    if not result["gate"].get("passed") and not result["gate"].get("champion"):
        print(
            "retraining: the quality gate rejected the candidates and there is no champion to serve or monitor "
            f"(decision: {Path(settings.paths.reports_dir) / 'gate.json'})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
