"""The training stage: fine-tune the summarizer and the sentiment classifier in one tracked MLflow run.

MLflow layout of :func:`run_train`: one parent run ``train`` (``retune <batch>`` when a drift
re-tune trains on ``<interim_dir>/retune/<batch>``) holding all params (flattened settings),
data lineage, the train/val/test splits as dataset inputs (with the DVC data version), final
metrics (``train/<model>_loss``, ``train/<model>_eval_loss``...) and both pyfunc models; the
gate later tags it ``reviewops.gate`` and notes its verdict; one nested run per model with
the per-step curves (``train/loss``, ``train/learning_rate``, ``eval/loss``, ``eval/macro_f1``).
The trainers themselves live in :mod:`reviewops.training.summarizer` and
:mod:`reviewops.training.sentiment`.

Several processes: ``torchrun --nproc_per_node N -m reviewops train`` runs this stage in N
processes that train together (DDP, :mod:`reviewops.training.distributed`). Rank 0 alone does
everything above (MLflow runs, params, models, the report; it also logs ``train/world_size``
and ``train/ddp_backend``); the other ranks only train, never touch MLflow, and return when
rank 0 has written the report. Batch sizes are per process (``effective_batch_size`` on each
nested run); ``max_steps`` counts optimizer steps, as in one process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import write_json
from reviewops.training import distributed
from reviewops.training.common import (
    SENTIMENT_DIR,
    SUMMARIZER_DIR,
    TrainResult,
    data_lineage,
    effective_batch_size,
    flatten,
    log_datasets,
    read_split,
    retune_batch,
    run_name,
)
from reviewops.training.sentiment import train_sentiment
from reviewops.training.summarizer import train_summarizer

TrainFn = Callable[..., TrainResult]
TRAINERS: dict[str, TrainFn] = {SUMMARIZER_DIR: train_summarizer, SENTIMENT_DIR: train_sentiment}


def run_train(
    settings: Settings,
    *,
    processed_dir: Path | str | None = None,
    out_dir: Path | str | None = None,
    only: str | None = None,
    resume: bool = True,
    log_models: bool = True,
    report_path: Path | str | None = None,
) -> dict[str, Any]:
    """Train both models (or ``only`` one) and track everything in one MLflow parent run.

    Args:
        settings: project settings; ``train.profile`` selects the size knobs.
        processed_dir: folder with ``train.parquet`` / ``val.parquet`` (default ``paths.processed_dir``).
        out_dir: where final models go (default ``<paths.models_dir>/trained``).
        only: ``"summarizer"`` or ``"sentiment"`` to train just one.
        resume: continue from checkpoints under ``out_dir/checkpoints`` when present.
        log_models: log pyfunc models (set False for a quick dry run).
        report_path: where the result is written as JSON for evaluate/gate/registry
            (default ``<paths.reports_dir>/train.json``).

    Returns:
        ``run_id``, ``experiment_id``, ``tracking_uri``, ``model_uris`` ({name: models:/...}),
        ``model_dirs``, ``metrics``, ``timings`` (seconds), ``child_run_ids``, ``profile``,
        ``report_path``, ``failed_stale_runs`` (runs of killed trainings marked FAILED at this
        start) and one summary per trained model (``skipped_checkpoints`` names incomplete
        checkpoints that were set aside instead of resumed).

    Raises:
        ReviewOpsError: missing splits, an unreachable tracking server (within
            ``tracking.timeout_s``), or a store whose artifacts live outside the project.
    """
    from reviewops.registry.tracking import setup_experiment, tracking_errors

    if only not in (None, SUMMARIZER_DIR, SENTIMENT_DIR):
        raise ReviewOpsError(f"--only must be 'summarizer' or 'sentiment', not {only!r}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    processed_dir = Path(processed_dir or settings.paths.processed_dir)
    out_dir = Path(out_dir or Path(settings.paths.models_dir) / "trained")
    train_df, val_df = read_split(processed_dir, "train"), read_split(processed_dir, "val")
    group = distributed.init_process_group()
    if not group.is_main:  # torchrun rank > 0: train in step with rank 0, no tracking, no files
        return _train_untracked(settings, (train_df, val_df), out_dir, only, resume, group)
    tracking_uri = setup_experiment(settings)
    with tracking_errors(tracking_uri):
        result = _train_tracked(
            settings,
            processed_dir=processed_dir,
            out_dir=out_dir,
            splits=(train_df, val_df),
            tracking_uri=tracking_uri,
            only=only,
            resume=resume,
            log_models=log_models,
            group=group,
        )
    result["report_path"] = str(write_json(report_path or Path(settings.paths.reports_dir) / "train.json", result))
    distributed.destroy_process_group(group)  # the other ranks return once the report is written
    return result


def _log(msg: str) -> None:
    print(f"[train] {msg}", file=sys.stderr, flush=True)


def _models(only: str | None) -> list[str]:
    """The models to train, in training order (every rank must follow the same order)."""
    return [only] if only else [SUMMARIZER_DIR, SENTIMENT_DIR]


def _train_untracked(
    settings: Settings,
    splits: tuple[pd.DataFrame, pd.DataFrame],
    out_dir: Path,
    only: str | None,
    resume: bool,
    group: distributed.DistInfo,
) -> dict[str, Any]:
    """What a torchrun rank other than 0 does: the same trainings (DDP) without MLflow or reports."""
    train_df, val_df = splits
    result: dict[str, Any] = {"rank": group.rank, "world_size": group.world_size, "model_dirs": {}, "metrics": {}}
    for name in _models(only):
        res = TRAINERS[name](settings, train_df, val_df, out_dir, resume=resume)
        result["model_dirs"][name] = res.model_dir
        result["metrics"].update({f"{name}/{k}": v for k, v in res.metrics.items()})
        _log(f"rank {group.rank}/{group.world_size} ({group.backend}): {name} done, {res.global_step} steps")
    distributed.destroy_process_group(group)  # waits until rank 0 has logged the models and written the report
    return result


def _train_tracked(
    settings: Settings,
    *,
    processed_dir: Path,
    out_dir: Path,
    splits: tuple[pd.DataFrame, pd.DataFrame],
    tracking_uri: str,
    only: str | None,
    resume: bool,
    log_models: bool,
    group: distributed.DistInfo,
) -> dict[str, Any]:
    """:func:`run_train` once the store is reachable (rank 0): one parent run, one nested run per model."""
    import mlflow

    from reviewops.registry.tracking import fail_dead_runs, process_tags

    # Runs left RUNNING by a killed training would otherwise stay "running" in the UI forever.
    experiment = mlflow.get_experiment_by_name(settings.train.experiment)
    if experiment is None:  # setup_experiment created it; only a concurrent delete gets here
        raise ReviewOpsError(f"MLflow experiment {settings.train.experiment!r} disappeared from {tracking_uri}")
    failed = fail_dead_runs(experiment.experiment_id, log=_log)
    result: dict[str, Any] = {
        "profile": settings.train.profile,
        "tracking_uri": tracking_uri,
        "model_uris": {},
        "model_dirs": {},
        "metrics": {},
        "timings": {},
        "child_run_ids": {},
        "failed_stale_runs": failed,
        "world_size": group.world_size,
        "ddp_backend": group.backend,
    }
    train_df, val_df = splits
    start = time.perf_counter()
    tags = process_tags(**{"reviewops.stage": "train"})
    batch = retune_batch(settings, processed_dir)
    if batch:
        tags["reviewops.batch"] = batch
    with mlflow.start_run(run_name=run_name(settings, processed_dir), tags=tags) as parent:
        result["run_id"] = parent.info.run_id
        result["experiment_id"] = parent.info.experiment_id
        _log_run_params(settings, processed_dir, splits, only)
        mlflow.log_params({"train/world_size": str(group.world_size), "train/ddp_backend": group.backend})
        for name in _models(only):
            res = _train_child(name, settings, splits, out_dir, resume, result)
            _record(name, res, result)
            if log_models:
                _log_model(name, res, settings, val_df, result)
        result["timings"]["total_s"] = round(time.perf_counter() - start, 1)
        mlflow.log_metric("train/total_seconds", result["timings"]["total_s"])
    return result


def _log_run_params(
    settings: Settings, processed_dir: Path, splits: tuple[pd.DataFrame, pd.DataFrame], only: str | None
) -> None:
    """Log the flattened settings, the active profile, data lineage and split sizes on the parent run."""
    import mlflow

    train_df, val_df = splits
    params = flatten(settings.model_dump(mode="json"))
    params.update(flatten(settings.train.active.model_dump(mode="json"), "train.active."))
    lineage = data_lineage(processed_dir)
    params.update(lineage)
    log_datasets(processed_dir, {"train": train_df, "val": val_df}, lineage)
    params.update(
        {"data/n_train_rows": str(len(train_df)), "data/n_val_rows": str(len(val_df)), "train/only": only or "all"}
    )
    items = list(params.items())
    for i in range(0, len(items), 100):  # MLflow caps params per batch call
        mlflow.log_params(dict(items[i : i + 100]))
    if "git_commit" in lineage:
        mlflow.set_tag("mlflow.source.git.commit", lineage["git_commit"])


def _train_child(
    name: str,
    settings: Settings,
    splits: tuple[pd.DataFrame, pd.DataFrame],
    out_dir: Path,
    resume: bool,
    result: dict[str, Any],
) -> TrainResult:
    """Train one model inside its nested run (which gets the per-step curves)."""
    import mlflow

    from reviewops.registry.tracking import process_tags

    train_df, val_df = splits
    with mlflow.start_run(run_name=f"train-{name}", nested=True, tags=process_tags()) as child:
        result["child_run_ids"][name] = child.info.run_id
        prof = settings.train.active
        per_device = (prof.sentiment_batch_size or prof.batch_size) if name == SENTIMENT_DIR else prof.batch_size
        mlflow.log_params(
            {
                "model": name,
                "profile": settings.train.profile,
                "effective_batch_size": effective_batch_size(per_device, prof.grad_accum),
            }
        )
        res = TRAINERS[name](settings, train_df, val_df, out_dir, resume=resume)
        mlflow.log_params(
            {
                "base_model": res.base_model,
                "n_train": res.n_train,
                "n_eval": res.n_eval,
                "resumed_from": res.resumed_from or "none",
            }
        )
        if res.skipped_checkpoints:
            mlflow.set_tag("reviewops.skipped_checkpoints", "; ".join(res.skipped_checkpoints)[:5000])
    return res


def _record(name: str, res: TrainResult, result: dict[str, Any]) -> None:
    """Log one model's final metrics on the parent run as ``train/<name>_<metric>`` and add them to ``result``."""
    import mlflow

    parent_metrics = {
        f"train/{name}_{k.split('/', 1)[1]}" if k.startswith("train/") else f"train/{name}_{k.replace('/', '_')}": v
        for k, v in res.metrics.items()
    }
    parent_metrics[f"train/{name}_seconds"] = res.seconds
    parent_metrics[f"train/{name}_global_step"] = float(res.global_step)
    mlflow.log_metrics(parent_metrics)
    result["metrics"].update(parent_metrics)
    result["model_dirs"][name] = res.model_dir
    result["timings"][f"{name}_train_s"] = res.seconds
    result[name] = res.summary()


def _log_model(name: str, res: TrainResult, settings: Settings, val_df: pd.DataFrame, result: dict[str, Any]) -> None:
    """Log the trained model as an MLflow pyfunc on the parent run; record its URI and the time it took."""
    from reviewops.models.pyfunc import log_sentiment, log_summarizer

    t0 = time.perf_counter()
    example = [str(t)[:500] for t in val_df["text"].head(2)] or None
    if name == SUMMARIZER_DIR:
        info = log_summarizer(res.model_dir, settings.summarizer, example=example)
    else:
        info = log_sentiment(res.model_dir, settings.sentiment, example=example)
    result["model_uris"][name] = info.model_uri
    result["timings"][f"{name}_log_model_s"] = round(time.perf_counter() - t0, 1)
