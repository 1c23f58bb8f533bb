"""Reading one review file in chunks of a fixed number of records, memory flat in the file's size.

The streaming twin of :func:`reviewops.data.readers.read_records`, with the same encodings, the
same cells and the same records set aside:

- Parquet: ``pyarrow.parquet.ParquetFile.iter_batches``, types as stored.
- CSV/TSV: pyarrow's streaming reader (``pyarrow.csv.open_csv``), every cell a string, while the
  file is well formed; at the first record whose field count differs from the header (or
  anything pyarrow refuses) the exact ``csv``-module reader
  (:func:`reviewops.data.readers.iter_checked_records`) takes over from the first record not yet
  handed out, so a ragged record is set aside as ``field_count_mismatch`` with its line number
  exactly as the whole-file reader does.
- JSONL: one line at a time; a first pass collects the keys of every record (and checks every
  line is a JSON object), so each chunk has the file's columns in the file's order.

Chunk ``k`` of a file holds its records ``k*chunk_rows+1 .. (k+1)*chunk_rows`` (well-formed and
set-aside records alike), whichever reader read them: the chunking depends on the file only.
:func:`open_source` checks a file before any chunk is read, so a bad file fails (one line naming
it) before anything is handed out. Nothing here writes to disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reviewops.data.readers import (
    checked_suffix,
    detect_encoding,
    file_error,
    iter_checked_records,
    iter_jsonl_records,
    unique_header,
)

# pyarrow reads CSV in blocks of this many bytes, and its streaming reader reads ~32 blocks ahead
# of the consumer in a background thread: 1 MiB blocks keep that at ~35 MB (16 MiB blocks held
# 500 MB). A field longer than a block sends the rest of the file to the exact reader.
_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class RawChunk:
    """Consecutive records of one file, as read (CSV cells as strings)."""

    df: pd.DataFrame  # the well-formed records
    rows: np.ndarray  # their 1-based record numbers in the file
    malformed: list[dict] = field(default_factory=list)  # records set aside (see readers.iter_checked_records)

    @property
    def records(self) -> int:
        """Records in the chunk, set-aside ones included."""
        return len(self.df) + len(self.malformed)


@dataclass(frozen=True)
class Source:
    """One checked input file: its kind, text encoding and source column names."""

    path: Path
    encoding: str | None
    columns: list[str]
    sparse: frozenset[str] = frozenset()  # JSONL keys some record lacks

    @property
    def kind(self) -> str:
        """``parquet``, ``csv``, ``tsv`` or ``jsonl``."""
        suffix = self.path.suffix.lower()
        return "jsonl" if suffix == ".ndjson" else suffix[1:]

    def chunks(self, chunk_rows: int) -> Iterator[RawChunk]:
        """The file's records in chunks of ``chunk_rows`` (the last one shorter)."""
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        if self.kind == "parquet":
            return _parquet_chunks(self.path, chunk_rows)
        if self.kind == "jsonl":
            return _jsonl_chunks(self.path, self.encoding or "utf-8", self.columns, self.sparse, chunk_rows)
        return _csv_chunks(self.path, "\t" if self.kind == "tsv" else ",", self.encoding or "utf-8", chunk_rows)


def open_source(path: Path, encoding: str | None = None) -> Source:
    """Check one file and read what chunking needs: encoding (detected over the whole file) and columns.

    Raises:
        ReviewOpsError: unsupported extension, missing file, undecodable text, malformed
            JSONL, an unreadable Parquet file, or a file without records.
    """
    path = Path(path)
    suffix = checked_suffix(path)
    if suffix == ".parquet":
        return Source(path, None, _parquet_columns(path))
    enc = detect_encoding(path, encoding)
    if suffix in (".csv", ".tsv"):
        return Source(path, enc, _delimited_columns(path, "\t" if suffix == ".tsv" else ",", enc))
    columns, sparse = _jsonl_columns(path, enc)
    return Source(path, enc, columns, sparse)


def _no_rows(path: Path) -> Exception:
    return file_error(path, "no rows (the file is empty or has only a header)")


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
        names = [str(n) for n in pq.read_schema(path).names]
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
        raise file_error(path, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if meta.num_rows == 0:
        raise _no_rows(path)
    return names


def _delimited_columns(path: Path, sep: str, encoding: str) -> list[str]:
    """The header's column names; the file must have a record after it."""
    records = iter_checked_records(path, sep, encoding)
    try:
        header = next(records, None)
        if header is None or next(records, None) is None:
            raise _no_rows(path)
    finally:
        records.close()
    return unique_header(header[1])


def _jsonl_columns(path: Path, encoding: str) -> tuple[list[str], frozenset[str]]:
    """Every key of every record, in order of first appearance (as ``DataFrame.from_records`` orders
    them), and the keys some record lacks."""
    seen: dict[str, int] = {}
    count = 0
    for record in iter_jsonl_records(path, encoding):
        count += 1
        for key in record:
            seen[key] = seen.get(key, 0) + 1
    if not count:
        raise _no_rows(path)
    return list(seen), frozenset(k for k, n in seen.items() if n < count)


# --------------------------------------------------------------------------------------
# Chunk makers


def _arrow_frames(batches: Iterator[Any], chunk_rows: int, first_row: int = 1) -> Iterator[tuple[pd.DataFrame, int]]:
    """Re-cut a stream of Arrow record batches into ``(frame, first record number)`` of ``chunk_rows`` rows."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).to_pandas(), first_row
            first_row += chunk_rows
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).to_pandas(), first_row


def _numbers(first: int, n: int) -> np.ndarray:
    return np.arange(first, first + n, dtype=np.int64)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[RawChunk]:
    import pyarrow.parquet as pq

    # pre_buffer keeps the byte ranges it read ahead: Arrow memory grows by ~10 MB per 100k rows.
    with pq.ParquetFile(path, pre_buffer=False) as pf:
        for df, first in _arrow_frames(pf.iter_batches(batch_size=chunk_rows), chunk_rows):
            yield RawChunk(df, _numbers(first, len(df)))


def _jsonl_frame(records: list[dict], columns: list[str], sparse: frozenset[str]) -> pd.DataFrame:
    """Records as the whole-file reader types them: a key some record of the file lacks holds NaN
    there, so its whole numbers are floats (``123`` reads ``"123.0"``) even in a chunk where none lacks it."""
    df = pd.DataFrame.from_records(records, columns=columns)
    for key in sparse:
        if pd.api.types.is_integer_dtype(df[key].dtype):
            df[key] = df[key].astype(float)
    return df


def _jsonl_chunks(
    path: Path, encoding: str, columns: list[str], sparse: frozenset[str], chunk_rows: int
) -> Iterator[RawChunk]:
    records: list[dict] = []
    first = 1
    for record in iter_jsonl_records(path, encoding):
        records.append(record)
        if len(records) == chunk_rows:
            yield RawChunk(_jsonl_frame(records, columns, sparse), _numbers(first, len(records)))
            first += len(records)
            records = []
    if records:
        yield RawChunk(_jsonl_frame(records, columns, sparse), _numbers(first, len(records)))


class _Ragged(Exception):
    """pyarrow met a record whose field count differs from the header."""


def _csv_chunks(path: Path, sep: str, encoding: str, chunk_rows: int) -> Iterator[RawChunk]:
    """pyarrow's streaming reader while the file is well formed, then the exact reader from where it stopped."""
    import pyarrow as pa

    handed_out = 0
    try:
        for df, first in _arrow_frames(_arrow_csv_batches(path, sep, encoding), chunk_rows):
            yield RawChunk(df.astype(object), _numbers(first, len(df)))
            handed_out += len(df)
        return
    except (_Ragged, pa.ArrowException, UnicodeDecodeError, ValueError):
        pass
    yield from _exact_csv_chunks(path, sep, encoding, chunk_rows, skip=handed_out)


def _arrow_csv_batches(path: Path, sep: str, encoding: str) -> Iterator[Any]:
    """Record batches of the file, every cell a string; raises :class:`_Ragged` at the first ragged record."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    records = iter_checked_records(path, sep, encoding)
    names = unique_header(next(records)[1])
    records.close()
    ragged: list[object] = []

    def on_invalid(row: object) -> str:
        ragged.append(row)
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding, column_names=names, skip_rows=1, block_size=_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    with reader:
        for batch in reader:
            if ragged:  # the batch that holds or follows it is not handed out
                raise _Ragged
            yield batch
    if ragged:
        raise _Ragged


def _exact_csv_chunks(path: Path, sep: str, encoding: str, chunk_rows: int, skip: int = 0) -> Iterator[RawChunk]:
    """Chunks from the ``csv``-module reader, starting after the first ``skip`` records."""
    records = iter_checked_records(path, sep, encoding)
    names = unique_header(next(records)[1])  # opened and checked by open_source: there is a header
    rows: list[list[str]] = []
    numbers: list[int] = []
    malformed: list[dict] = []

    def chunk() -> RawChunk:
        df = pd.DataFrame(rows, columns=names, dtype=object)
        return RawChunk(df, np.asarray(numbers, dtype=np.int64), list(malformed))

    for record, fields, bad in records:
        if record <= skip:
            continue
        if bad is None:
            rows.append(fields)
            numbers.append(record)
        else:
            malformed.append(bad)
        if len(rows) + len(malformed) == chunk_rows:
            yield chunk()
            rows, numbers, malformed = [], [], []
    if rows or malformed:
        yield chunk()
