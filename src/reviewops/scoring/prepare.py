"""Streaming data preparation for bulk scoring: any input, in partitions, checked and cleaned as for training.

:func:`iter_partitions` reads a file or a folder (CSV/TSV/JSONL/Parquet, as ``reviewops ingest``
reads them) in chunks of ``chunk_rows`` records (:mod:`reviewops.scoring.chunks`), so memory stays
flat however large the input. Every chunk goes through the training path's steps, reused:

1. ingest: the column mapping, ratings, timestamps, language detection, PII masked
   (:func:`reviewops.data.ingest.canonical_frame`); records whose field count differs from
   the header are quarantined as ``field_count_mismatch``;
2. validation: exporter repeats collapsed (:func:`reviewops.data.quarantine.split_repeats`), then
   the rules of :func:`reviewops.data.rules.build_rules` applied as row masks and split by
   :func:`reviewops.data.quarantine.quarantine_rows`. Great Expectations itself does not run per
   chunk: each rule's ``failing`` mask is the same expectation written to GX's semantics (the
   batch path checks the two agree), and no Data Docs are built;
3. cleaning: HTML, invisible characters, normalization, PII masked again, texts cut to
   ``preprocess.max_text_chars``, empty texts quarantined (``text_empty_after_cleaning``) and
   duplicates dropped (:func:`reviewops.data.clean.clean_columns` / ``find_duplicates``).

Repeats, review-id conflicts and duplicates are found across the whole input, not only inside a
chunk: :class:`_Seen` keeps 8-byte hashes (:mod:`reviewops.scoring.keys`) of every review id,
every (id, content) pair and every exact and normalized dedup key met so far (at most 32 bytes
a row; 1M rows ~ 32 MB).

What differs from the training path, on purpose:

- ``rating`` is optional: a batch without a rating column is scored (rating null), and the
  ``rating_not_null`` rule is not applied. A rating that is there must still be readable and
  in range.
- A review id met again in a later partition with other content quarantines the later copies
  as ``review_id_conflict``; the first copy was already handed out (the batch path quarantines
  every copy). Inside one partition every copy is quarantined, as in the batch path.
- A duplicate or repeat whose first copy is in an earlier partition has ``duplicate_of`` null
  (naming it would mean keeping every id); inside a partition it names the kept copy.
- No labels (``label``/``label_id``) and no batch-level failure-rate verdict: the counts per
  partition say how many rows each rule took.

Resuming: a partition's dedup depends on every earlier one, so a resumed run iterates from
partition 0 again (preparing costs ~20k rows/s) and only skips the scoring of partitions already
written; the same input, settings and ``chunk_rows`` give the same partitions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.config import Settings
from reviewops.data.clean import clean_columns, dedup_key, find_duplicates
from reviewops.data.ingest import (
    MAPPABLE_COLUMNS,
    OUTPUT_COLUMNS,
    canonical_frame,
    list_files,
    malformed_frame,
    parse_column_map,
)
from reviewops.data.quarantine import REASON_COLUMN, REPEAT_KIND, quarantine_rows, split_repeats
from reviewops.data.rules import Rule, build_rules
from reviewops.data.stages import check_batch_name
from reviewops.errors import ReviewOpsError
from reviewops.scoring.chunks import RawChunk, Source, open_source
from reviewops.scoring.keys import KeySet, hash_rows, hash_strings

REASON = "reason"  # the column that says why a row is quarantined or a duplicate
EMPTY_REASON = "text_empty_after_cleaning"
CONFLICT_RULE = "review_id_conflict"
# Rules the scoring path leaves out: a review without a rating is what scoring is for.
SKIPPED_RULES = frozenset({"rating_not_null"})
_WHERE_FROM = ("source_file", "source_row")
# The columns of each frame, the same in every partition (a column a partition has no value for is null).
CLEAN_COLUMNS = [c for c in OUTPUT_COLUMNS if c != "rating_raw"]
QUARANTINE_COLUMNS = [*CLEAN_COLUMNS, "rating_raw", "raw_record", "quarantine_detail", REASON_COLUMN, REASON]
DUPLICATE_COLUMNS = [*CLEAN_COLUMNS, "duplicate_kind", "duplicate_of", REASON]


@dataclass(frozen=True)
class Partition:
    """One chunk of the input, prepared: every record it read is in exactly one of the three frames.

    ``clean`` (:data:`CLEAN_COLUMNS`): ``review_id``, ``product_id``, ``text`` (cleaned, PII
    masked), ``summary`` (the input's title, not a generated summary), ``rating`` (NaN when
    absent), ``timestamp`` (an ISO ``YYYY-MM-DDTHH:MM:SSZ`` string or None), ``language``,
    ``category``, ``source_file``, ``source_row``. ``quarantined`` (:data:`QUARANTINE_COLUMNS`)
    adds ``reason`` (= ``quarantine_reason``: the broken rules ``;``-joined,
    ``field_count_mismatch`` or ``text_empty_after_cleaning``), ``rating_raw``, and
    ``raw_record`` / ``quarantine_detail`` for a record the reader set aside. ``duplicates``
    (:data:`DUPLICATE_COLUMNS`) adds ``reason`` (= ``duplicate_kind``: ``repeated_row``,
    ``exact`` or ``normalized``) and ``duplicate_of``. Every partition has these columns.
    """

    index: int  # 0-based, over the whole input; the same input gives the same indices
    input_rows: int  # records read: len(clean) + len(quarantined) + len(duplicates)
    clean: pd.DataFrame
    quarantined: pd.DataFrame
    duplicates: pd.DataFrame
    batch: str = ""
    source_file: str = ""  # the file the records came from (a partition never spans two files)
    failures: dict[str, int] = field(default_factory=dict)  # rows per broken rule (validation only)


@dataclass
class _Seen:
    """Hashes of what earlier partitions held (see the module docstring)."""

    ids: KeySet = field(default_factory=KeySet)
    id_rows: KeySet = field(default_factory=KeySet)  # review id + content
    exact: KeySet = field(default_factory=KeySet)  # text as ingested
    normalized: KeySet = field(default_factory=KeySet)  # dedup_key of the cleaned text

    @property
    def nbytes(self) -> int:
        """Memory the hashes take."""
        return sum(s.nbytes for s in (self.ids, self.id_rows, self.exact, self.normalized))


def iter_partitions(
    settings: Settings,
    *,
    path: Path,
    columns: Mapping[str, str] | str | None = None,
    batch: str,
    chunk_rows: int | None = None,
) -> Iterator[Partition]:
    """Read, check and clean an input of any size, one partition of ``chunk_rows`` records at a time.

    Every file is checked first (format, encoding, column mapping, at least one record), so a
    bad input fails before the first partition. Files of a folder are read in name order; a
    partition holds records of one file only. The same input and settings give the same
    partitions (indices, rows, order).

    Args:
        settings: ``ingest.encoding``, ``validation`` (the rules), ``preprocess`` (cleaning, PII,
            dedup) and ``score.chunk_rows`` (the default chunk size).
        path: a file or a folder of files.
        columns: ``{canonical: source column}`` or the ``--columns`` text (``text=Body,...``).
        batch: the batch name (letters, digits, ``.``, ``_``, ``-``), carried by each partition.
        chunk_rows: records per partition (default ``settings.score.chunk_rows``).

    Raises:
        ReviewOpsError: a bad batch name, column mapping or file (one line naming it).
    """
    batch = check_batch_name(batch)
    user_map = _column_map(columns)
    size = settings.score.chunk_rows if chunk_rows is None else int(chunk_rows)
    if size < 1:
        raise ReviewOpsError(f"chunk_rows must be at least 1, got {size}")
    sources = [open_source(f, settings.ingest.encoding) for f in list_files(Path(path))]
    for source in sources:
        _check_mapping(source, user_map)
    preparer = _Preparer(settings, user_map, batch)
    index = 0
    for source in sources:
        for raw in source.chunks(size):
            yield preparer.prepare(index, source, raw)
            index += 1


def _column_map(columns: Mapping[str, str] | str | None) -> dict[str, str]:
    user_map = parse_column_map(columns) if isinstance(columns, str) or columns is None else dict(columns)
    unknown = [k for k in user_map if k not in MAPPABLE_COLUMNS]
    if unknown:
        raise ReviewOpsError(
            f"column mapping: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(MAPPABLE_COLUMNS)}"
        )
    return user_map


def _with_rating(df: pd.DataFrame, user_map: dict[str, str]) -> pd.DataFrame:
    """Add an empty ``rating`` source column when nothing maps one: scoring needs no rating."""
    if "rating" in user_map or any(str(c).lower() == "rating" for c in df.columns):
        return df
    return df.assign(rating=pd.Series([None] * len(df), index=df.index, dtype=object))


def _check_mapping(source: Source, user_map: dict[str, str]) -> None:
    """Resolve the mapping against the file's columns (raises the ingest errors) without reading rows."""
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in source.columns})
    canonical_frame(source.path, _with_rating(empty, user_map), user_map, np.zeros(0, dtype=np.int64), mask=False)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate, skipping empty frames (pandas warns about their dtypes); the first frame when all are."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0].iloc[0:0].reset_index(drop=True)
    return pd.concat(full, ignore_index=True) if len(full) > 1 else full[0].reset_index(drop=True)


class _Preparer:
    """The per-chunk steps and what they remember across chunks."""

    def __init__(self, settings: Settings, user_map: dict[str, str], batch: str) -> None:
        """Rules and knobs from ``settings``; nothing seen yet."""
        self.settings = settings
        self.user_map = user_map
        self.batch = batch
        self.rules: list[Rule] = [
            r
            for r in build_rules(settings.validation)
            if not r.table_level and r.failing is not None and r.name not in SKIPPED_RULES
        ]
        self.seen = _Seen()

    def prepare(self, index: int, source: Source, raw: RawChunk) -> Partition:
        """One chunk through ingest, validation and cleaning (see the module docstring)."""
        mask = self.settings.preprocess.mask_pii
        frame = canonical_frame(source.path, _with_rating(raw.df, self.user_map), self.user_map, raw.rows, mask)
        frame["source_row"] = frame["source_row"].astype("int64")
        malformed = malformed_frame(source.path, raw.malformed, mask) if raw.malformed else None
        kept, repeats, conflicts = self._collapse_repeats(frame)
        valid, quarantined, failures = quarantine_rows(kept, self._row_rules(kept, conflicts), malformed)
        clean, rejected, duplicates = self._clean(valid)
        quarantined = _concat([quarantined, rejected])
        quarantined = quarantined.assign(**{REASON: quarantined[REASON_COLUMN]}).reindex(columns=QUARANTINE_COLUMNS)
        duplicates = _concat([repeats, duplicates])
        duplicates = duplicates.assign(**{REASON: duplicates["duplicate_kind"]}).reindex(columns=DUPLICATE_COLUMNS)
        if len(rejected):
            failures[EMPTY_REASON] = len(rejected)
        clean = clean.reindex(columns=CLEAN_COLUMNS)
        part = Partition(index, raw.records, clean, quarantined, duplicates, self.batch, source.path.name, failures)
        if len(clean) + len(quarantined) + len(duplicates) != raw.records:
            raise AssertionError(f"partition {index}: rows lost ({len(clean)}+{len(quarantined)}+{len(duplicates)})")
        return part

    def _collapse_repeats(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        """``(kept, repeats, conflicts)``: exporter repeats split off (across chunks too).

        ``conflicts`` are positions in ``kept`` of rows whose review id an earlier chunk held with
        other content. Every kept row's id and (id, content) hash is remembered afterwards.
        """
        content = [c for c in frame.columns if c not in _WHERE_FROM]
        has_id = frame["review_id"].notna().to_numpy()
        row_hash = hash_rows(frame[content])
        earlier = has_id & self.seen.id_rows.contains(row_hash)
        old = frame.loc[earlier].assign(duplicate_kind=REPEAT_KIND, duplicate_of=None)
        kept, repeats = split_repeats(frame.loc[~earlier].reset_index(drop=True))
        kept_has_id = kept["review_id"].notna().to_numpy()
        id_hash = hash_strings(kept["review_id"].to_numpy(dtype=object)[kept_has_id])
        kept_rows = hash_rows(kept[content])[kept_has_id]
        conflicts = np.flatnonzero(kept_has_id)[self.seen.ids.contains(id_hash)]
        self.seen.ids.add(id_hash)
        self.seen.id_rows.add(kept_rows)
        return kept, _concat([old.reset_index(drop=True), repeats]), conflicts

    def _row_rules(self, kept: pd.DataFrame, conflicts: np.ndarray) -> dict[str, list[np.ndarray]]:
        """Failing row positions per rule (each rule's GX-semantics mask), cross-chunk conflicts added."""
        row_rules: dict[str, list[np.ndarray]] = {}
        for rule in self.rules:
            assert rule.failing is not None
            positions = np.flatnonzero(rule.failing(kept).to_numpy())
            if len(positions):
                row_rules.setdefault(rule.name, []).append(positions.astype(np.int64))
        if len(conflicts):
            row_rules.setdefault(CONFLICT_RULE, []).append(conflicts.astype(np.int64))
        return row_rules

    def _clean(self, valid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """``(clean, rejected, duplicates)`` of the valid rows: ``preprocess`` without labels, dedup across chunks."""
        cfg = self.settings.preprocess
        out = valid.reset_index(drop=True).copy()
        raw_text = out["text"].fillna("").astype(str)
        clean_columns(out, raw_text, cfg)
        empty = out["text"].str.len() == 0
        rejected = out[empty].assign(quarantine_reason=EMPTY_REASON)
        kept = out[~empty]
        dup_mask, kinds, dup_of = find_duplicates(kept, raw_text, cfg.dedup)
        if cfg.dedup and len(kept):
            self._dedup_across(kept, raw_text, dup_mask, kinds, dup_of)
        duplicates = kept[dup_mask].assign(duplicate_kind=kinds[dup_mask], duplicate_of=dup_of[dup_mask])
        return kept[~dup_mask].reset_index(drop=True), rejected.reset_index(drop=True), duplicates

    def _dedup_across(
        self, kept: pd.DataFrame, raw_text: pd.Series, dup_mask: pd.Series, kinds: pd.Series, dup_of: pd.Series
    ) -> None:
        """Mark (in place) rows whose exact or normalized key an earlier chunk held, then remember this chunk's keys.

        As in ``find_duplicates``, the exact key (the text as ingested) goes first; every earlier
        kept row's normalized key counts (an exact copy has its original's normalized key).
        """
        exact = hash_strings(raw_text[kept.index].to_numpy(dtype=object))
        normalized = hash_strings(kept["text"].map(dedup_key).to_numpy(dtype=object))
        exact_before = self.seen.exact.contains(exact)
        norm_before = self.seen.normalized.contains(normalized) & ~exact_before & (kinds != "exact").to_numpy()
        for hit, kind in ((exact_before, "exact"), (norm_before, "normalized")):
            idx = kept.index[hit]
            dup_mask.loc[idx] = True
            kinds.loc[idx] = kind
            dup_of.loc[idx] = None
        self.seen.exact.add(exact)
        self.seen.normalized.add(normalized)
