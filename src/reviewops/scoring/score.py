"""``run_score``: one batch of reviews -> checked and cleaned partitions -> both models on Ray -> the scored dataset.

Steps:

1. resolve the batch name, the models (:mod:`reviewops.scoring.models`) and the summaries mode;
   claim the batch folder (:mod:`reviewops.scoring.resume`: same input, models and knobs, or a
   one-line refusal);
2. read the input once, in partitions (:func:`reviewops.scoring.prepare.iter_partitions`: the
   training path's rules, quarantine, PII masking, cleaning and dedup); write each partition's
   quarantined rows and duplicates, stage its clean rows for the models, and skip partitions
   whose scored part is already there; meanwhile draw the summary sample over the whole batch;
3. score every staged partition with one actor pool (:mod:`reviewops.scoring.engine`), writing
   ``part-<i>.parquet`` atomically as each partition completes;
4. write the report (``_reports/<batch>.json``) and log one MLflow run ``score <batch>``.

Nothing is lost: ``input_rows == scored + quarantined + deduplicated`` is checked before the
report is written.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from reviewops.config import ScoreConfig, Settings
from reviewops.data.stages import batch_name_for, check_batch_name
from reviewops.errors import ReviewOpsError
from reviewops.reports import write_json
from reviewops.scoring import engine
from reviewops.scoring.dataset import (
    batch_dir,
    part_path,
    report_path,
    scored_table,
    side_path,
    staging_path,
    write_parquet_atomic,
)
from reviewops.scoring.models import ScoringModels, resolve_models
from reviewops.scoring.predictor import SampleCut, SummaryPlan, parse_summaries
from reviewops.scoring.resume import build_manifest, claim_batch, input_digests
from reviewops.scoring.tracking import log_score_run

Log = Callable[[str], None]


@dataclass
class ScoreResult:
    """What one scoring run did: counts, models, partitions, throughput and where everything went."""

    batch: str
    path: str
    out_dir: str
    counts: dict[str, int]
    summaries: dict[str, Any]
    models: dict[str, Any]
    inputs: dict[str, str]
    partitions: dict[str, Any]
    throughput: dict[str, Any]
    outputs: dict[str, str]
    ray: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    mlflow: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: what ``reviewops score --json`` prints and the report holds."""
        return {
            "batch": self.batch,
            "path": self.path,
            "out_dir": self.out_dir,
            "counts": dict(self.counts),
            "summaries": dict(self.summaries),
            "models": self.models,
            "inputs": dict(self.inputs),
            "partitions": dict(self.partitions),
            "throughput": dict(self.throughput),
            "outputs": dict(self.outputs),
            "ray": dict(self.ray),
            "reasons": {k: dict(v) for k, v in self.reasons.items()},
            "mlflow": dict(self.mlflow),
        }


@dataclass
class _Pass:
    """What reading the input found: counts, the staged partitions and the summary sample."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"input_rows": 0, "scored": 0, "quarantined": 0, "deduplicated": 0}
    )
    staged: dict[int, list[Path]] = field(default_factory=dict)  # staged files per partition
    expected: dict[int, int] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    total: int = 0
    reasons: dict[str, dict[str, int]] = field(default_factory=lambda: {"quarantined": {}, "deduplicated": {}})


def _with_summaries(settings: Settings, summaries: str | None) -> Settings:
    """``settings`` with ``score.summaries`` replaced (validated as the params file would be)."""
    if summaries is None:
        return settings
    try:
        score = ScoreConfig.model_validate({**settings.score.model_dump(), "summaries": summaries})
    except ValidationError:
        raise ReviewOpsError(f"--summaries {summaries!r}: use none, all or sample:N (N >= 1)") from None
    return settings.model_copy(update={"score": score})


def _add_reasons(tally: dict[str, int], frame: pd.DataFrame) -> None:
    if len(frame) and "reason" in frame:
        for reason, n in frame["reason"].fillna("unknown").astype(str).value_counts().items():
            tally[str(reason)] = tally.get(str(reason), 0) + int(n)


def _write_sides(out: Path, batch: str, part: Any) -> None:
    """A partition's quarantined rows (owner-only) and duplicates, unless a previous run wrote them."""
    for kind, frame, private in (("quarantine", part.quarantined, True), ("duplicates", part.duplicates, False)):
        target = side_path(out, kind, batch, part.index)
        if len(frame) and not target.exists():
            write_parquet_atomic(frame, target, private=private)


def _read_input(
    settings: Settings,
    *,
    path: Path,
    out: Path,
    batch: str,
    columns: Mapping[str, str] | str | None,
    cut: SampleCut,
    say: Log,
) -> _Pass:
    """Step 2: every partition counted and its side files written; clean rows staged unless already scored."""
    from reviewops.scoring.prepare import iter_partitions

    found = _Pass()
    for part in iter_partitions(settings, path=path, columns=columns, batch=batch):
        found.total += 1
        found.counts["input_rows"] += part.input_rows
        found.counts["scored"] += len(part.clean)
        found.counts["quarantined"] += len(part.quarantined)
        found.counts["deduplicated"] += len(part.duplicates)
        _add_reasons(found.reasons["quarantined"], part.quarantined)
        _add_reasons(found.reasons["deduplicated"], part.duplicates)
        cut.add(part.clean["review_id"])
        _write_sides(out, batch, part)
        target = part_path(out, batch, part.index)
        if target.exists():
            found.skipped.append(part.index)
        elif len(part.clean) == 0:  # nothing to score: an empty part still marks the partition done
            write_parquet_atomic(scored_table(_empty_scored()), target)
        else:
            staged = staging_path(out, batch, part.index)
            found.staged[part.index] = engine.stage_partition(
                part.clean, staged, index=part.index, batch=batch, rows_per_file=engine.block_rows(settings)
            )
            found.expected[part.index] = len(part.clean)
        say(
            f"partition {part.index}: {part.input_rows} rows read, {len(part.clean)} clean, "
            f"{len(part.quarantined)} quarantined, {len(part.duplicates)} duplicates"
            + (" (already scored)" if part.index in found.skipped else "")
        )
    return found


def _empty_scored() -> pd.DataFrame:
    from reviewops.scoring.dataset import SCORED_SCHEMA

    return SCORED_SCHEMA.empty_table().to_pandas()


def _score(
    settings: Settings,
    found: _Pass,
    *,
    out: Path,
    batch: str,
    models: ScoringModels,
    plan: SummaryPlan,
    ray_address: str | None,
    say: Log,
) -> dict[str, Any]:
    """Step 3: the staged partitions through the actor pool; returns the Ray description."""
    if not found.staged:
        return {"address": None, "note": "nothing to score: every partition was already written"}

    def write(index: int, rows: pd.DataFrame) -> None:
        write_parquet_atomic(scored_table(rows), part_path(out, batch, index))
        for staged in found.staged[index]:
            staged.unlink(missing_ok=True)
        say(f"partition {index}: {len(rows)} rows scored -> {part_path(out, batch, index)}")

    with engine.ray_session(settings, address=ray_address, log=say) as info:
        engine.score_staged(found.staged, found.expected, settings=settings, models=models, plan=plan, write=write)
    staging = staging_path(out, batch, 0).parent
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):  # other batches may be staging there
        staging.parent.rmdir()
    return info


def _summaries_note(mode: str) -> str:
    """What a summaries mode means, for the progress line."""
    kind, n = parse_summaries(mode)
    if kind == "sample":
        return f"the {n} reviews with the smallest review_id hash get a summary"
    return "every review gets a summary" if kind == "all" else "no summaries, sentiment only"


def _summary_info(mode: str, scored: int) -> dict[str, Any]:
    """The summaries mode and how many scored rows got a summary."""
    kind, n = parse_summaries(mode)
    count = 0 if kind == "none" else scored if kind == "all" else min(n or 0, scored)
    return {"mode": mode, "count": count}


def _check_counts(counts: Mapping[str, int]) -> None:
    accounted = counts["scored"] + counts["quarantined"] + counts["deduplicated"]
    if accounted != counts["input_rows"]:
        raise AssertionError(f"rows lost: {counts['input_rows']} read, {accounted} accounted for ({dict(counts)})")


def _outputs(out: Path, batch: str) -> dict[str, str]:
    return {
        "scored": str(batch_dir(out, batch)),
        "quarantine": str(side_path(out, "quarantine", batch, 0).parent),
        "duplicates": str(side_path(out, "duplicates", batch, 0).parent),
        "report": str(report_path(out, batch)),
    }


def run_score(
    settings: Settings,
    *,
    path: Path | str,
    out_dir: Path | str | None = None,
    columns: Mapping[str, str] | str | None = None,
    batch: str | None = None,
    summaries: str | None = None,
    sentiment_model: str | Path | None = None,
    summarizer_model: str | Path | None = None,
    ray_address: str | None = None,
    track: bool | None = None,
    log: Log | None = None,
) -> ScoreResult:
    """Score one batch (a file or a folder, any size) into ``<out_dir>/batch=<batch>/``.

    Args:
        settings: ``score.*`` (summaries, chunk_rows, actor pool, Ray), ``validation`` /
            ``preprocess`` (as training), ``gate.*_name`` (the registered models).
        path: a CSV/TSV/JSONL/Parquet file or a folder of them.
        out_dir: the dataset's folder (default ``score.out_dir``).
        columns: the ``--columns`` mapping (``text=Body,rating=Stars``), as ingest takes it
            (default ``ingest.columns``).
        batch: the batch name (default: the input's file or folder name).
        summaries: ``none`` | ``all`` | ``sample:N`` (default ``score.summaries``).
        sentiment_model: ``NAME@ALIAS``, ``NAME/VERSION`` or a folder (default: the champion).
        summarizer_model: the same, for the summarizer.
        ray_address: a running cluster (default ``score.ray_address``, ``$RAY_ADDRESS``, else local).
        track: log an MLflow run; None logs when ``$MLFLOW_TRACKING_URI`` is set or ``./mlflow.db`` exists.
        log: progress callback, one line per step and partition.

    Raises:
        ReviewOpsError: a missing input, a bad batch name, mapping, model or summaries mode, or
            a batch folder made from other input or models.
    """
    say = log or (lambda _: None)
    started = time.perf_counter()
    settings = _with_summaries(settings, summaries)
    source, name = _input_and_batch(path, batch)
    engine.probe_ray(settings, ray_address)
    columns = columns if columns else (settings.ingest.columns or None)
    out = Path(out_dir) if out_dir is not None else Path(settings.score.out_dir)
    mode = settings.score.summaries
    models = resolve_models(settings, sentiment=sentiment_model, summarizer=summarizer_model, summaries=mode)
    say(f"batch {name}: summaries {mode} ({_summaries_note(mode)}); {_label(models)}")
    inputs = input_digests(source)
    claim_batch(out, name, build_manifest(settings, inputs=inputs, models=models, columns=columns))
    cut = SampleCut(mode)
    found = _read_input(settings, path=source, out=out, batch=name, columns=columns, cut=cut, say=say)
    _check_counts(found.counts)
    scoring_started = time.perf_counter()
    ray_info = _score(
        settings, found, out=out, batch=name, models=models, plan=cut.plan(), ray_address=ray_address, say=say
    )
    result = _result(settings, found, source=source, out=out, batch=name, models=models, inputs=inputs)
    result.ray = dict(ray_info)
    result.throughput = _throughput(found, started, scoring_started)
    _finish(settings, result, track=track, say=say)
    return result


def _input_and_batch(path: Path | str, batch: str | None) -> tuple[Path, str]:
    """The input path (which must exist) and the checked batch name (default: the input's name)."""
    source = Path(path)
    if not source.exists():
        raise ReviewOpsError(f"input {source} not found (a CSV/TSV/JSONL/Parquet file or a folder of them)")
    return source, check_batch_name(batch or batch_name_for(source))


def _label(models: ScoringModels) -> str:
    """``sentiment NAME vN, summarizer NAME`` for the progress line."""
    names = []
    for role, choice in (("sentiment", models.sentiment), ("summarizer", models.summarizer)):
        name = "off" if choice is None else f"{choice.name} v{choice.version}" if choice.version else choice.name
        names.append(f"{role} {name}")
    return ", ".join(names)


def _result(
    settings: Settings,
    found: _Pass,
    *,
    source: Path,
    out: Path,
    batch: str,
    models: ScoringModels,
    inputs: dict[str, str],
) -> ScoreResult:
    """The result of a run whose partitions are all written (throughput and Ray filled in by the caller)."""
    written = sorted(found.staged)
    return ScoreResult(
        batch=batch,
        path=str(source),
        out_dir=str(out),
        counts=dict(found.counts),
        summaries=_summary_info(settings.score.summaries, found.counts["scored"]),
        models=models.to_dict(),
        inputs=inputs,
        partitions={
            "total": found.total,
            "written": written,
            "skipped": sorted(found.skipped),
            "resumed": bool(found.skipped) and bool(written),
            "chunk_rows": settings.score.chunk_rows,
        },
        throughput={},
        outputs=_outputs(out, batch),
        reasons=found.reasons,
    )


def _throughput(found: _Pass, started: float, scoring_started: float) -> dict[str, Any]:
    """Seconds in all and on Ray, and reviews per second scored by this run (skipped partitions excluded)."""
    now = time.perf_counter()
    rows = sum(found.expected.values())
    scoring = now - scoring_started
    return {
        "seconds": round(now - started, 3),
        "scoring_seconds": round(scoring, 3),
        "rows_scored_now": rows,
        "rows_per_s": round(rows / scoring, 2) if rows and scoring > 0 else None,
    }


def _finish(settings: Settings, result: ScoreResult, *, track: bool | None, say: Log) -> None:
    """Step 4: the report, then the MLflow run (when tracking is on) and the report again with its id.

    The report is on disk before MLflow is called: if the tracking server fails, the scored
    partitions and the counts are kept, and a rerun (which skips every partition) logs the run.
    """
    from reviewops.monitoring.outputs import tracking_configured

    path = report_path(result.out_dir, result.batch)
    logging_on = bool(track or (track is None and tracking_configured()))
    result.mlflow = {"run_id": None}
    if not logging_on:
        result.mlflow["note"] = "not logged: no $MLFLOW_TRACKING_URI and no ./mlflow.db (or --no-track)"
    write_json(path, result.to_dict())
    if logging_on:
        result.mlflow = {"run_id": log_score_run(settings, result.to_dict())}
        say(f"MLflow run {result.mlflow['run_id']} (score {result.batch})")
        write_json(path, result.to_dict())
    counts = result.counts
    say(
        f"{counts['input_rows']} input rows = {counts['scored']} scored + {counts['quarantined']} quarantined "
        f"+ {counts['deduplicated']} deduplicated; report {path}"
    )
