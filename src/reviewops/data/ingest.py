"""Read user review files (CSV/TSV, JSONL, Parquet; one file or a directory) into the canonical batch.

Column mapping: a canonical column is taken from the source column of the same name (exact,
else case-insensitive) unless the user maps it (``text=Text,rating=Score``). ``text`` and
``rating`` must resolve; the rest have defaults (see :func:`ingest`). Values are normalized
only as far as the contract in docs/CONTRACTS.md says; deciding that a row is bad is
validation's job, so unparseable ratings become NaN with the cell kept in ``rating_raw``, and
unparseable timestamps keep their original string. Text encodings are detected (BOM, UTF-8,
UTF-16, GB18030) unless one is forced. A CSV record whose field count differs from the header
is never shifted into other columns: it is set aside in :attr:`IngestResult.malformed` for the
quarantine. Bad *files* fail with a one-line :class:`ReviewOpsError` naming the file.
Emails, phone numbers and URLs in ``text`` and ``summary`` are masked here, before anything
downstream can write them (``mask_pii=False`` reads them as they are). Nothing here writes to disk.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.schema import CANONICAL_COLUMNS
from reviewops.text import detect_language

MAPPABLE_COLUMNS = [*CANONICAL_COLUMNS, "category"]
# ``rating_raw``: the rating cell as written when it could not be read as a number (else None).
OUTPUT_COLUMNS = [*CANONICAL_COLUMNS, "category", "rating_raw", "source_file", "source_row"]
# Records set aside before mapping (see :func:`read_records`): they go straight to the quarantine.
MALFORMED_COLUMNS = ["source_file", "source_row", "raw_record", "quarantine_reason", "quarantine_detail"]
FIELD_COUNT_REASON = "field_count_mismatch"
REQUIRED_SOURCE_COLUMNS = ["text", "rating"]
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")
_TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Epoch values beyond these are not seconds (or not dates at all): >= 1e11 s is past year 5000,
# so values in [1e11, 1e14) are read as milliseconds and anything larger stays a string.
_MAX_EPOCH_S = 1e11
_MAX_EPOCH_MS = 1e14
_DETECT_CHARS = 2000


@dataclass
class IngestResult:
    """A canonical batch and where its rows came from."""

    df: pd.DataFrame
    files: list[str] = field(default_factory=list)
    rows: int = 0  # records read: len(df) + len(malformed)
    per_file: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MALFORMED_COLUMNS))


def _fail(path: Path, problem: str) -> ReviewOpsError:
    """A one-line error naming the file (embedded exception text may contain newlines)."""
    return ReviewOpsError(" ".join(f"{path}: {problem}".split()))


def parse_column_map(spec: str | None) -> dict[str, str]:
    """Parse ``"text=Text,summary=Summary,rating=Score"`` into ``{canonical: source column}``.

    Source column names may contain spaces but not ``,`` or ``=``.

    Raises:
        ReviewOpsError: an item is not ``name=column``, a canonical name is unknown or repeated.
    """
    mapping: dict[str, str] = {}
    if not spec or not spec.strip():
        return mapping
    for item in spec.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ReviewOpsError(
                f"column mapping item {item.strip()!r} must look like canonical=SourceColumn "
                f"(e.g. text=Text,rating=Score)"
            )
        key, source = (part.strip() for part in item.split("=", 1))
        if key not in MAPPABLE_COLUMNS:
            raise ReviewOpsError(f"column mapping: unknown column {key!r}; valid names: {', '.join(MAPPABLE_COLUMNS)}")
        if not source:
            raise ReviewOpsError(f"column mapping: {key}= names no source column")
        if key in mapping:
            raise ReviewOpsError(f"column mapping: {key!r} is mapped twice")
        mapping[key] = source
    return mapping


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
            raise _fail(path, f"not valid {forced} text (byte 0x{byte:02x} at offset {offset}); check --encoding")
        return name
    with path.open("rb") as f:
        head = f.read(4096)
    for bom, name in _BOMS:
        if head.startswith(bom):
            byte, offset = _first_bad_byte(path, name)
            if offset >= 0:
                raise _fail(
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
    raise _fail(
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


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    records = []
    with path.open("r", encoding=encoding) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _fail(path, f"invalid JSON on line {lineno} ({exc.msg}, column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise _fail(path, f"line {lineno} is a JSON {type(obj).__name__}, expected an object")
            records.append(obj)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _unique_header(header: list[str]) -> list[str]:
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
            raise _fail(path, f"malformed {path.suffix[1:].upper()} header ({exc})") from None


def _read_with_arrow(path: Path, sep: str, encoding: str, header: list[str]) -> TableRead | None:
    """Fast path: pyarrow's multi-threaded CSV reader, every cell a string.

    Returns None, so the exact reader takes over, as soon as any record's field count differs
    from the header (pyarrow cannot always say which record that was when reading in
    parallel) or pyarrow refuses the file for any reason (a field larger than its block, ...).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = _unique_header(header)
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


def _read_checked(path: Path, sep: str, encoding: str) -> TableRead:
    """The exact reader: the ``csv`` module, one record at a time, field counts checked."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    malformed: list[dict] = []
    with path.open("r", encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        try:
            header = next(reader, None)
            while header is not None and not header:
                header = next(reader, None)
            if header is None:
                return TableRead(pd.DataFrame(), encoding)
            width = len(header)
            record, line = 0, reader.line_num
            for fields in reader:
                start, line = line + 1, reader.line_num
                if not fields:
                    continue
                record += 1
                if len(fields) == width:
                    rows.append(fields)
                    numbers.append(record)
                else:
                    malformed.append(
                        {
                            "source_row": record,
                            "raw_record": sep.join(fields),
                            "quarantine_detail": f"line {start}: {len(fields)} fields where the header has "
                            f"{width} (an unquoted {sep!r} inside a value?)",
                        }
                    )
        except csv.Error as exc:
            raise _fail(path, f"malformed {path.suffix[1:].upper()} near line {reader.line_num} ({exc})") from None
    df = pd.DataFrame(rows, columns=_unique_header(header), dtype=object)
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


def read_records(path: Path, encoding: str | None = None) -> TableRead:
    """Read one file: CSV/TSV cells as strings, JSONL and Parquet with the types they carry.

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or ``.parquet`` file.
        encoding: a codec name to force, or None/``auto`` to detect (see :func:`detect_encoding`).

    Raises:
        ReviewOpsError: unsupported extension, missing file, undecodable text, malformed content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _fail(
            path, f"unsupported file type {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        if suffix == ".parquet":
            try:
                return TableRead(pd.read_parquet(path))
            except Exception as exc:  # pyarrow raises several unrelated types for a bad file
                raise _fail(path, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        enc = detect_encoding(path, encoding)
        if suffix in (".csv", ".tsv"):
            return _read_delimited(path, "\t" if suffix == ".tsv" else ",", enc)
        return TableRead(_read_jsonl(path, enc), enc)
    except MemoryError:
        raise _fail(path, "too large to load into memory; split it into smaller files") from None


def read_table(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """The well-formed records of one file as a DataFrame (see :func:`read_records`)."""
    return read_records(path, encoding).df


def _guess_delimiter(columns: list[str]) -> str | None:
    if len(columns) != 1:
        return None
    header = str(columns[0])
    for delim in (";", "\t", "|"):
        if delim in header:
            return delim
    return None


def _resolve_columns(path: Path, df: pd.DataFrame, user_map: dict[str, str]) -> dict[str, str]:
    """Map canonical names to source columns: identity (exact, then case-insensitive), then user map."""
    available = [str(c) for c in df.columns]
    lower: dict[str, list[str]] = {}
    for col in available:
        lower.setdefault(col.lower(), []).append(col)
    mapping: dict[str, str] = {}
    for name in MAPPABLE_COLUMNS:
        if name in available:
            mapping[name] = name
        elif len(lower.get(name, [])) == 1:
            mapping[name] = lower[name][0]
    delim = _guess_delimiter(available)
    missing_mapped = [src for src in user_map.values() if src not in available]
    if missing_mapped:
        hint = f"; the delimiter looks like {delim!r}, not ','" if delim else ""
        raise _fail(
            path,
            f"mapped column(s) {', '.join(map(repr, missing_mapped))} not found; "
            f"available columns: {', '.join(map(repr, available))}{hint}",
        )
    mapping.update(user_map)
    unresolved = [name for name in REQUIRED_SOURCE_COLUMNS if name not in mapping]
    if unresolved:
        if delim:
            raise _fail(
                path,
                f"columns {', '.join(unresolved)} not found: only one column was read and "
                f"the delimiter looks like {delim!r}; save the file comma-separated "
                f"(or tab-separated as .tsv)",
            )
        raise _fail(
            path,
            f"no column for {', '.join(unresolved)}; available columns: "
            f"{', '.join(map(repr, available))}; map them with e.g. "
            f"--columns text=<column>,rating=<column>",
        )
    return mapping


def _as_str(series: pd.Series, missing: str | None, blank_is_missing: bool = False) -> pd.Series:
    """Cells as ``str``; None/NaN (and whitespace-only cells when asked) become ``missing``."""
    out = []
    for v in series.to_numpy(dtype=object):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(missing)
        else:
            v = str(v)
            out.append(missing if blank_is_missing and not v.strip() else v)
    return pd.Series(out, index=series.index, dtype=object)


_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
}
# "4", "4.5", "4,5" (decimal comma: one or two digits after it, so "1,000" is not 1.0), "+4",
# then an optional unit: "stars", "star", "/5", "out of 5", "of 5", "星", "颗星", "分".
_RATING_FORM = re.compile(
    r"^(?P<num>[+]?\d+(?:[.,]\d{1,2})?|zero|one|two|three|four|five|[零一二两三四五])\s*"
    r"(?:stars?|/\s*5|out\s+of\s+5|of\s+5|颗星|星|分)?$"
)
_STAR_GLYPHS = re.compile(r"^[★☆\s]+$")


def parse_rating(value: object) -> float | None:
    """One rating cell as a number, or None when it is not an obvious rating form.

    Reads plain numbers, a decimal comma (``4,5``), a unit (``5 stars``, ``4/5``, ``4 out of 5``,
    ``5星``, ``五星``), number words one to five and star glyphs (``★★★★☆`` is 4). Anything else
    (``great``, ``8/10``, ``N/A``) is left to validation, with the cell kept as written.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    text = str(value).strip().lower()
    if not text:
        return None
    if _STAR_GLYPHS.match(text):
        return float(text.count("★"))
    match = _RATING_FORM.match(text)
    if not match:
        return None
    num = match.group("num")
    if num in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[num])
    return float(num.replace(",", "."))


def parse_ratings(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Ratings as floats (NaN when missing or unreadable) and the unreadable cells as written.

    Returns:
        ``(rating, rating_raw)``: ``rating_raw`` holds the original cell (as a string) only
        where the cell was not blank and :func:`parse_rating` could not read it, else None,
        so validation can name the real reason and the quarantine keeps what the user wrote.
    """
    rating = pd.to_numeric(raw, errors="coerce").astype(float)
    raw_out = pd.Series([None] * len(raw), index=raw.index, dtype=object)
    todo = rating.isna()
    if todo.any():
        cells = raw[todo]
        parsed, kept = [], []
        for v in cells.to_numpy(dtype=object):
            number = parse_rating(v)
            parsed.append(np.nan if number is None else number)
            blank = v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip()
            kept.append(None if number is not None or blank else str(v))
        rating[todo] = parsed
        raw_out[todo] = kept
    return rating, raw_out


def normalize_timestamps(raw: pd.Series) -> pd.Series:
    """Format timestamps as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); keep unparseable values as given.

    Numbers are epoch seconds (milliseconds when >= 1e11); strings are parsed by pandas,
    ISO-8601 first (fast), then any format it recognizes. Naive times are taken as UTC.
    Missing and blank cells become None: a review without a time is still a review.
    """
    text = _as_str(raw, "")
    stripped = text.str.strip()
    out = text.copy().astype(object)
    out[stripped == ""] = None
    number = pd.to_numeric(stripped, errors="coerce")
    seconds = number.where(number.abs() < _MAX_EPOCH_S, number / 1000)
    is_epoch = number.notna() & (number.abs() < _MAX_EPOCH_MS)
    if is_epoch.any():
        stamps = pd.to_datetime(seconds[is_epoch], unit="s", utc=True, errors="coerce")
        ok = stamps.notna()
        out[stamps.index[ok]] = stamps[ok].dt.strftime(_TS_FORMAT)
    todo = ~is_epoch & number.isna() & (stripped != "")
    if todo.any():
        parsed = pd.to_datetime(stripped[todo], utc=True, errors="coerce", format="ISO8601")
        retry = parsed.isna()
        if retry.any():
            parsed[retry] = pd.to_datetime(stripped[todo][retry], utc=True, errors="coerce", format="mixed")
        ok = parsed.notna()
        out[parsed.index[ok]] = parsed[ok].dt.strftime(_TS_FORMAT)
    return out


def _masked(values: pd.Series, mask: bool) -> pd.Series:
    if not mask:
        return values
    from reviewops.data.clean import mask_pii

    return pd.Series(
        [v if v is None else mask_pii(v) for v in values.to_numpy(dtype=object)], index=values.index, dtype=object
    )


def _canonical(
    path: Path, df: pd.DataFrame, user_map: dict[str, str], rows: np.ndarray | None = None, mask: bool = True
) -> pd.DataFrame:
    mapping = _resolve_columns(path, df, user_map)
    n = len(df)
    name = path.name
    rows = np.arange(1, n + 1) if rows is None else rows
    df = df.reset_index(drop=True)
    out = pd.DataFrame(index=df.index)

    if "review_id" in mapping:
        out["review_id"] = _as_str(df[mapping["review_id"]], None, blank_is_missing=True)
    else:
        out["review_id"] = [f"r-{hashlib.sha1(f'{name}:{r}'.encode()).hexdigest()[:12]}" for r in rows]
    out["product_id"] = _as_str(df[mapping["product_id"]], "unknown") if "product_id" in mapping else "unknown"
    out["text"] = _masked(_as_str(df[mapping["text"]], ""), mask)
    if "summary" in mapping:
        # CSV cannot tell "no title" from "", so an empty title is no title.
        out["summary"] = _masked(_as_str(df[mapping["summary"]], None, blank_is_missing=True), mask)
    else:
        out["summary"] = None
    out["rating"], rating_raw = parse_ratings(df[mapping["rating"]])
    out["timestamp"] = normalize_timestamps(df[mapping["timestamp"]]) if "timestamp" in mapping else None
    if "language" in mapping:
        lang = _as_str(df[mapping["language"]], "").str.strip().str.lower()
    else:
        lang = pd.Series("", index=df.index, dtype=object)
    blank = lang == ""
    if blank.any():
        # The opening characters decide; scanning a 100 MB body would take seconds for nothing.
        lang[blank] = [detect_language(t[:_DETECT_CHARS]) for t in out["text"][blank]]
    out["language"] = lang
    if "category" in mapping:
        out["category"] = _as_str(df[mapping["category"]], None, blank_is_missing=True)
    else:
        out["category"] = None
    out["rating_raw"] = rating_raw
    out["source_file"] = name
    out["source_row"] = rows
    return out[OUTPUT_COLUMNS]


def _malformed_frame(path: Path, records: list[dict], mask: bool) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["source_row", "raw_record", "quarantine_detail"])
    frame["raw_record"] = _masked(frame["raw_record"].astype(object), mask)
    frame["source_file"] = path.name
    frame["quarantine_reason"] = FIELD_COUNT_REASON
    return frame[MALFORMED_COLUMNS]


def _list_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            (
                p
                for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
            ),
            key=lambda p: p.name,
        )
        if not files:
            raise _fail(path, f"directory has no {', '.join(SUPPORTED_SUFFIXES)} files")
        return files
    if not path.exists():
        raise _fail(path, "file or directory not found")
    return [path]


def ingest(
    path: Path, columns: dict[str, str] | None = None, *, encoding: str | None = None, mask_pii: bool = True
) -> IngestResult:
    """Read a file, or every supported file in a directory (sorted by name, not recursive).

    Defaults for unmapped columns: ``review_id`` -> ``r-<sha1("<file name>:<row>")[:12]>``,
    ``product_id`` -> ``"unknown"``, ``summary``/``category``/``timestamp`` -> None,
    ``language`` -> :func:`reviewops.text.detect_language` of the first 2,000 characters of the
    text (also for blank cells). ``text`` and ``rating`` must exist.

    Args:
        path: a file or a directory.
        columns: ``{canonical name: source column}`` overriding the identity mapping.
        encoding: force a text encoding for CSV/TSV/JSONL (default: detect per file).
        mask_pii: mask emails, phone numbers and URLs in ``text`` and ``summary`` (and in the raw
            text of malformed records), so no later stage can store them.

    Returns:
        The canonical batch (columns :data:`OUTPUT_COLUMNS`), per-file record counts and
        encodings, and the records set aside as malformed (:data:`MALFORMED_COLUMNS`).

    Raises:
        ReviewOpsError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    user_map = dict(columns or {})
    unknown = [k for k in user_map if k not in MAPPABLE_COLUMNS]
    if unknown:
        raise ReviewOpsError(
            f"column mapping: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(MAPPABLE_COLUMNS)}"
        )
    frames, bad = [], []
    per_file: dict[str, int] = {}
    encodings: dict[str, str] = {}
    files = _list_files(path)
    for file in files:
        table = read_records(file, encoding)
        records = len(table.df) + len(table.malformed)
        if records == 0:
            raise _fail(file, "no rows (the file is empty or has only a header)")
        if len(table.df.columns) or len(table.df):
            frames.append(_canonical(file, table.df, user_map, table.record_numbers, mask_pii))
        if table.malformed:
            bad.append(_malformed_frame(file, table.malformed, mask_pii))
        per_file[file.name] = records
        if table.encoding:
            encodings[file.name] = table.encoding
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df["source_row"] = df["source_row"].astype("int64")
    malformed = pd.concat(bad, ignore_index=True) if bad else pd.DataFrame(columns=MALFORMED_COLUMNS)
    return IngestResult(
        df=df,
        files=[f.name for f in files],
        rows=len(df) + len(malformed),
        per_file=per_file,
        encodings=encodings,
        malformed=malformed,
    )
