"""The scored dataset on disk: its layout, its Parquet schema, atomic writes and the reader.

Layout under the output folder (Hive-style, one folder per batch; the batch is the input's
file name or ``--batch``)::

    <out>/batch=<batch>/part-00000.parquet     scored rows of partition 0 (SCORED_SCHEMA)
    <out>/batch=<batch>/_manifest.json         what the parts were made from (input, models, knobs)
    <out>/_quarantine/batch=<batch>/part-00000.parquet   rejected rows + ``reason`` (owner-only)
    <out>/_duplicates/batch=<batch>/part-00000.parquet   duplicates + ``reason``
    <out>/_reports/<batch>.json                the run's report (counts, models, throughput)
    <out>/_staging/<batch>/part-00000.parquet  cleaned rows waiting for the models (removed when scored)

Every file is written beside its final name and renamed into place, so a killed run leaves
either a whole part or none, and a rerun can trust any part it finds.
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from reviewops.errors import ReviewOpsError
from reviewops.scoring.predictor import SCORED_COLUMNS

# A bound of the time filter: an ISO date/time string, a datetime or a pandas Timestamp (a datetime).
TimeBound: TypeAlias = str | datetime | None

_TYPES = {
    "review_id": pa.string(),
    "product_id": pa.string(),
    "batch": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "rating": pa.float64(),
    "text": pa.string(),
    "language": pa.string(),
    "sentiment": pa.string(),
    "p_negative": pa.float32(),
    "p_neutral": pa.float32(),
    "p_positive": pa.float32(),
    "summary": pa.string(),
    "summary_contradicts": pa.bool_(),
    "sentiment_model": pa.string(),
    "summarizer_model": pa.string(),
    "sentiment_version": pa.string(),
    "summarizer_version": pa.string(),
    "scored_at": pa.timestamp("us", tz="UTC"),
}
SCORED_SCHEMA = pa.schema([(name, _TYPES[name]) for name in SCORED_COLUMNS])
# summary_contradicts is None where a row has no summary: read it as pandas' nullable boolean, so
# a read with and without nulls (a filtered one) gives the same dtype.
_NULLABLE_BOOL = {pa.bool_(): pd.BooleanDtype()}.get


def batch_dir(out_dir: Path | str, batch: str) -> Path:
    """``<out>/batch=<batch>``: the scored parts of one batch."""
    return Path(out_dir) / f"batch={batch}"


def part_name(index: int) -> str:
    """``part-00042.parquet``."""
    return f"part-{index:05d}.parquet"


def part_path(out_dir: Path | str, batch: str, index: int) -> Path:
    """The scored part of partition ``index``."""
    return batch_dir(out_dir, batch) / part_name(index)


def side_path(out_dir: Path | str, kind: str, batch: str, index: int) -> Path:
    """A partition's ``_quarantine`` or ``_duplicates`` part (``kind`` without the underscore)."""
    return Path(out_dir) / f"_{kind}" / f"batch={batch}" / part_name(index)


def staging_path(out_dir: Path | str, batch: str, index: int) -> Path:
    """Where a partition's cleaned rows wait for the actor pool (no ``=`` in the path: no Hive column)."""
    return Path(out_dir) / "_staging" / batch / part_name(index)


def manifest_path(out_dir: Path | str, batch: str) -> Path:
    """``<out>/batch=<batch>/_manifest.json``."""
    return batch_dir(out_dir, batch) / "_manifest.json"


def report_path(out_dir: Path | str, batch: str) -> Path:
    """``<out>/_reports/<batch>.json``."""
    return Path(out_dir) / "_reports" / f"{batch}.json"


def scored_table(frame: pd.DataFrame) -> pa.Table:
    """The scored rows as an Arrow table of :data:`SCORED_SCHEMA` (columns in order, types fixed)."""
    table = pa.Table.from_pandas(frame[SCORED_COLUMNS], preserve_index=False)
    return table.cast(SCORED_SCHEMA)


def write_parquet_atomic(data: pd.DataFrame | pa.Table, path: Path, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    ``private``: owner-only folder and file (0700 / 0600), for rows kept to be fixed by their
    owner (quarantine), as the batch path writes them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    pq.write_table(table, tmp)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def list_batches(out_dir: Path | str) -> list[str]:
    """The batches with a folder under ``out_dir``, sorted by name."""
    root = Path(out_dir)
    if not root.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.glob("batch=*") if p.is_dir())


def scored_parts(out_dir: Path | str, batch: str | Sequence[str] | None = None) -> list[Path]:
    """The scored part files of the given batches (all when None), batches by name, parts in order.

    The batch filter is a folder choice: other batches' files are never opened.
    """
    names = list_batches(out_dir) if batch is None else [batch] if isinstance(batch, str) else list(batch)
    return [part for name in names for part in sorted(batch_dir(out_dir, name).glob("part-*.parquet"))]


def _utc_bound(value: TimeBound, name: str) -> pa.Scalar:
    """``value`` as a UTC timestamp scalar of the ``timestamp`` column's type (a naive time is UTC)."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ReviewOpsError(f"{name}={value!r} is not a date or time (e.g. 2025-01-31 or 2025-01-31T12:00Z)") from None
    if pd.isna(stamp):
        raise ReviewOpsError(f"{name}={value!r} is not a date or time (e.g. 2025-01-31 or 2025-01-31T12:00Z)")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pa.scalar(stamp.to_pydatetime(), type=_TYPES["timestamp"])


def _product_ids(product_id: str | Sequence[str] | None) -> list[str] | None:
    return None if product_id is None else [product_id] if isinstance(product_id, str) else [str(p) for p in product_id]


def scored_filter(
    product_id: str | Sequence[str] | None = None, start: TimeBound = None, end: TimeBound = None
) -> pc.Expression | None:
    """The row filter on the scored rows: these products, and ``start <= timestamp < end`` (None: no filter).

    A time bound drops the rows without a timestamp.
    """
    terms: list[pc.Expression] = []
    ids = _product_ids(product_id)
    if ids is not None:
        terms.append(pc.field("product_id") == ids[0] if len(ids) == 1 else pc.field("product_id").isin(ids))
    if start is not None:
        terms.append(pc.field("timestamp") >= _utc_bound(start, "start"))
    if end is not None:
        terms.append(pc.field("timestamp") < _utc_bound(end, "end"))
    return functools.reduce(operator.and_, terms) if terms else None


def _may_match(stats: dict[str, Any], ids: list[str] | None, start: datetime | None, end: datetime | None) -> bool:
    """Whether a row group whose min/max statistics are ``stats`` can hold a matching row.

    Min/max cover the non-null values, and the filter drops nulls, so a row group with some
    null ids or times is judged by the rest (pyarrow's own row-group test keeps any row group
    with a null). A column without statistics never rules a row group out.
    """
    pid, ts = stats.get("product_id") or {}, stats.get("timestamp") or {}
    if ids is not None and pid.get("min") is not None and not any(pid["min"] <= i <= pid["max"] for i in ids):
        return False
    if ts.get("min") is not None:
        if start is not None and ts["max"] < start:
            return False
        if end is not None and ts["min"] >= end:
            return False
    return True


def scored_row_groups(
    out_dir: Path | str,
    batch: str | Sequence[str] | None = None,
    *,
    product_id: str | Sequence[str] | None = None,
    start: TimeBound = None,
    end: TimeBound = None,
) -> list[ds.ParquetFileFragment]:
    """The scored parts, each cut to the row groups that may hold matching rows, in order.

    Without a product or time filter: every part, whole. With one, only the footers are read
    to decide: a row group whose ``product_id`` / ``timestamp`` min/max cannot match is left
    out and never read, and a part with no such row group is dropped.
    """
    parts = scored_parts(out_dir, batch)
    if not parts:
        return []
    dataset = ds.dataset([str(p) for p in parts], schema=SCORED_SCHEMA, format="parquet")
    fragments: list[ds.ParquetFileFragment] = list(dataset.get_fragments())
    ids = _product_ids(product_id)
    lo = None if start is None else _utc_bound(start, "start").as_py()
    hi = None if end is None else _utc_bound(end, "end").as_py()
    if ids is None and lo is None and hi is None:
        return fragments
    kept = []
    for fragment in fragments:
        fragment.ensure_complete_metadata()
        groups = [g.id for g in fragment.row_groups if _may_match(g.statistics or {}, ids, lo, hi)]
        if groups:
            kept.append(fragment.subset(row_group_ids=groups))
    return kept


def read_scored(
    out_dir: Path | str,
    batch: str | Sequence[str] | None = None,
    *,
    product_id: str | Sequence[str] | None = None,
    start: TimeBound = None,
    end: TimeBound = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The scored rows of one batch, several, or every batch (None), parts in order; an empty typed frame when none.

    Every filter is applied while reading, not on a loaded frame: ``batch`` picks folders,
    ``product_id`` (one id or several) and the time range ``start <= timestamp < end`` (a naive
    time is UTC; a bound drops rows without a timestamp) skip row groups by their statistics
    (:func:`scored_row_groups`) and filter the rest batch by batch, and ``columns`` decodes only
    those columns. Memory holds the matching rows, not the dataset. Parts are read with
    :data:`SCORED_SCHEMA` (the ``batch`` column is in the files; none is derived from the folder
    names).

    Raises:
        ReviewOpsError: a column not in :data:`SCORED_SCHEMA`, or a bound that is not a time.
    """
    wanted = list(columns) if columns is not None else list(SCORED_SCHEMA.names)
    unknown = [c for c in wanted if c not in SCORED_SCHEMA.names]
    if unknown:
        raise ReviewOpsError(f"unknown scored column(s) {unknown}; the scored dataset has {SCORED_SCHEMA.names}")
    expr = scored_filter(product_id, start, end)
    groups = scored_row_groups(out_dir, batch, product_id=product_id, start=start, end=end)
    if not groups:
        return SCORED_SCHEMA.empty_table().select(wanted).to_pandas(types_mapper=_NULLABLE_BOOL)
    dataset = ds.FileSystemDataset(groups, schema=SCORED_SCHEMA, format=ds.ParquetFileFormat())
    return dataset.to_table(columns=wanted, filter=expr).to_pandas(types_mapper=_NULLABLE_BOOL)
