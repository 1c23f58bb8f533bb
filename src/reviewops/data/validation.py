"""Great Expectations validation of canonical batches: suite, checkpoint, quarantine of bad rows.

The GX project is file-backed under ``paths.gx_dir`` (``great_expectations/gx/``); the
suite JSON in ``gx/expectations/`` is committed, ``gx/uncommitted/`` (validation results,
Data Docs) is git-ignored by the ``gx/.gitignore`` GX writes. Every GX object (datasource,
asset, batch definition, suite, validation definition, checkpoints) is created or updated
on use, so running twice is safe and a changed ``params.yaml`` updates the suite in place.

Each expectation carries a stable rule name in ``meta["rule"]``; a quarantined row's
``quarantine_reason`` is the sorted ``;``-joined set of rules it broke.

Before the suite runs, rows an exporter repeated (same ``review_id``, same content) are
collapsed to their first copy: the others are *repeats*, counted and kept aside, never
quarantined. Only the same id with different content is a conflict (``review_id_conflict``).
Records the reader could not split into the header's columns arrive from ingest as
``malformed`` and join the quarantine with their own reason. So every input row ends up
valid, repeated or quarantined, and the counts say so.

GX is imported lazily (it takes seconds and prints progress bars); analytics are switched
off through ``GX_ANALYTICS_ENABLED=false`` before the first import.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reviewops.config import Settings, ValidationConfig
from reviewops.errors import ReviewOpsError
from reviewops.schema import REQUIRED_COLUMNS
from reviewops.text import VISIBLE_CHAR_PATTERN

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

SUITE_NAME = "reviews_canonical"
DATASOURCE_NAME = "reviewops_pandas"
ASSET_NAME = "canonical_batch"
BATCH_DEFINITION_NAME = "whole_dataframe"
VALIDATION_DEFINITION_NAME = "reviews_canonical"
CHECKPOINT_NAME = "reviews_canonical"
# Same validation without the Data Docs action (``build_docs=False``): a Checkpoint's actions
# are part of its stored config, so toggling them per run would rewrite the JSON every time.
CHECKPOINT_NO_DOCS_NAME = "reviews_canonical_no_docs"
DOCS_SITE_NAME = "local_site"
# The Data Docs index page re-reads every stored validation result on each build, so its
# cost grows with history (the result of a 1M-row batch whose rows all fail holds ~1M row
# indices, ~20 MB of JSON); the index lists the latest runs only.
DOCS_INDEX_LIMIT = 50
RULE_KEY = "rule"
REASON_COLUMN = "quarantine_reason"
TIMESTAMP_REGEX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
# At least one character that shows: whitespace, NUL and zero-width characters alone are empty.
NOT_EMPTY_REGEX = VISIBLE_CHAR_PATTERN
# Optional columns validated as all-missing when a frame lacks them (the output frames keep
# only the columns they came with).
OPTIONAL_VALIDATED = ("summary", "timestamp", "rating_raw")
# Working columns that describe a row's trouble; valid rows carry no trouble, so they drop them.
TROUBLE_COLUMNS = ("rating_raw",)
# A row that breaks the first rule also breaks the second by construction; its reason names
# only the first (an unreadable "five stars!" is not a missing rating).
SUPERSEDES = {"rating_unparseable": "rating_not_null"}
REPEAT_KIND = "repeated_row"

# COMPLETE gives ``unexpected_index_list`` (positions, after our reset_index) for every
# column-map expectation. The unexpected *values* are left out (GX then also drops the
# 20-value ``partial_unexpected_list``; Data Docs show row indices instead): with COMPLETE,
# values would copy every failing review text (up to max_text_chars each) into the stored
# result JSON. The bad values are in the quarantine Parquet file instead.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 20,
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}


class BatchFailedError(ReviewOpsError):
    """Too many rows of a batch failed validation (more than ``max_failure_rate``).

    ``report`` is the stage's report (counts, failures, paths) when a stage raised it, so a
    caller can still show the numbers behind the rejection.
    """

    report: dict[str, Any] | None = None


# --------------------------------------------------------------------------------------
# Rules: one table drives both the GX suite and the pandas fallback masks.


def _null_mask(col: pd.Series) -> pd.Series:
    return col.isna()


def _non_null_failing(col: pd.Series, ok: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """GX column-map semantics: nulls are skipped (never unexpected), ``ok`` runs on the rest."""
    present = col.notna().to_numpy()
    failing = np.zeros(len(col), dtype=bool)
    if present.any():
        failing[present] = ~np.asarray(ok(col[present]), dtype=bool)
    return pd.Series(failing, index=col.index)


@dataclass(frozen=True)
class Rule:
    """One expectation with its stable rule name and a pandas twin of its row condition.

    ``failing`` returns a boolean Series (True = row breaks the rule) computed exactly as
    GX's pandas engine does (same null filtering, ``astype(str)``, ``str.contains``,
    ``duplicated(keep=False)``). It is the fallback when GX returns no
    ``unexpected_index_list`` for an expectation, and the reference the GX counts are
    checked against.
    """

    name: str
    expectation: str
    kwargs: dict[str, Any]
    table_level: bool = False
    failing: Callable[[pd.DataFrame], pd.Series] | None = None

    @property
    def column(self) -> str:
        return self.kwargs["column"]


def build_rules(cfg: ValidationConfig) -> list[Rule]:
    """The ``reviews_canonical`` rules, parameterised by :class:`ValidationConfig`.

    Column-map rules ignore nulls (GX semantics); each required column has its own
    ``<column>_not_null`` rule so a missing value is reported once, under its own name.
    """
    rules: list[Rule] = [
        Rule(f"column_exists:{c}", "ExpectColumnToExist", {"column": c}, table_level=True) for c in REQUIRED_COLUMNS
    ]
    for c in REQUIRED_COLUMNS:
        rules.append(
            Rule(
                f"{c}_not_null",
                "ExpectColumnValuesToNotBeNull",
                {"column": c},
                failing=lambda df, c=c: _null_mask(df[c]),
            )
        )
    lo, hi = cfg.min_text_chars, cfg.max_text_chars
    allowed = sorted(cfg.allowed_languages)
    rules += [
        # Identical repeats are collapsed before the suite runs, so a repeated id left here
        # carries different content: a conflict, every copy quarantined.
        Rule(
            "review_id_conflict",
            "ExpectColumnValuesToBeUnique",
            {"column": "review_id"},
            failing=lambda df: _non_null_failing(df["review_id"], lambda s: ~s.duplicated(keep=False)),
        ),
        # The cell was there but is not a rating (``great``, ``8/10``); ingest kept it as written.
        Rule(
            "rating_unparseable",
            "ExpectColumnValuesToBeNull",
            {"column": "rating_raw"},
            failing=lambda df: (
                df["rating_raw"].notna() if "rating_raw" in df.columns else pd.Series(False, index=df.index)
            ),
        ),
        Rule(
            "rating_in_range",
            "ExpectColumnValuesToBeBetween",
            {"column": "rating", "min_value": cfg.rating_min, "max_value": cfg.rating_max},
            failing=lambda df: _non_null_failing(df["rating"], lambda s: (s >= cfg.rating_min) & (s <= cfg.rating_max)),
        ),
        Rule(
            "text_not_empty",
            "ExpectColumnValuesToMatchRegex",
            {"column": "text", "regex": NOT_EMPTY_REGEX},
            failing=lambda df: _non_null_failing(df["text"], lambda s: s.astype(str).str.contains(NOT_EMPTY_REGEX)),
        ),
        # str.len() counts code points, so 20 Chinese characters are 20, not 60 bytes.
        Rule(
            "text_length",
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "text", "min_value": lo, "max_value": hi},
            failing=lambda df: _non_null_failing(df["text"], lambda s: s.astype(str).str.len().between(lo, hi)),
        ),
        Rule(
            "timestamp_iso8601",
            "ExpectColumnValuesToMatchRegex",
            {"column": "timestamp", "regex": TIMESTAMP_REGEX},
            failing=lambda df: _non_null_failing(
                df["timestamp"], lambda s: s.astype(str).str.contains(TIMESTAMP_REGEX)
            ),
        ),
        Rule(
            "language_allowed",
            "ExpectColumnValuesToBeInSet",
            {"column": "language", "value_set": allowed},
            failing=lambda df: _non_null_failing(df["language"], lambda s: s.isin(allowed)),
        ),
        # summary is optional (None for inference-only batches); nulls are skipped.
        Rule(
            "summary_length",
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "summary", "max_value": cfg.max_summary_chars},
            failing=lambda df: _non_null_failing(
                df["summary"], lambda s: s.astype(str).str.len() <= cfg.max_summary_chars
            ),
        ),
    ]
    return rules


# --------------------------------------------------------------------------------------
# GX project (created / updated on use)


def _import_gx() -> Any:
    # Before the first import: no usage statistics, no network.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    # GX logs INFO chatter (and warnings about its own internals) on every run.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.ERROR)
    return gx


def _signature(expectation: Any) -> dict[str, Any]:
    config = expectation.configuration.to_json_dict()
    config.pop("id", None)
    return config


def _get_or_update_suite(context: AbstractDataContext, wanted: Any) -> Any:
    """Return the stored suite when it already says what ``wanted`` says, else update it.

    GX's own ``add_or_update`` hands every expectation a fresh id on each call (its
    equality check never matches), which would churn the committed JSON; here the file
    is only written when a rule changed, and a changed rule keeps its id (matched by
    rule name) so the diff shows only the changed parameters.
    """
    from great_expectations.exceptions import DataContextError

    try:
        existing = context.suites.get(wanted.name)
    except DataContextError:
        return context.suites.add(wanted)
    if [_signature(e) for e in existing.expectations] == [_signature(e) for e in wanted.expectations]:
        return existing
    ids = {e.meta.get(RULE_KEY): e.id for e in existing.expectations if e.meta}
    for e in wanted.expectations:
        e.id = ids.get(e.meta.get(RULE_KEY))
    log.info("updating GX suite %r from params", wanted.name)
    return context.suites.add_or_update(wanted)


@dataclass
class GxProject:
    """Handles on the GX objects ``validate_batch`` needs (from :func:`get_gx_project`)."""

    context: AbstractDataContext
    suite: Any
    checkpoint: Any
    checkpoint_no_docs: Any
    rules: list[Rule]
    docs_index: Path


def get_gx_project(settings: Settings) -> GxProject:
    """Open (or scaffold) the file-backed GX project and make sure every object exists.

    Idempotent: the datasource, asset and batch definition are fetched when present;
    the suite is written only when its rules changed (see :func:`_get_or_update_suite`),
    the validation definition and checkpoints are ``add_or_update``-d (same content, same
    ids). A second run leaves every committed file byte-identical.
    """
    gx = _import_gx()
    import great_expectations.expectations as gxe
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    root = Path(settings.paths.gx_dir)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))

    # Persist "no progress bars, no analytics" in great_expectations.yml (written once), so
    # other tools opening this project stay quiet and offline too.
    variables = context.variables
    bars = variables.progress_bars
    bars_on = bars.get("globally", True) if isinstance(bars, dict) else getattr(bars, "globally", True)
    sites = dict(variables.data_docs_sites or {})
    site = dict(sites.get(DOCS_SITE_NAME) or {})
    index_builder = dict(site.get("site_index_builder") or {"class_name": "DefaultSiteIndexBuilder"})
    stale_docs = bool(site) and index_builder.get("validation_results_limit") != DOCS_INDEX_LIMIT
    if bars is None or bars_on or variables.analytics_enabled is not False or stale_docs:
        variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        variables.analytics_enabled = False
        if stale_docs:
            index_builder["validation_results_limit"] = DOCS_INDEX_LIMIT
            sites[DOCS_SITE_NAME] = {**site, "site_index_builder": index_builder}
            variables.data_docs_sites = sites
        variables.save()

    try:
        datasource = context.data_sources.get(DATASOURCE_NAME)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(DATASOURCE_NAME)
    try:
        asset = datasource.get_asset(ASSET_NAME)
    except LookupError:
        asset = datasource.add_dataframe_asset(ASSET_NAME)
    try:
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except (KeyError, LookupError):
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)

    rules = build_rules(settings.validation)
    expectations = [getattr(gxe, r.expectation)(**r.kwargs, meta={RULE_KEY: r.name}) for r in rules]
    suite = _get_or_update_suite(context, gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))
    vdef = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=VALIDATION_DEFINITION_NAME, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT_NAME,
            validation_definitions=[vdef],
            result_format=RESULT_FORMAT,
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE_NAME])],
        )
    )
    checkpoint_no_docs = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT_NO_DOCS_NAME,
            validation_definitions=[vdef],
            result_format=RESULT_FORMAT,
        )
    )
    docs_index = root / "gx" / "uncommitted" / "data_docs" / DOCS_SITE_NAME / "index.html"
    return GxProject(context, suite, checkpoint, checkpoint_no_docs, rules, docs_index)


# --------------------------------------------------------------------------------------
# Validation


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
    # Rows the exporter repeated (same id, same content as a kept row): see :func:`split_repeats`.
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
            "mask; add one in reviewops.data.validation.build_rules"
        )
    mask = rule.failing(frame)
    positions = mask.to_numpy().nonzero()[0]
    if count is not None and len(positions) != count:
        raise ReviewOpsError(
            f"validation rule {rule.name!r}: GX counted {count} unexpected rows but the pandas "
            f"mask found {len(positions)}; the two implementations disagree"
        )
    return positions, "pandas"


def _split(
    frame: pd.DataFrame, row_rules: dict[str, list[np.ndarray]]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split rows into valid / quarantined and count rows per rule (most frequent first).

    Each row's failed rules are packed into one integer (bit i = i-th rule in sorted
    order), so building the reason strings costs one dict lookup per *distinct* failure
    combination instead of string concatenation per row (1M bad rows: ~0.2 s, not ~2 s).
    """
    names = sorted(row_rules)
    if len(names) > 62:
        raise ReviewOpsError(f"too many validation rules to pack ({len(names)} > 62)")
    n = len(frame)
    codes = np.zeros(n, dtype=np.int64)
    failures: dict[str, int] = {}
    for bit, name in enumerate(names):
        hit = np.zeros(n, dtype=bool)
        hit[np.concatenate(row_rules[name])] = True  # union over the rule's expectations
        failures[name] = int(hit.sum())
        codes |= hit.astype(np.int64) << bit
    failures = dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))

    for winner, loser in SUPERSEDES.items():
        if winner in names and loser in names:
            w, lo = np.int64(1) << names.index(winner), np.int64(1) << names.index(loser)
            both = (codes & w != 0) & (codes & lo != 0)
            codes[both] &= ~lo
            failures[loser] -= int(both.sum())
            if failures[loser] == 0:
                del failures[loser]
            failures = dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))

    bad = codes != 0
    valid = frame.loc[~bad].reset_index(drop=True)
    quarantined = frame.loc[bad].reset_index(drop=True)
    bad_codes = codes[bad]
    labels = {
        int(code): ";".join(name for bit, name in enumerate(names) if code >> bit & 1) for code in np.unique(bad_codes)
    }
    quarantined[REASON_COLUMN] = pd.Series(bad_codes, dtype=np.int64).map(labels).astype(object).to_numpy()
    return valid, quarantined, failures


def split_repeats(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collapse rows an exporter repeated: same ``review_id`` and same content, keep the first.

    Content is every column except where the row came from (``source_file``/``source_row``);
    rows without an id are never repeats (nothing says they are the same review).

    Returns:
        ``(kept, repeats)``: ``repeats`` are the later copies with ``duplicate_kind`` =
        ``repeated_row`` and ``duplicate_of`` = ``<source_file>:<source_row>`` of the kept copy.
    """
    content = [c for c in frame.columns if c not in ("source_file", "source_row")]
    none = frame.iloc[0:0].assign(duplicate_kind=pd.Series(dtype=object), duplicate_of=pd.Series(dtype=object))
    if not len(frame) or "review_id" not in frame.columns:
        return frame, none
    ids = frame["review_id"]
    # Only rows whose id occurs twice can be repeats: compare content on those few rows.
    candidates = (ids.notna() & ids.duplicated(keep=False)).to_numpy()
    if not candidates.any():
        return frame, none
    sub = frame.loc[candidates, content]
    group = sub.groupby(content, dropna=False, sort=False).ngroup().to_numpy()
    repeated_sub = pd.Series(group).duplicated(keep="first").to_numpy()
    if not repeated_sub.any():
        return frame, none
    where = (
        frame["source_file"].astype(str) + ":" + frame["source_row"].astype(str)
        if {"source_file", "source_row"} <= set(frame.columns)
        else pd.Series(frame.index.astype(str), index=frame.index)
    )
    sub_where = where[candidates].to_numpy()
    first_of_group: dict[int, str] = {}
    for g, w in zip(group, sub_where, strict=True):
        first_of_group.setdefault(int(g), w)
    positions = np.flatnonzero(candidates)[repeated_sub]
    repeats = frame.iloc[positions].assign(
        duplicate_kind=REPEAT_KIND, duplicate_of=[first_of_group[int(g)] for g in group[repeated_sub]]
    )
    keep = np.ones(len(frame), dtype=bool)
    keep[positions] = False
    return frame.loc[keep].reset_index(drop=True), repeats.reset_index(drop=True)


def validate_batch(
    df: pd.DataFrame,
    settings: Settings,
    batch_name: str,
    build_docs: bool = True,
    malformed: pd.DataFrame | None = None,
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
        build_docs: run the checkpoint with the UpdateDataDocsAction (the default).
        malformed: records the reader set aside (``ingest``'s ``malformed``, with their own
            ``quarantine_reason``); they join the quarantine and count as failed input rows.

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
    from great_expectations.core.run_identifier import RunIdentifier

    t0 = time.perf_counter()
    project = get_gx_project(settings)
    t_setup = time.perf_counter()

    # Positions, not labels: GX reports the index of the frame it got. A stale reason
    # column (re-validating a fixed quarantine file) is dropped, not carried over.
    frame = df.reset_index(drop=True).drop(columns=[REASON_COLUMN], errors="ignore")
    frame, repeats = split_repeats(frame)
    gx_frame = frame
    absent = {c: pd.Series([None] * len(frame), dtype=object) for c in OPTIONAL_VALIDATED if c not in frame.columns}
    if absent:
        # Optional columns: validate as all-missing; the output frames stay untouched.
        gx_frame = frame.assign(**absent)

    checkpoint = project.checkpoint if build_docs else project.checkpoint_no_docs
    run_id = RunIdentifier(run_name=batch_name, run_time=dt.datetime.now(dt.UTC))
    cp_result = checkpoint.run(batch_parameters={"dataframe": gx_frame}, run_id=run_id)
    t_run = time.perf_counter()

    rules = {r.name: r for r in project.rules}
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    table_failures: list[str] = [f"column_exists:{c}" for c in missing]
    errors: list[str] = []
    row_rules: dict[str, list[np.ndarray]] = {}  # rule -> failing positions, per expectation
    index_source: dict[str, str] = {}
    for er in _expectation_results(cp_result):
        name = _rule_name(er)
        rule = rules.get(name)
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

    if table_failures:
        # Table-level: every row would fail, so quarantining them all would hide the cause.
        raise ReviewOpsError(
            f"batch {batch_name!r}: required column(s) missing: "
            f"{', '.join(missing) or ', '.join(table_failures)} "
            f"(have: {', '.join(map(str, frame.columns))}); map them in the ingest column mapping"
        )
    if errors:
        raise ReviewOpsError(f"batch {batch_name!r}: validation errored: {'; '.join(errors)}")

    valid, quarantined, failures = _split(frame, row_rules)
    valid = valid.drop(columns=[c for c in TROUBLE_COLUMNS if c in valid.columns])
    if malformed is not None and len(malformed):
        quarantined = pd.concat([quarantined, malformed], ignore_index=True)
        for reason, count in malformed[REASON_COLUMN].value_counts().items():
            failures[reason] = failures.get(reason, 0) + int(count)
        failures = dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))

    n = len(frame) + len(repeats) + (0 if malformed is None else len(malformed))
    valid_rows, quarantined_rows = len(valid), len(quarantined)
    assert valid_rows + quarantined_rows + len(repeats) == n, (valid_rows, quarantined_rows, len(repeats), n)
    failure_rate = quarantined_rows / n if n else 0.0
    docs = project.docs_index if build_docs and project.docs_index.exists() else None
    t_end = time.perf_counter()
    result = ValidationResult(
        batch_name=batch_name,
        valid=valid,
        quarantined=quarantined,
        input_rows=n,
        valid_rows=valid_rows,
        quarantined_rows=quarantined_rows,
        failure_rate=failure_rate,
        failures=failures,
        success=failure_rate <= settings.validation.max_failure_rate and not table_failures,
        gx_success=bool(cp_result.success),
        docs_path=docs,
        table_failures=table_failures,
        index_source=index_source,
        repeats=repeats,
        repeated_rows=len(repeats),
        seconds={"setup": t_setup - t0, "checkpoint": t_run - t_setup, "split": t_end - t_run, "total": t_end - t0},
    )
    log.info(
        "validated batch %r: %d rows, %d quarantined (%.1f%%), %d repeats, failures=%s",
        batch_name,
        n,
        quarantined_rows,
        100 * failure_rate,
        len(repeats),
        failures,
    )
    return result


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
