"""Validation of canonical batches: run the suite, map its findings to rows, decide the batch.

The suite's rules are :mod:`reviewops.data.rules`; the Great Expectations project that runs
them (context, suite, checkpoints) is :mod:`reviewops.data.gx`; splitting the rows into
valid, quarantined and repeated is :mod:`reviewops.data.quarantine`. Each expectation
carries a stable rule name in ``meta["rule"]``; a quarantined row's ``quarantine_reason`` is
the sorted ``;``-joined set of rules it broke.

Before the suite runs, rows an exporter repeated (same ``review_id``, same content) are
collapsed to their first copy: the others are *repeats*, counted and kept aside, never
quarantined. Only the same id with different content is a conflict (``review_id_conflict``).
Records the reader could not split into the header's columns arrive from ingest as
``malformed`` and join the quarantine with their own reason. So every input row ends up
valid, repeated or quarantined, and the counts say so.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import Settings, ValidationConfig
from reviewops.data.gx import GxProject, build_validation_docs, get_gx_project, gx_lock
from reviewops.data.quarantine import REASON_COLUMN, quarantine_rows, split_repeats
from reviewops.data.rules import RULE_KEY, Rule
from reviewops.errors import ReviewOpsError
from reviewops.schema import REQUIRED_COLUMNS

log = logging.getLogger(__name__)

# Optional columns validated as all-missing when a frame lacks them (the output frames keep
# only the columns they came with).
OPTIONAL_VALIDATED = ("summary", "timestamp", "rating_raw")


class BatchFailedError(ReviewOpsError):
    """Too many rows of a batch failed validation (more than ``max_failure_rate``).

    ``report`` is the stage's report (counts, failures, paths) when a stage raised it, so a
    caller can still show the numbers behind the rejection.
    """

    report: dict[str, Any] | None = None


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_batch`: the split plus the numbers behind the verdict."""

    batch_name: str
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    input_rows: int
    valid_rows: int
    quarantined_rows: int
    failure_rate: float
    failures: dict[str, int]
    success: bool
    gx_success: bool
    docs_path: Path | None = None
    # Rows the exporter repeated (same id, same content as a kept row): see ``quarantine.split_repeats``.
    repeats: pd.DataFrame = field(default_factory=pd.DataFrame)
    repeated_rows: int = 0
    table_failures: list[str] = field(default_factory=list)
    # rule -> "gx" (GX's unexpected_index_list) or "pandas" (fallback mask), failing rules only
    index_source: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Loggable numbers (no frames)."""
        return {
            "batch_name": self.batch_name,
            "input_rows": self.input_rows,
            "valid_rows": self.valid_rows,
            "quarantined_rows": self.quarantined_rows,
            "repeated_rows": self.repeated_rows,
            "failure_rate": self.failure_rate,
            "failures": dict(self.failures),
            "success": self.success,
            "gx_success": self.gx_success,
            "docs_path": str(self.docs_path) if self.docs_path else None,
        }


def _expectation_results(checkpoint_result: Any) -> list[Any]:
    out: list[Any] = []
    for suite_result in checkpoint_result.run_results.values():
        out.extend(suite_result.results)
    return out


def _rule_name(expectation_result: Any) -> str:
    meta = expectation_result.expectation_config.meta or {}
    return meta.get(RULE_KEY) or expectation_result.expectation_config.type


def _failing_positions(er: Any, rule: Rule | None, frame: pd.DataFrame) -> tuple[Any, str]:
    """Row positions that broke one expectation, and where they came from ("gx"/"pandas").

    GX's ``unexpected_index_list`` is used when it is there and agrees with GX's own
    ``unexpected_count``. Otherwise (an expectation type without index support, or
    an index list GX truncated) the rule's pandas mask, written to GX's semantics,
    decides; its count is checked against GX's so a semantic drift cannot pass silently.
    """
    result = er.result or {}
    count = result.get("unexpected_count")
    idx = result.get("unexpected_index_list")
    if idx is not None and (count is None or len(idx) == count):
        return idx, "gx"
    if rule is None or rule.failing is None:
        raise ReviewOpsError(
            f"validation rule {_rule_name(er)!r} returned no row indices and has no pandas "
            "mask; add one in reviewops.data.rules.build_rules"
        )
    mask = rule.failing(frame)
    positions = mask.to_numpy().nonzero()[0]
    if count is not None and len(positions) != count:
        raise ReviewOpsError(
            f"validation rule {rule.name!r}: GX counted {count} unexpected rows but the pandas "
            f"mask found {len(positions)}; the two implementations disagree"
        )
    return positions, "pandas"


def validate_batch(
    df: pd.DataFrame,
    settings: Settings,
    batch_name: str,
    build_docs: bool = True,
    malformed: pd.DataFrame | None = None,
    quarantine_path: Path | str | None = None,
) -> ValidationResult:
    """Validate a canonical batch with the ``reviews_canonical`` checkpoint and split its rows.

    GX validates every row (result format COMPLETE, so each column-map expectation
    returns the positions of its unexpected rows); the positions are mapped back to rows
    of ``df`` (the index is reset first, so any index works).

    Args:
        df: canonical batch (see docs/CONTRACTS.md). ``summary``, ``timestamp`` and
            ``rating_raw`` may be absent.
        settings: suite parameters (``settings.validation``) and paths (``gx_dir``).
        batch_name: names the GX run (``run_name``) and the quarantine file.
        build_docs: build the run's Data Docs page (the default); the page's Quarantine block
            says the verdict, the rows quarantined and why, and where they went.
        malformed: records the reader set aside (``ingest``'s ``malformed``, with their own
            ``quarantine_reason``); they join the quarantine and count as failed input rows.
        quarantine_path: where the caller writes the quarantined rows, for the Data Docs page
            (this function writes nothing; see :func:`write_quarantine`).

    Returns:
        A :class:`ValidationResult`; ``valid`` keeps the input columns (less ``rating_raw``),
        ``quarantined`` adds ``quarantine_reason``, ``repeats`` holds the collapsed repeats.
        ``input_rows = valid_rows + quarantined_rows + repeated_rows``; ``success`` is
        ``failure_rate <= max_failure_rate`` (failure rate over all input rows).

    Raises:
        ReviewOpsError: a required column is missing (a table-level failure: nothing is
            quarantined), or an expectation errored inside GX. The run is still recorded
            in the GX validation store and Data Docs first.
    """
    with gx_lock(settings):  # the GX project's files: one process at a time
        run = _run_suite(df, settings, batch_name, build_docs)
        valid, quarantined, failures = quarantine_rows(run.frame, run.row_rules, malformed)
        result = _result(batch_name, run, valid, quarantined, failures, malformed, settings.validation)
        if build_docs:
            from reviewops.data.docs_quarantine import quarantine_note  # imports GX: only when building docs

            start = time.perf_counter()
            note = quarantine_note(result, settings, quarantine_path, gx_rules=set(run.row_rules))
            result.docs_path = build_validation_docs(run.project, run.checkpoint_result, note)
            result.seconds["docs"] = time.perf_counter() - start
            result.seconds["total"] += result.seconds["docs"]
    log.info(
        "validated batch %r: %d rows, %d quarantined (%.1f%%), %d repeats, failures=%s",
        batch_name,
        result.input_rows,
        result.quarantined_rows,
        100 * result.failure_rate,
        result.repeated_rows,
        result.failures,
    )
    return result


@dataclass
class _SuiteRun:
    """One checkpoint run over a batch: the rows as validated and the failing rows per rule."""

    frame: pd.DataFrame  # the batch, index reset, repeats collapsed
    repeats: pd.DataFrame
    row_rules: dict[str, list[np.ndarray]]  # rule -> failing positions, per expectation
    index_source: dict[str, str]
    table_failures: list[str]
    gx_success: bool
    project: GxProject
    checkpoint_result: Any
    clock: dict[str, float]  # perf_counter marks: start, setup (GX project ready), checkpoint (run done)


def _run_suite(df: pd.DataFrame, settings: Settings, batch_name: str, build_docs: bool) -> _SuiteRun:
    """Set up the GX project, run the checkpoint and find each rule's failing rows.

    The checkpoint has no Data Docs action: ``validate_batch`` builds the page once the rows
    are split. A run that fails here gets its page first (``build_docs``), then raises.

    Raises:
        ReviewOpsError: a table-level failure or a GX error (see :func:`validate_batch`).
    """
    from great_expectations.core.run_identifier import RunIdentifier

    clock = {"start": time.perf_counter()}
    project = get_gx_project(settings)
    clock["setup"] = time.perf_counter()
    frame, gx_frame, repeats = _prepare_frames(df)
    run_id = RunIdentifier(run_name=batch_name, run_time=dt.datetime.now(dt.UTC))
    cp_result = project.checkpoint_no_docs.run(batch_parameters={"dataframe": gx_frame}, run_id=run_id)
    clock["checkpoint"] = time.perf_counter()
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    table_failures, errors, row_rules, index_source = _failures_by_rule(cp_result, project.rules, gx_frame, missing)
    if build_docs and (table_failures or errors):
        build_validation_docs(
            project, cp_result, {"batch": batch_name, "table_failures": missing or table_failures, "errors": errors}
        )
    if table_failures:
        # Table-level: every row would fail, so quarantining them all would hide the cause.
        raise ReviewOpsError(
            f"batch {batch_name!r}: required column(s) missing: "
            f"{', '.join(missing) or ', '.join(table_failures)} "
            f"(have: {', '.join(map(str, frame.columns))}); map them in the ingest column mapping"
        )
    if errors:
        raise ReviewOpsError(f"batch {batch_name!r}: validation errored: {'; '.join(errors)}")
    return _SuiteRun(
        frame, repeats, row_rules, index_source, table_failures, bool(cp_result.success), project, cp_result, clock
    )


def _prepare_frames(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(frame, gx_frame, repeats)``: the batch to split, what GX sees, and the collapsed repeats."""
    # Positions, not labels: GX reports the index of the frame it got. A stale reason
    # column (re-validating a fixed quarantine file) is dropped, not carried over.
    frame = df.reset_index(drop=True).drop(columns=[REASON_COLUMN], errors="ignore")
    frame, repeats = split_repeats(frame)
    gx_frame = frame
    absent = {c: pd.Series([None] * len(frame), dtype=object) for c in OPTIONAL_VALIDATED if c not in frame.columns}
    if absent:
        # Optional columns: validate as all-missing; the output frames stay untouched.
        gx_frame = frame.assign(**absent)
    return frame, gx_frame, repeats


def _failures_by_rule(
    cp_result: Any, rules: list[Rule], gx_frame: pd.DataFrame, missing: list[str]
) -> tuple[list[str], list[str], dict[str, list[np.ndarray]], dict[str, str]]:
    """``(table_failures, errors, row_rules, index_source)`` from a checkpoint result.

    ``row_rules`` maps a rule to its failing row positions (one array per expectation);
    ``index_source`` says where each rule's positions came from ("gx" or "pandas").
    """
    by_name = {r.name: r for r in rules}
    table_failures: list[str] = [f"column_exists:{c}" for c in missing]
    errors: list[str] = []
    row_rules: dict[str, list[np.ndarray]] = {}
    index_source: dict[str, str] = {}
    for er in _expectation_results(cp_result):
        name = _rule_name(er)
        rule = by_name.get(name)
        if rule is not None and rule.table_level:
            if not er.success and name not in table_failures:
                table_failures.append(name)
            continue
        if rule is not None and rule.column not in gx_frame.columns:
            continue  # reported through column_exists
        exc = er.exception_info or {}
        if exc.get("raised_exception"):
            errors.append(f"{name}: {exc.get('exception_message')}")
            continue
        if er.success and not (er.result or {}).get("unexpected_count"):
            continue
        positions, source = _failing_positions(er, rule, gx_frame)
        if len(positions):
            row_rules.setdefault(name, []).append(np.asarray(positions, dtype=np.int64))
            index_source[name] = source
    return table_failures, errors, row_rules, index_source


def _result(
    batch_name: str,
    run: _SuiteRun,
    valid: pd.DataFrame,
    quarantined: pd.DataFrame,
    failures: dict[str, int],
    malformed: pd.DataFrame | None,
    cfg: ValidationConfig,
) -> ValidationResult:
    """The counts behind the verdict; every input row is valid, quarantined or a repeat."""
    repeats = run.repeats
    n = len(run.frame) + len(repeats) + (0 if malformed is None else len(malformed))
    valid_rows, quarantined_rows = len(valid), len(quarantined)
    assert valid_rows + quarantined_rows + len(repeats) == n, (valid_rows, quarantined_rows, len(repeats), n)
    failure_rate = quarantined_rows / n if n else 0.0
    clock, end = run.clock, time.perf_counter()
    return ValidationResult(
        batch_name=batch_name,
        valid=valid,
        quarantined=quarantined,
        input_rows=n,
        valid_rows=valid_rows,
        quarantined_rows=quarantined_rows,
        failure_rate=failure_rate,
        failures=failures,
        success=failure_rate <= cfg.max_failure_rate and not run.table_failures,
        gx_success=run.gx_success,
        table_failures=run.table_failures,
        index_source=run.index_source,
        repeats=repeats,
        repeated_rows=len(repeats),
        seconds={
            "setup": clock["setup"] - clock["start"],
            "checkpoint": clock["checkpoint"] - clock["setup"],
            "split": end - clock["checkpoint"],
            "total": end - clock["start"],
        },
    )


def check_failure_rate(result: ValidationResult, cfg: ValidationConfig) -> None:
    """Raise :class:`BatchFailedError` when more than ``max_failure_rate`` of rows failed.

    The message names the top 3 failing rules with their row counts.
    """
    if result.failure_rate <= cfg.max_failure_rate:
        return
    top = ", ".join(f"{rule}={count}" for rule, count in list(result.failures.items())[:3])
    raise BatchFailedError(
        f"batch {result.batch_name!r}: {100 * result.failure_rate:.1f}% of rows failed validation "
        f"(limit {100 * cfg.max_failure_rate:.1f}%); top failures: {top}. "
        "Inspect the quarantine file and Data Docs, fix the source or raise validation.max_failure_rate"
    )


def write_quarantine(result: ValidationResult, settings: Settings, batch_name: str) -> Path | None:
    """Write quarantined rows to ``paths.quarantine_dir/<batch_name>.parquet``.

    Overwrites that batch's previous file; writes nothing (and returns None) when no row
    was quarantined.
    """
    if result.quarantined_rows == 0:
        return None
    if not batch_name or Path(batch_name).name != batch_name:
        raise ReviewOpsError(f"batch name {batch_name!r} must be a plain file name (no '/' or '..')")
    out = Path(settings.paths.quarantine_dir) / f"{batch_name}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    result.quarantined.to_parquet(out, index=False)
    return out


def write_valid(result: ValidationResult, out_path: Path | str) -> Path:
    """Write the valid rows (canonical columns) to a Parquet file; returns its path."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.valid.to_parquet(out, index=False)
    return out
