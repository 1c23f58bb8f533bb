"""Reading one review file into string cells: encoding detection, CSV/TSV, JSONL and Parquet.

Text encodings are detected (BOM, UTF-8, UTF-16, GB18030) unless one is forced, each
candidate checked over the whole file. A CSV/TSV record whose field count differs from the
header is never shifted into other columns: it is set aside (:attr:`TableRead.malformed`)
with its record number and raw text. Bad *files* fail with a one-line
:class:`ReviewOpsError` naming the file. Mapping the columns read onto the canonical batch
is :mod:`reviewops.data.ingest`'s job. Nothing here writes to disk.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.errors import ReviewOpsError

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")


def file_error(path: Path, problem: str) -> ReviewOpsError:
    """A one-line error naming the file (embedded exception text may contain newlines)."""
    return ReviewOpsError(" ".join(f"{path}: {problem}".split()))


# --------------------------------------------------------------------------------------
# Encodings


_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK = 1 << 20
# GB18030 decodes many byte pairs that are really Latin-1 or cp1252 text ("naïve" -> "na" + a rare
# ideograph + "e"). Real Chinese text is almost all in the GB2312 subset; below this share of
# non-ASCII characters in GB2312 the file is not taken as GB18030.
_GB2312_MIN_SHARE = 0.8


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, int]:
    """(byte value, file offset) of the first byte that does not decode, or (0, -1) when all do."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # exc.start is relative to the decoder's buffer: pending bytes + this chunk.
                pending = len(exc.object) - len(chunk)
                return exc.object[exc.start], offset - pending + exc.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            pending = len(exc.object)
            return exc.object[exc.start], offset - pending + exc.start
    return 0, -1


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 LE/BE without a BOM: ASCII-heavy text then has a NUL in every other byte."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _looks_like_gb18030(path: Path) -> bool:
    """Most non-ASCII characters of the file's first MiB decode to the GB2312 subset."""
    with path.open("rb") as f:
        head = f.read(_CHUNK)
    text = head.decode("gb18030", errors="ignore")
    wide = [c for c in text if ord(c) > 127]
    if not wide:
        return False
    in_gb2312 = 0
    for c in wide:
        try:
            c.encode("gb2312")
            in_gb2312 += 1
        except UnicodeEncodeError:
            pass
    return in_gb2312 >= _GB2312_MIN_SHARE * len(wide)


def detect_encoding(path: Path, forced: str | None = None) -> str:
    """The text encoding of a file: ``forced`` if given, else BOM, UTF-8, UTF-16, GB18030.

    A strict cascade: each candidate must decode the *whole* file. UTF-8 is tried first (it
    rarely decodes anything else by accident); GB18030 (a superset of GBK and GB2312, what
    Chinese Excel and Windows write) only when the decoded text looks Chinese.

    Raises:
        ReviewOpsError: an unknown ``forced`` codec, a file that ``forced`` cannot decode, or
            one that none of the candidates decodes (naming the first bad byte).
    """
    path = Path(path)
    if forced and forced.lower() != "auto":
        try:
            name = codecs.lookup(forced).name
        except LookupError:
            raise ReviewOpsError(
                f"unknown encoding {forced!r}; use a Python codec name such as "
                f"utf-8, gb18030, utf-16, latin-1 or cp1252"
            ) from None
        byte, offset = _first_bad_byte(path, name)
        if offset >= 0:
            raise file_error(path, f"not valid {forced} text (byte 0x{byte:02x} at offset {offset}); check --encoding")
        return name
    with path.open("rb") as f:
        head = f.read(4096)
    for bom, name in _BOMS:
        if head.startswith(bom):
            byte, offset = _first_bad_byte(path, name)
            if offset >= 0:
                raise file_error(
                    path,
                    f"starts with a {name.upper()} byte-order mark but byte 0x{byte:02x} "
                    f"at offset {offset} is not {name.upper()}",
                )
            return name
    utf16 = _utf16_without_bom(head)
    if utf16 and _first_bad_byte(path, utf16)[1] < 0:
        return utf16
    byte, offset = _first_bad_byte(path, "utf-8")
    if offset < 0:
        return "utf-8"
    if _first_bad_byte(path, "gb18030")[1] < 0 and _looks_like_gb18030(path):
        return "gb18030"
    raise file_error(
        path,
        f"not UTF-8 text (byte 0x{byte:02x} at offset {offset}), nor UTF-16 or GB18030; "
        f"re-encode it as UTF-8 or name its encoding, e.g. --encoding latin-1",
    )


# --------------------------------------------------------------------------------------
# Reading


@dataclass
class TableRead:
    """One file as read: its records, the ones set aside, and the encoding used."""

    df: pd.DataFrame
    encoding: str | None = None
    malformed: list[dict] = field(default_factory=list)
    # 1-based record numbers of df's rows (records set aside keep their numbers, so a row's
    # number is its position in the file whatever else was malformed).
    record_numbers: np.ndarray | None = None


def iter_jsonl_records(path: Path, encoding: str) -> Iterator[dict]:
    """The objects of a JSON Lines file, one at a time (blank lines skipped).

    Raises:
        ReviewOpsError: a line that is not JSON, or not a JSON object, named by its number.
    """
    with path.open("r", encoding=encoding) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise file_error(path, f"invalid JSON on line {lineno} ({exc.msg}, column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise file_error(path, f"line {lineno} is a JSON {type(obj).__name__}, expected an object")
            yield obj


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    records = list(iter_jsonl_records(path, encoding))
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def unique_header(header: list[str]) -> list[str]:
    """Repeated column names get ``.1``, ``.2`` suffixes (as pandas names them)."""
    seen: dict[str, int] = {}
    out = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return out


def _read_header(path: Path, sep: str, encoding: str) -> list[str] | None:
    """The header record, or None for an empty file; [] when blank lines come before it."""
    csv.field_size_limit(sys.maxsize)  # one review may be megabytes; the default cap is 128 KiB
    with path.open("r", encoding=encoding, newline="") as f:
        try:
            return next(csv.reader(f, delimiter=sep), None)
        except csv.Error as exc:
            raise file_error(path, f"malformed {path.suffix[1:].upper()} header ({exc})") from None


def _read_with_arrow(path: Path, sep: str, encoding: str, header: list[str]) -> TableRead | None:
    """Fast path: pyarrow's multi-threaded CSV reader, every cell a string.

    Returns None, so the exact reader takes over, as soon as any record's field count differs
    from the header (pyarrow cannot always say which record that was when reading in
    parallel) or pyarrow refuses the file for any reason (a field larger than its block, ...).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = unique_header(header)
    ragged: list[object] = []

    def on_invalid(row: object) -> str:
        ragged.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding, column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    if ragged:
        return None
    df = table.to_pandas().astype(object)
    return TableRead(df, encoding, [], np.arange(1, len(df) + 1, dtype=np.int64))


def iter_checked_records(
    path: Path, sep: str, encoding: str
) -> Generator[tuple[int, list[str], dict | None], None, None]:
    """The exact reader, one record at a time: the ``csv`` module, field counts checked.

    Yields ``(0, header, None)`` first (nothing for an empty file; blank lines before the
    header are skipped), then ``(record number, fields, None)`` for each record with the
    header's field count and ``(record number, fields, malformed)`` for the others, where
    ``malformed`` is the set-aside record (``source_row``, ``raw_record``, ``quarantine_detail``).
    Blank lines are skipped and not numbered.
    """
    with path.open("r", encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        try:
            header = next(reader, None)
            while header is not None and not header:
                header = next(reader, None)
            if header is None:
                return
            yield 0, header, None
            width = len(header)
            record, line = 0, reader.line_num
            for fields in reader:
                start, line = line + 1, reader.line_num
                if not fields:
                    continue
                record += 1
                if len(fields) == width:
                    yield record, fields, None
                else:
                    detail = (
                        f"line {start}: {len(fields)} fields where the header has "
                        f"{width} (an unquoted {sep!r} inside a value?)"
                    )
                    yield (
                        record,
                        fields,
                        {"source_row": record, "raw_record": sep.join(fields), "quarantine_detail": detail},
                    )
        except csv.Error as exc:
            raise file_error(path, f"malformed {path.suffix[1:].upper()} near line {reader.line_num} ({exc})") from None


def _read_checked(path: Path, sep: str, encoding: str) -> TableRead:
    """The exact reader over a whole file (see :func:`iter_checked_records`)."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    malformed: list[dict] = []
    records = iter_checked_records(path, sep, encoding)
    first = next(records, None)
    if first is None:
        return TableRead(pd.DataFrame(), encoding)
    for record, fields, bad in records:
        if bad is None:
            rows.append(fields)
            numbers.append(record)
        else:
            malformed.append(bad)
    df = pd.DataFrame(rows, columns=unique_header(first[1]), dtype=object)
    return TableRead(df, encoding, malformed, np.asarray(numbers, dtype=np.int64))


def _read_delimited(path: Path, sep: str, encoding: str) -> TableRead:
    """Read CSV/TSV records as strings, checking each record's field count against the header.

    pandas silently turns the first column into the index when every row has one field more
    than the header (an unquoted comma in the text), shifting every value one column left.
    Here a record with another field count than the header is set aside with its line number
    and raw text; the others are read as strings (empty cells stay ``""``). Blank lines are
    skipped, as pandas does. A well-formed file takes pyarrow's fast reader; any doubt sends
    the file through the ``csv`` module, which numbers every record exactly.
    """
    header = _read_header(path, sep, encoding)
    if header is None:
        return TableRead(pd.DataFrame(), encoding)
    if header:  # blank lines before the header: let the exact reader skip them
        fast = _read_with_arrow(path, sep, encoding, header)
        if fast is not None:
            return fast
    return _read_checked(path, sep, encoding)


def checked_suffix(path: Path) -> str:
    """The file's lower-case extension, once it is a supported type and the file exists.

    Raises:
        ReviewOpsError: unsupported extension or missing file (one line naming the file).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise file_error(
            path, f"unsupported file type {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise file_error(path, "file not found")
    return suffix


def read_records(path: Path, encoding: str | None = None) -> TableRead:
    """Read one file: CSV/TSV cells as strings, JSONL and Parquet with the types they carry.

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or ``.parquet`` file.
        encoding: a codec name to force, or None/``auto`` to detect (see :func:`detect_encoding`).

    Raises:
        ReviewOpsError: unsupported extension, missing file, undecodable text, malformed content.
    """
    path = Path(path)
    suffix = checked_suffix(path)
    try:
        if suffix == ".parquet":
            try:
                return TableRead(pd.read_parquet(path))
            except Exception as exc:  # pyarrow raises several unrelated types for a bad file
                raise file_error(path, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        enc = detect_encoding(path, encoding)
        if suffix in (".csv", ".tsv"):
            return _read_delimited(path, "\t" if suffix == ".tsv" else ",", enc)
        return TableRead(_read_jsonl(path, enc), enc)
    except MemoryError:
        raise file_error(path, "too large to load into memory; split it into smaller files") from None


def read_table(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """The well-formed records of one file as a DataFrame (see :func:`read_records`)."""
    return read_records(path, encoding).df
