"""Read user review files (CSV/TSV, JSONL, Parquet; one file or a directory) into the canonical batch.

Column mapping: a canonical column is taken from the source column of the same name (exact,
else case-insensitive) unless the user maps it (``text=Text,rating=Score``). ``text`` and
``rating`` must resolve; the rest have defaults (see :func:`ingest`). Values are normalized
only as far as the contract in docs/CONTRACTS.md says; deciding that a row is bad is
validation's job, so unparseable ratings become NaN and unparseable timestamps keep their
original string. Bad *files* fail with a one-line :class:`ReviewOpsError` naming the file.
Nothing here writes to disk.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reviewops import ReviewOpsError
from reviewops.schema import CANONICAL_COLUMNS
from reviewops.text import detect_language

MAPPABLE_COLUMNS = [*CANONICAL_COLUMNS, "category"]
OUTPUT_COLUMNS = [*CANONICAL_COLUMNS, "category", "source_file", "source_row"]
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
    rows: int = 0
    per_file: dict[str, int] = field(default_factory=dict)


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
            raise ReviewOpsError(f"column mapping item {item.strip()!r} must look like canonical=SourceColumn "
                                 f"(e.g. text=Text,rating=Score)")
        key, source = (part.strip() for part in item.split("=", 1))
        if key not in MAPPABLE_COLUMNS:
            raise ReviewOpsError(f"column mapping: unknown column {key!r}; valid names: "
                                 f"{', '.join(MAPPABLE_COLUMNS)}")
        if not source:
            raise ReviewOpsError(f"column mapping: {key}= names no source column")
        if key in mapping:
            raise ReviewOpsError(f"column mapping: {key!r} is mapped twice")
        mapping[key] = source
    return mapping


def _first_bad_utf8(path: Path) -> tuple[int, int]:
    """(byte value, file offset) of the first byte that is not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
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


def _not_utf8(path: Path) -> ReviewOpsError:
    byte, offset = _first_bad_utf8(path)
    where = f" (byte 0x{byte:02x} at offset {offset})" if offset >= 0 else ""
    return _fail(path, f"not UTF-8 text{where}; re-encode it as UTF-8")


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open("r", encoding="utf-8-sig") as f:
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


def read_table(path: Path) -> pd.DataFrame:
    """Read one file as a DataFrame, as strings where the format allows.

    CSV/TSV cells are kept as strings (empty cells stay ``""``; a UTF-8 BOM is dropped).
    JSONL and Parquet keep the types they carry; :func:`ingest` normalizes them.

    Raises:
        ReviewOpsError: unsupported extension, missing file, not UTF-8, malformed content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _fail(path, f"unsupported file type {suffix or '(no extension)'!r}; "
                          f"use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        if suffix in (".csv", ".tsv"):
            try:
                return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                                   keep_default_na=False, encoding="utf-8-sig")
            except pd.errors.EmptyDataError:
                return pd.DataFrame()
            except pd.errors.ParserError as exc:
                raise _fail(path, f"malformed {suffix[1:].upper()} ({str(exc).strip()})") from None
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path)
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise _fail(path, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except MemoryError:
        raise _fail(path, "too large to load into memory; split it into smaller files") from None


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
        hint = (f"; the delimiter looks like {delim!r}, not ','" if delim else "")
        raise _fail(path, f"mapped column(s) {', '.join(map(repr, missing_mapped))} not found; "
                          f"available columns: {', '.join(map(repr, available))}{hint}")
    mapping.update(user_map)
    unresolved = [name for name in REQUIRED_SOURCE_COLUMNS if name not in mapping]
    if unresolved:
        if delim:
            raise _fail(path, f"columns {', '.join(unresolved)} not found: only one column was read and "
                              f"the delimiter looks like {delim!r}; save the file comma-separated "
                              f"(or tab-separated as .tsv)")
        raise _fail(path, f"no column for {', '.join(unresolved)}; available columns: "
                          f"{', '.join(map(repr, available))}; map them with e.g. "
                          f"--columns text=<column>,rating=<column>")
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


def normalize_timestamps(raw: pd.Series) -> pd.Series:
    """Format timestamps as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); keep unparseable values as given.

    Numbers are epoch seconds (milliseconds when >= 1e11); strings are parsed by pandas,
    ISO-8601 first (fast), then any format it recognizes. Naive times are taken as UTC.
    """
    text = _as_str(raw, "")
    stripped = text.str.strip()
    out = text.copy()
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


def _canonical(path: Path, df: pd.DataFrame, user_map: dict[str, str]) -> pd.DataFrame:
    mapping = _resolve_columns(path, df, user_map)
    n = len(df)
    name = path.name
    rows = np.arange(1, n + 1)
    df = df.reset_index(drop=True)
    out = pd.DataFrame(index=df.index)

    if "review_id" in mapping:
        out["review_id"] = _as_str(df[mapping["review_id"]], "")
    else:
        out["review_id"] = [f"r-{hashlib.sha1(f'{name}:{r}'.encode()).hexdigest()[:12]}" for r in rows]
    out["product_id"] = (_as_str(df[mapping["product_id"]], "unknown") if "product_id" in mapping
                         else "unknown")
    out["text"] = _as_str(df[mapping["text"]], "")
    if "summary" in mapping:
        # CSV cannot tell "no title" from "", so an empty title is no title.
        out["summary"] = _as_str(df[mapping["summary"]], None, blank_is_missing=True)
    else:
        out["summary"] = None
    out["rating"] = pd.to_numeric(df[mapping["rating"]], errors="coerce").astype(float)
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
    out["source_file"] = name
    out["source_row"] = rows
    return out[OUTPUT_COLUMNS]


def _list_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted((p for p in path.iterdir()
                        if p.is_file() and not p.name.startswith(".")
                        and p.suffix.lower() in SUPPORTED_SUFFIXES), key=lambda p: p.name)
        if not files:
            raise _fail(path, f"directory has no {', '.join(SUPPORTED_SUFFIXES)} files")
        return files
    if not path.exists():
        raise _fail(path, "file or directory not found")
    return [path]


def ingest(path: Path, columns: dict[str, str] | None = None) -> IngestResult:
    """Read a file, or every supported file in a directory (sorted by name, not recursive).

    Defaults for unmapped columns: ``review_id`` -> ``r-<sha1("<file name>:<row>")[:12]>``,
    ``product_id`` -> ``"unknown"``, ``summary``/``category`` -> None,
    ``language`` -> :func:`reviewops.text.detect_language` of the first 2,000 characters of the
    text (also for blank cells),
    ``timestamp`` -> None (validation flags it). ``text`` and ``rating`` must exist.

    Args:
        path: a file or a directory.
        columns: ``{canonical name: source column}`` overriding the identity mapping.

    Returns:
        The canonical batch (columns :data:`OUTPUT_COLUMNS`) with per-file row counts.

    Raises:
        ReviewOpsError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    user_map = dict(columns or {})
    unknown = [k for k in user_map if k not in MAPPABLE_COLUMNS]
    if unknown:
        raise ReviewOpsError(f"column mapping: unknown column(s) {', '.join(map(repr, unknown))}; "
                             f"valid names: {', '.join(MAPPABLE_COLUMNS)}")
    frames = []
    per_file: dict[str, int] = {}
    files = _list_files(path)
    for file in files:
        raw = read_table(file)
        if len(raw) == 0:
            raise _fail(file, "no rows (the file is empty or has only a header)")
        frames.append(_canonical(file, raw, user_map))
        per_file[file.name] = len(raw)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df["source_row"] = df["source_row"].astype("int64")
    return IngestResult(df=df, files=[f.name for f in files], rows=len(df), per_file=per_file)
