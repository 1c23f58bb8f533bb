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

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reviewops.scoring.predictor import SCORED_COLUMNS

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
    "sentiment_model": pa.string(),
    "summarizer_model": pa.string(),
    "sentiment_version": pa.string(),
    "summarizer_version": pa.string(),
    "scored_at": pa.timestamp("us", tz="UTC"),
}
SCORED_SCHEMA = pa.schema([(name, _TYPES[name]) for name in SCORED_COLUMNS])


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


def read_scored(out_dir: Path | str, batch: str | None = None) -> pd.DataFrame:
    """The scored rows of one batch (or of every batch), parts in order; empty frame when there are none.

    Parts are read one by one with their own schema (the ``batch`` column is in the files;
    no Hive partition column is derived from the folder names).
    """
    batches = [batch] if batch is not None else list_batches(out_dir)
    tables = [
        pq.read_table(part, schema=SCORED_SCHEMA, partitioning=None)
        for name in batches
        for part in sorted(batch_dir(out_dir, name).glob("part-*.parquet"))
    ]
    if not tables:
        return SCORED_SCHEMA.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas()
