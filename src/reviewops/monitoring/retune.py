"""Continual re-tuning after drift: the re-tune split with replay, its starting point, forgetting, the outcome.

The monitor flow (:mod:`flows.monitor`) wires these with the batch steps
(:mod:`reviewops.monitoring.batches`), the drift check (:mod:`reviewops.monitoring.drift`), the
cooldown (:mod:`reviewops.monitoring.cooldown`) and the inbox ledger
(:mod:`reviewops.monitoring.inbox`):

* :func:`build_retune_split` — new rows plus a fixed-seed replay of older rows;
* :func:`retune_settings` — start from the registry champion, ``train.profile = drift.retune_profile``;
* :func:`forgetting_report` — metrics on the old test rows next to the whole test split
  (``eval_old/…``, ``eval_new/…``), logged to the re-tuning's MLflow run;
* :func:`retrain_outcome` and :func:`write_monitor_summary` — what the flow reports.

Replay, defined: ``drift.replay_fraction`` = f is the share of *older* rows in the re-tuning
train (and val) set. With ``n`` new rows, ``round(n * f / (1 - f))`` older rows are sampled
(seed ``drift.seed``), capped at what exists: 0 = new rows only, 0.5 = as many old rows as new,
1 = every older row (a full retrain on the grown data, starting from the champion).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import ConfigError, Settings, apply_overrides
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.common import Log, monitor_dir, noop, read_state
from reviewops.reports import write_json

NEW, OLD = "new", "old"


def settings_with(settings: Settings, overrides: list[str]) -> Settings:
    """A copy of ``settings`` with ``key.sub=value`` overrides applied, re-validated.

    Raises:
        ConfigError: an override names an unknown key or a value that does not fit.
    """
    data = apply_overrides(settings.model_dump(mode="json"), list(overrides))
    try:
        return Settings.model_validate(data)
    except Exception as exc:  # pydantic ValidationError: name the keys like load_settings does
        errors = getattr(exc, "errors", None)
        if errors is None:
            raise
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
        raise ConfigError(f"overrides {overrides}: {problems}") from None


# --------------------------------------------------------------------------- re-tune split


def replay_count(n_new: int, n_old: int, fraction: float) -> int:
    """Older rows to replay next to ``n_new`` new ones: ``round(n_new * f / (1 - f))``, capped at ``n_old``."""
    if fraction <= 0 or n_old == 0:
        return 0
    if fraction >= 1:
        return n_old
    return min(n_old, round(n_new * fraction / (1 - fraction)))


def _mark(df: pd.DataFrame, new_files: set[str]) -> pd.Series:
    if "source_file" not in df.columns:
        raise ReviewOpsError("processed rows have no 'source_file' column (docs/CONTRACTS.md); re-run `dvc repro`")
    return df["source_file"].astype(str).isin(new_files)


def _retune_part(settings: Settings, path: Path, split: str, new_files: set[str], out_dir: Path) -> dict[str, int]:
    """Write one split's new rows plus its replayed older rows to ``out_dir``; returns the counts."""
    if not path.is_file():
        raise ReviewOpsError(f"{path} not found; run `dvc repro` (the data stages) first")
    df = pd.read_parquet(path)
    is_new = _mark(df, new_files)
    new, old = df[is_new], df[~is_new]
    if split == "train" and len(new) == 0:
        raise ReviewOpsError(
            f"no row of {sorted(new_files)} is in {path}: the batch's rows were all quarantined, "
            "deduplicated against older rows, or their products fell into val/test"
        )
    n_replay = replay_count(len(new), len(old), settings.drift.replay_fraction) if len(new) else len(old)
    replay = old.sample(n=n_replay, random_state=settings.drift.seed) if n_replay < len(old) else old
    part = pd.concat([new, replay]).sort_values("review_id", kind="stable").reset_index(drop=True)
    part.to_parquet(out_dir / f"{split}.parquet", index=False)
    return {"rows": len(part), "new": len(new), "replay": len(replay), "old_available": len(old)}


def build_retune_split(
    settings: Settings, new_source_files: list[str], out_dir: Path | str, processed_dir: Path | str | None = None
) -> dict[str, Any]:
    """The re-tuning data: rows of the new batch file(s) plus a fixed-seed replay of older rows.

    Reads the processed split (after ``dvc repro`` on the grown raw data), and for ``train`` and
    ``val`` keeps every row whose ``source_file`` is in ``new_source_files`` plus
    :func:`replay_count` older rows sampled with ``drift.seed``. A split with no new rows (whole
    products move between splits) keeps all of its older rows: val only picks checkpoints.
    ``test.parquet`` is copied whole, so ``out_dir`` is a complete processed folder for training
    and evaluation; the gate therefore compares candidate and champion on the whole (re-split)
    test set.

    Returns:
        Per split ``rows``, ``new``, ``replay`` (and ``old_available``); ``test`` with ``new``/``old``
        counts; ``replay_fraction``, ``new_source_files``, ``out_dir``.

    Raises:
        ReviewOpsError: no row of the new file(s) reached the train split.
    """
    processed_dir = Path(processed_dir or settings.paths.processed_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    new_files = {str(f) for f in new_source_files}
    report: dict[str, Any] = {
        "replay_fraction": settings.drift.replay_fraction,
        "seed": settings.drift.seed,
        "new_source_files": sorted(new_files),
        "out_dir": str(out_dir),
    }
    for split in ("train", "val"):
        report[split] = _retune_part(settings, processed_dir / f"{split}.parquet", split, new_files, out_dir)
    test_path = processed_dir / "test.parquet"
    test = pd.read_parquet(test_path)
    shutil.copyfile(test_path, out_dir / "test.parquet")
    n_new_test = int(_mark(test, new_files).sum())
    report["test"] = {"rows": len(test), "new": n_new_test, "old": len(test) - n_new_test}
    write_json(out_dir / "retune_split.json", report)
    return report


def retune_dir(settings: Settings, name: str) -> Path:
    """``<interim_dir>/retune/<name>``: the processed folder of one re-tuning (its training run: ``retune <name>``)."""
    from reviewops.training.common import retune_root

    return retune_root(settings) / name


def retune_settings(settings: Settings, processed_dir: Path | str, log: Log = noop) -> tuple[Settings, dict]:
    """Settings for a drift-triggered re-tune, and where it starts from.

    The registry champion of each model (downloaded with
    :func:`reviewops.registry.registry.champion_dir`) becomes ``summarizer.model`` /
    ``sentiment.model`` when it exists, else the configured base model stays. Always sets
    ``train.profile = drift.retune_profile`` and ``paths.processed_dir = processed_dir``; starting
    from a champion summarizer turns ``evaluate.untuned_baseline`` off (that base is the champion).
    """
    from reviewops.registry import registry
    from reviewops.registry.tracking import configure_mlflow

    configure_mlflow(settings)
    overrides = [
        f"train.profile={settings.drift.retune_profile}",
        f"paths.processed_dir={json.dumps(str(processed_dir))}",
    ]
    info: dict[str, Any] = {"profile": settings.drift.retune_profile, "processed_dir": str(processed_dir)}
    for section, name in (("summarizer", settings.gate.summarizer_name), ("sentiment", settings.gate.sentiment_name)):
        version = registry.get_alias_version(name, registry.CHAMPION)
        path = registry.champion_dir(name) if version is not None else None
        if version is None or path is None:
            info[section] = {"start": "base", "model": getattr(settings, section).model}
            continue
        log(f"re-tuning {section} from {name} v{version.version} (champion)")
        overrides.append(f"{section}.model={json.dumps(str(path))}")
        info[section] = {"start": "champion", "model": str(path), "registered": name, "version": str(version.version)}
    if info["summarizer"].get("start") == "champion":
        # The "untuned base" would be the champion itself, which evaluation already re-scores on the
        # same rows: summarizing the test sample a third time would add nothing but minutes.
        overrides.append("evaluate.untuned_baseline=false")
    return settings_with(settings, overrides), info


# --------------------------------------------------------------------------- forgetting


def _test_predictions(result: dict[str, Any], eval_path: Path, test_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The evaluation's per-row predictions and the test rows, refused unless they are the same rows."""
    test = pd.read_parquet(test_path)
    preds = pd.DataFrame(result.get("predictions") or [])
    if len(preds) != len(test):
        raise ReviewOpsError(
            f"{eval_path} has {len(preds)} predictions for {len(test)} rows of {test_path}; "
            "re-run evaluation on this test split"
        )
    if (
        "review_id" in preds
        and not (preds["review_id"].astype(str).to_numpy() == test["review_id"].astype(str).to_numpy()).all()
    ):
        raise ReviewOpsError(f"{eval_path} predictions are not the rows of {test_path}; re-run evaluation")
    return preds, test


def _old_new_metrics(preds: pd.DataFrame, test: pd.DataFrame, new_source_files: list[str], result: dict) -> dict:
    """``eval_old/…``, ``eval_new/…`` (per part), ``eval_all/…`` and ``champion_all/…``, sorted by key."""
    from reviewops.evaluation.metrics import slice_metrics
    from reviewops.evaluation.scorecard import metrics_of

    preds["part"] = [NEW if x else OLD for x in _mark(test, set(new_source_files))]
    sliced = slice_metrics(preds, by=("part",), prediction_col="prediction", reference_col="reference")
    out: dict[str, Any] = {}
    for key, value in sliced.items():
        part, metric = key.split("/", 2)[1].split("=")[1], key.split("/", 2)[2]
        out[f"eval_{part}/{metric}"] = value
    for key, value in metrics_of(result).items():
        if key.startswith("eval/"):
            out[f"eval_all/{key[len('eval/') :]}"] = value
        elif key.startswith("champion/eval/"):
            out[f"champion_all/{key[len('champion/eval/') :]}"] = value
    return {k: out[k] for k in sorted(out)}


def _log_forgetting(settings: Settings, metrics: dict[str, Any]) -> str:
    """Log the old/new metrics to the training run of ``reports/train.json`` (else a new run)."""
    import mlflow

    from reviewops.evaluation.evaluate import mlflow_metric_name, read_train_report
    from reviewops.registry.tracking import configure_mlflow, use_run
    from reviewops.training.common import retune_batch

    configure_mlflow(settings)
    train_report = Path(settings.paths.reports_dir) / "train.json"
    train_run = read_train_report(train_report).get("run_id") if train_report.is_file() else None
    batch = retune_batch(settings, settings.paths.processed_dir)
    with use_run(train_run, run_name=f"forgetting {batch}" if batch else "forgetting") as run_id:
        mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in metrics.items()}, run_id=run_id)
    return run_id


def forgetting_report(
    settings: Settings,
    new_source_files: list[str],
    eval_json: Path | str | None = None,
    processed_dir: Path | str | None = None,
    log_mlflow: bool = True,
) -> dict[str, Any]:
    """ "Older reviews are not forgotten": metrics on the old test rows next to the whole test split.

    Uses the predictions the evaluate stage already made (``eval.json`` rows are the test rows in
    order), tags each test row ``old`` (``source_file`` not a new batch) or ``new``, and scores
    each part with :func:`reviewops.evaluation.metrics.slice_metrics`. ROUGE covers the rows summarized
    in evaluation (a fixed-seed sample of ``max_eval_samples``), sentiment every row.

    Returns:
        ``eval_old/…`` and ``eval_new/…`` (``rougeL``…, ``sentiment_macro_f1``, ``n``,
        ``n_summaries``), ``eval_all/…`` (the candidate on the whole split), ``champion_all/…``
        (the champion re-scored on the whole split, when evaluation did) and ``mlflow_run_id``.
    """
    eval_path = Path(eval_json or Path(settings.paths.reports_dir) / "eval.json")
    result = read_state(eval_path, None)
    if result is None:
        raise ReviewOpsError(f"{eval_path} not found; run `reviewops evaluate` first")
    test_path = Path(processed_dir or settings.paths.processed_dir) / "test.parquet"
    preds, test = _test_predictions(result, eval_path, test_path)
    out = _old_new_metrics(preds, test, new_source_files, result)
    out["mlflow_run_id"] = _log_forgetting(settings, out) if log_mlflow else None
    return out


# --------------------------------------------------------------------------- outcome + summaries


def retrain_outcome(settings: Settings) -> dict[str, Any]:
    """What the last retraining left in the reports: run id, test metrics, gate decision.

    Read from ``reports/{train,eval,gate}.json`` so it is the same whether the gate passed
    or failed (a failed gate raises but writes ``gate.json`` first).
    """
    from reviewops.evaluation.scorecard import metrics_of

    reports = Path(settings.paths.reports_dir)
    train = read_state(reports / "train.json", {})
    evaluation = read_state(reports / "eval.json", {})
    gate = read_state(reports / "gate.json", {})
    metrics = metrics_of(evaluation) if evaluation else {}
    return {
        "run_id": train.get("run_id"),
        "profile": train.get("profile"),
        "model_uris": train.get("model_uris"),
        "eval": {k: v for k, v in metrics.items() if k.startswith(("eval/", "champion/eval/")) and "/slice" not in k},
        "gate": {
            "passed": gate.get("passed"),
            "registered": gate.get("registered"),
            "checks": gate.get("checks"),
            "path": str(reports / "gate.json"),
        },
    }


def write_monitor_summary(settings: Settings, summary: dict[str, Any]) -> Path:
    """Write ``<reports_dir>/monitor/<name>.json`` (the flow's result, readable without Prefect)."""
    return write_json(monitor_dir(settings) / f"{summary['name']}.json", summary)
