"""Monitoring flow: a new batch -> validate -> score -> drift check -> (drifted, no cooldown) re-tune via retraining.

Run ``python -m flows.monitor --demo`` (what ``make run`` does after retraining): it drops a
drifted synthetic batch into the inbox and processes it. ``python -m flows.monitor BATCH`` checks
one file; ``python -m flows.deployments`` serves the inbox poller on a schedule (``--work-pool``:
registers it in a work pool for many workers). With ``orchestration.retrain_on_drift: event`` the
monitor emits ``reviewops.drift.detected`` and :func:`retune_flow` (deployment
``reviewops-retune/on-drift``, started by that event's trigger) re-tunes, possibly on another worker.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.console import Console

from flows import artifacts, retrain, score
from reviewops.cli.common import emit, print_links, quiet_output
from reviewops.config import Settings, load_settings
from reviewops.monitoring import batches, cooldown, inbox, retune
from reviewops.monitoring.common import monitor_dir
from reviewops.monitoring.drift import check_batch_drift
from reviewops.orchestration import events, locks
from reviewops.reports import sha256_file, write_json


@task(name="validate-preprocess-batch", cache_policy=NO_CACHE)
def prepare_batch(settings: Settings, batch: str, name: str) -> dict:
    """GX validation + quarantine, then cleaning; a batch over the failure threshold fails here."""
    return batches.prepare_batch(settings, Path(batch), name)


@task(name="drift-check", cache_policy=NO_CACHE)
def check_drift(settings: Settings, clean_path: str, name: str, reference: str | None, scored: str | None) -> dict:
    """Evidently report vs the champion's training data (reports/drift/<name>.html|.json, MLflow run).

    ``scored``: the scored dataset holding this batch; its predictions are the current side's.
    """
    return check_batch_drift(settings, clean_path, name, reference, log=get_run_logger().info, scored=scored)


def _score(settings: Settings, batch: str, name: str) -> dict:
    """The batch scored into score.out_dir; a failed scoring is a warning: the drift check then predicts as before."""
    out_dir = str(settings.score.out_dir)
    state = score.score_batch(settings, batch, out_dir, name, settings.score.summaries, return_state=True)
    result = state.result(raise_on_failure=False)
    if state.is_completed() and isinstance(result, dict):
        return {**result, "ok": True, "out_dir": out_dir, "batch": name}
    get_run_logger().warning(
        "scoring %s failed (%s): the drift check falls back to the champion's predictions", name, result
    )
    return {
        "ok": False,
        "error": str(result),
        "note": "scoring failed: the drift check used the champion's predictions",
    }


@task(name="claim-cooldown", cache_policy=NO_CACHE)
def claim_cooldown(settings: Settings, name: str) -> dict:
    """Check the cooldown and start it for this batch in one step (atomic across workers)."""
    return cooldown.claim_retrain(settings, name)


@task(name="emit-drift-event", cache_policy=NO_CACHE)
def emit_drift_event(batch: str, name: str, drift: dict) -> dict:
    """``reviewops.drift.detected`` for this batch: the re-tune deployment's trigger runs the re-tune."""
    digest = sha256_file(Path(batch))
    event_id = events.emit_drift(str(Path(batch).resolve()), name, digest, drift)
    return {"event": events.DRIFT_EVENT, "id": event_id, "resource": events.resource_id(digest)}


@task(name="append-batch-to-raw", cache_policy=NO_CACHE)
def append_to_raw(settings: Settings, batch: str) -> dict:
    """Copy the batch into data/raw (append-only) and record the new data.dvc version (DVC lock held).

    A batch whose bytes are already there (a run that took over from a worker killed after its
    append) continues with that copy (``reused``) instead of failing.
    """
    with locks.dvc_lock(settings.orchestration):
        return batches.append_batch_to_raw(settings, Path(batch), existing_ok=True)


@task(name="retune-split", cache_policy=NO_CACHE)
def retune_split(settings: Settings, new_files: list[str], name: str) -> dict:
    """New rows + a fixed-seed replay of older rows (drift.replay_fraction); whole test split."""
    return retune.build_retune_split(settings, new_files, retune.retune_dir(settings, name))


@task(name="retune-starting-point", cache_policy=NO_CACHE)
def starting_point(settings: Settings, processed_dir: str) -> tuple[Settings, dict]:
    """Champion (registry) as the starting model, train.profile = drift.retune_profile."""
    return retune.retune_settings(settings, processed_dir, log=get_run_logger().info)


@task(name="old-vs-new-test", cache_policy=NO_CACHE)
def old_vs_new(settings: Settings, new_files: list[str]) -> dict:
    """Metrics on the old test rows next to the whole test split (eval_old/... in MLflow)."""
    return retune.forgetting_report(settings, new_files)


@task(name="retrain-outcome", cache_policy=NO_CACHE)
def retrain_outcome(settings: Settings) -> dict:
    """Run id, test metrics and the gate decision of the re-tune (from reports/*.json)."""
    return retune.retrain_outcome(settings)


@task(name="record-retrain", cache_policy=NO_CACHE)
def record_retrain(settings: Settings, info: dict) -> str:
    """Restart the cooldown from now (reports/monitor/state.json or the Prefect variable)."""
    return cooldown.record_retrain(settings, info)


@task(name="write-monitor-summary", cache_policy=NO_CACHE)
def write_summary(settings: Settings, summary: dict) -> dict:
    """reports/monitor/<name>.json (the flow's result, readable without Prefect) and the drift artifact."""
    summary["summary_path"] = str(retune.write_monitor_summary(settings, summary))
    artifacts.publish_drift_summary(summary)
    return summary


def _retune(settings: Settings) -> str | None:
    """The retraining flow as a subflow; a rejected candidate is an outcome (a WARNING), anything else fails.

    The subflow completes either way (its gate task logs the rejection and publishes the
    decision). Returns the Bento built for a new champion, None when nothing was promoted.
    """
    result = retrain.retrain_flow(settings, refresh_data=False)
    if not result["gate"].get("passed"):
        get_run_logger().warning("re-tuned models rejected by the quality gate; the champion stays")
    return (result.get("package") or {}).get("bento")


@flow(name="reviewops-monitor", log_prints=True)
def monitor_flow(batch: str, settings: Settings | None = None, reference: str | None = None) -> dict:
    """Check one new batch for drift and re-tune when it drifted.

    Steps: validate + preprocess the batch (a batch failing validation fails the flow: no
    retrain) -> score it (score flow's task: summaries and sentiment into score.out_dir; a
    failure is a warning) -> drift check vs the champion's training data, the current side's
    predicted sentiment read from the scored batch (champion predictions when scoring failed;
    HTML/JSON report, Evidently workspace, MLflow run) -> stop unless drifted -> claim the
    cooldown (check + start in one step, across workers; stop when it is active) -> ``event``
    mode: emit ``reviewops.drift.detected`` and stop; ``subflow`` mode (:func:`retune_steps`):
    append the batch to data/raw (new data.dvc version) -> dvc repro -> re-tune split (new rows
    + replay) -> starting point (champion, drift.retune_profile) -> retraining subflow (train,
    evaluate, gate; a rejection is an outcome: WARNING, champion kept) -> old-vs-new test
    metrics -> record the retrain (the cooldown runs from now; a failed re-tune gives the claim
    back) -> summary (reports/monitor/<name>.json and the ``reviewops-drift-summary`` artifact).
    """
    quiet_output()
    settings = settings or load_settings()
    locks.use(settings.orchestration)
    name = batches.batch_name(batch)
    prepared = prepare_batch(settings, batch, name)
    scoring = _score(settings, batch, name)
    drift = check_drift(settings, prepared["clean_path"], name, reference, scoring.get("out_dir"))
    summary = {
        "name": name,
        "batch": batch,
        "validation": prepared,
        "scoring": scoring,
        "drift": drift,
        "report": drift["html"],
        "retune_profile": settings.drift.retune_profile,
    }
    if not drift["drifted"]:
        return write_summary(settings, {**summary, "action": "none: no drift"})
    summary["cooldown"] = claim_cooldown(settings, name)
    if not summary["cooldown"]["claimed"]:
        return write_summary(settings, {**summary, "action": f"none: cooldown until {summary['cooldown']['until']}"})
    if settings.orchestration.retrain_on_drift == "event":
        summary["event"] = emit_drift_event(batch, name, drift)
        return write_summary(settings, {**summary, "action": f"retrain requested: event {events.DRIFT_EVENT}"})
    try:
        summary.update(retune_steps(settings, batch, name))
    except BaseException:
        cooldown.release_claim(settings, name)  # the next drifted batch may re-tune
        raise
    return write_summary(settings, {**summary, "action": "retrained"})


def retune_steps(settings: Settings, batch: str, name: str) -> dict:
    """The re-tune of a drifted batch whose cooldown claim this run holds; its parts of the summary.

    Steps: append the batch to data/raw (new data.dvc version) -> dvc repro -> re-tune split ->
    starting point (champion, drift.retune_profile) -> retraining subflow (train, evaluate, gate)
    -> old-vs-new test metrics -> record the retrain (the cooldown runs from now).
    """
    out: dict = {"data": append_to_raw(settings, batch)}
    retrain.reproduce_data_stages()
    new_files = [out["data"]["raw_file"]]
    out["retune_split"] = retune_split(settings, new_files, name)
    tuned_settings, out["starting_point"] = starting_point(settings, out["retune_split"]["out_dir"])
    out["bento"] = _retune(tuned_settings)
    out["retrain_state"] = "COMPLETED"  # a failed re-tune (an exception, not a rejection) fails this flow
    out["retrain"] = retrain_outcome(tuned_settings)
    out["old_vs_new"] = old_vs_new(tuned_settings, new_files)
    record_retrain(
        settings,
        {"batch": name, "run_id": out["retrain"]["run_id"], "gate_passed": out["retrain"]["gate"]["passed"]},
    )
    return out


@flow(name="reviewops-retune", log_prints=True)
def retune_flow(batch: str, name: str | None = None, settings: Settings | None = None) -> dict:
    """The re-tune of one drifted batch, as its own run: what the ``reviewops.drift.detected`` trigger starts.

    The monitor that emitted the event holds the cooldown claim for ``name``; a failure here
    gives it back. Writes ``reports/monitor/<name>.retune.json`` (``action: retrained``).
    """
    quiet_output()
    settings = settings or load_settings()
    locks.use(settings.orchestration)
    name = name or batches.batch_name(batch)
    try:
        out = retune_steps(settings, batch, name)
    except BaseException:
        cooldown.release_claim(settings, name)
        raise
    out = {"name": name, "batch": batch, "retune_profile": settings.drift.retune_profile, **out}
    path = monitor_dir(settings) / f"{name}.retune.json"
    out["summary_path"] = str(write_json(path, {**out, "action": "retrained"}))
    return {**out, "action": "retrained"}


@task(name="pending-inbox-files", cache_policy=NO_CACHE)
def pending_files(settings: Settings, inbox_dir: str | None) -> list[str]:
    """Files in the inbox not processed before (ledger: reports/monitor/inbox_ledger.json or Prefect variables)."""
    return [str(p) for p in inbox.pending_inbox_files(settings, inbox_dir)]


@task(name="claim-inbox-file", cache_policy=NO_CACHE)
def claim_file(settings: Settings, path: str) -> bool:
    """Take one inbox file for this run; False when another run (another worker) took it first."""
    return inbox.claim_inbox(settings, path)


@task(name="record-inbox-file", cache_policy=NO_CACHE)
def record_file(settings: Settings, path: str, status: str, detail: dict) -> None:
    """Mark one inbox file as processed, whatever the outcome (it is not picked up again)."""
    inbox.record_inbox(settings, path, status, detail)


@flow(name="reviewops-monitor-inbox", log_prints=True)
def monitor_inbox_flow(inbox_dir: str | None = None, settings: Settings | None = None) -> dict:
    """Run the monitor on every new file in the inbox, once each (the deployment polls this).

    Steps: list files not yet in the ledger -> for each: claim it (skipped when another run,
    possibly on another worker, claimed it first) -> monitor subflow -> ledger entry with its
    outcome (a failed batch is recorded as failed and not retried; fix it and drop it again
    under a new name). ``skipped``: the files another run took.
    """
    quiet_output()
    settings = settings or load_settings()
    locks.use(settings.orchestration)
    results, skipped = {}, []
    for path in pending_files(settings, inbox_dir):
        if not claim_file(settings, path):
            skipped.append(Path(path).name)
            continue
        state = monitor_flow(path, settings, return_state=True)
        result = state.result(raise_on_failure=False)
        ok = state.is_completed() and isinstance(result, dict)
        detail = (
            {"action": result.get("action"), "summary": result.get("summary_path")}
            if isinstance(result, dict) and ok
            else {"error": str(result)}
        )
        record_file(settings, path, "completed" if ok else "failed", detail)
        results[Path(path).name] = result if ok else {"failed": str(result)}
    return {"inbox": str(inbox_dir or settings.drift.inbox_dir), "processed": results, "skipped": skipped}


def _scoring_rows(summary: dict) -> dict:
    """What the scoring step did and where the drift check's predictions and trend labels came from."""
    scoring, drift = summary.get("scoring") or {}, summary["drift"]
    return {
        "scored": score.counts_line(scoring) if scoring.get("ok") else f"FAILED ({scoring.get('error')})",
        "scored dataset": scoring.get("out_dir") or scoring.get("note"),
        "predicted sentiment (current side)": (drift.get("predictions") or {}).get("current"),
        "trend labels": drift.get("trend_source"),
        "rating/prediction agreement": drift.get("sentiment_agreement"),
    }


def _retune_rows(summary: dict) -> dict:
    """What the re-tune did: data version, rows, starting point, profile, run, gate, old vs new test rows."""
    outcome, split = summary["retrain"], summary["retune_split"]
    rows = {
        "data version (data.dvc md5)": f"{summary['data']['old_version']} -> {summary['data']['new_version']}",
        "re-tune rows (train)": f"{split['train']['new']} new + {split['train']['replay']} replayed "
        f"(drift.replay_fraction={split['replay_fraction']})",
        "starting point": ", ".join(
            f"{k}: {v['start']}" for k, v in summary["starting_point"].items() if isinstance(v, dict)
        ),
        "re-tune profile": f"{summary['retune_profile']} (drift.retune_profile; quick = a few steps, "
        "set cpu or gpu for a real re-tune)",
        "retrain MLflow run": outcome["run_id"],
        "gate": "passed" if outcome["gate"]["passed"] else "REJECTED (champion kept)",
        "gate decision": outcome["gate"]["path"],
    }
    old = summary["old_vs_new"]
    for key in ("rougeL", "sentiment_macro_f1"):
        rows[f"{key}: all / old test rows"] = (
            f"{old.get(f'eval_all/{key}', float('nan')):.3f} / {old.get(f'eval_old/{key}', float('nan')):.3f}"
        )
    return rows


def print_summary(summary: dict, console: Console | None = None) -> None:
    """The monitor's result as tables: each drift signal, then the batch, the action and the re-tune."""
    drift = summary["drift"]
    emit(
        {
            s["name"]: f"{'FIRED' if s['fired'] else 'ok'} "
            f"({'n/a' if s['score'] is None else round(s['score'], 3)} vs {round(s['threshold'], 3)})"
            for s in drift["signals"]
        },
        as_json=False,
        title=f"drift check: {'DRIFTED' if drift['drifted'] else 'no drift'}",
        console=console,
    )
    rows = {
        "batch": summary["batch"],
        "valid rows": summary["validation"]["validation"]["valid"],
        "quarantined": summary["validation"]["validation"]["quarantined"],
        "repeated by the exporter": summary["validation"]["validation"].get("repeated", 0),
        **_scoring_rows(summary),
        "report": summary["report"],
        "drift MLflow run": drift.get("mlflow_run_id"),
        "action": summary["action"],
    }
    if "retrain" in summary:
        rows.update(_retune_rows(summary))
    emit(rows, as_json=False, title="ReviewOps monitor", console=console)


def monitor_links(settings: Settings, summary: dict) -> list[tuple[str, str | None]]:
    """Every UI after ``make run``: retraining's (Data Docs, MLflow, Bento, Prefect), then the drift report,
    the Evidently UI and this batch in the scored dataset."""
    report, scoring = summary.get("report"), summary.get("scoring") or {}
    workspace = Path(settings.paths.reports_dir) / "evidently_workspace"
    scored = f"{scoring['out_dir']}/batch={summary['name']}" if scoring.get("ok") and scoring.get("out_dir") else None
    return [
        *retrain.ui_links(settings, summary.get("bento")),
        ("Drift report of this batch (open in a browser)", Path(report).resolve().as_uri() if report else None),
        (
            "Evidently UI: drift history (serves http://127.0.0.1:8000)",
            f"{retrain.bin_path('evidently')} ui --workspace {workspace} --host 127.0.0.1 --port 8000",
        ),
        ("Scored dataset: this batch, Parquet", scored),
    ]


def _demo(settings: Settings) -> dict:
    """Drop a drifted synthetic batch into the inbox and process the inbox."""
    raw = Path(settings.paths.raw_dir)
    seed = settings.drift.seed + 1 + (len(list(raw.glob("batch-*"))) if raw.is_dir() else 0)
    path = batches.generate_batch(settings.drift.inbox_dir, rows=600, seed=seed)
    print(f"demo batch: {path} (600 rows, scenario language_sentiment_shift, seed {seed})")
    result = monitor_inbox_flow(str(settings.drift.inbox_dir), settings)
    return result["processed"][path.name]


def main(argv: list[str] | None = None) -> int:
    """Process one batch, the inbox or a demo batch; print the result and where to look."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", nargs="?", help="a new batch file (CSV/JSONL/Parquet)")
    parser.add_argument("--demo", action="store_true", help="generate a drifted batch and process it")
    parser.add_argument("--inbox", action="store_true", help="process new files in drift.inbox_dir once")
    parser.add_argument("--reference", help="reference batch (default: <processed_dir>/train.parquet)")
    args = parser.parse_args(argv)
    quiet_output()
    settings = load_settings()
    if args.demo:
        summary = _demo(settings)
    elif args.inbox:
        print(json.dumps(monitor_inbox_flow(None, settings), indent=2, default=str))
        return 0
    elif args.batch:
        summary = monitor_flow(args.batch, settings, args.reference)
    else:
        parser.error("pass a batch file, --inbox or --demo")
    if "failed" in summary:
        print(f"monitor failed: {summary['failed']}", file=sys.stderr)
        return 1
    print_summary(summary)
    print_links(monitor_links(settings, summary), "ReviewOps: where to look (one path or command a line)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
