"""Map user review files (one file or a directory) onto the canonical batch.

Reading a file (encoding detection, CSV/TSV, JSONL, Parquet, records set aside when their
field count differs from the header) is :mod:`reviewops.data.readers`; here its columns
are mapped and its values normalized. Column mapping: a canonical column is taken from the
source column of the same name (exact, else case-insensitive) unless the user maps it
(``text=Text,rating=Score``). ``text`` and ``rating`` must resolve; the rest have defaults
(see :func:`ingest`). Values are normalized only as far as the contract in
docs/CONTRACTS.md says; deciding that a row is bad is validation's job, so unparseable
ratings become NaN with the cell kept in ``rating_raw``, and unparseable timestamps keep
their original string. Records the reader set aside land in :attr:`IngestResult.malformed`
for the quarantine. Bad *files* fail with a one-line :class:`ReviewOpsError` naming the file.
Emails, phone numbers and URLs in ``text`` and ``summary`` are masked here, before anything
downstream can write them (``mask_pii=False`` reads them as they are). Nothing here writes to disk.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.data.readers import SUPPORTED_SUFFIXES, file_error, read_records
from reviewops.errors import ReviewOpsError
from reviewops.schema import CANONICAL_COLUMNS
from reviewops.text import detect_language

MAPPABLE_COLUMNS = [*CANONICAL_COLUMNS, "category"]
# ``rating_raw``: the rating cell as written when it could not be read as a number (else None).
OUTPUT_COLUMNS = [*CANONICAL_COLUMNS, "category", "rating_raw", "source_file", "source_row"]
# Records the reader set aside (``readers.read_records``): they go straight to the quarantine.
MALFORMED_COLUMNS = ["source_file", "source_row", "raw_record", "quarantine_reason", "quarantine_detail"]
FIELD_COUNT_REASON = "field_count_mismatch"
REQUIRED_SOURCE_COLUMNS = ["text", "rating"]
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
        raise file_error(
            path,
            f"mapped column(s) {', '.join(map(repr, missing_mapped))} not found; "
            f"available columns: {', '.join(map(repr, available))}{hint}",
        )
    mapping.update(user_map)
    unresolved = [name for name in REQUIRED_SOURCE_COLUMNS if name not in mapping]
    if unresolved:
        if delim:
            raise file_error(
                path,
                f"columns {', '.join(unresolved)} not found: only one column was read and "
                f"the delimiter looks like {delim!r}; save the file comma-separated "
                f"(or tab-separated as .tsv)",
            )
        raise file_error(
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


def canonical_frame(
    path: Path, df: pd.DataFrame, user_map: dict[str, str], rows: np.ndarray | None = None, mask: bool = True
) -> pd.DataFrame:
    """One file's records (or a chunk of them) as canonical rows (:data:`OUTPUT_COLUMNS`), PII masked.

    ``rows`` are the records' 1-based numbers in the file (default ``1..len(df)``): they make
    ``source_row`` and the default ``review_id``, so a chunk keeps the ids of the whole file.
    """
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


def malformed_frame(path: Path, records: list[dict], mask: bool) -> pd.DataFrame:
    """Records the reader set aside, as quarantine rows (``field_count_mismatch``, raw text masked)."""
    frame = pd.DataFrame(records, columns=["source_row", "raw_record", "quarantine_detail"])
    frame["raw_record"] = _masked(frame["raw_record"].astype(object), mask)
    frame["source_file"] = path.name
    frame["quarantine_reason"] = FIELD_COUNT_REASON
    return frame[MALFORMED_COLUMNS]


def list_files(path: Path) -> list[Path]:
    """The supported files of a folder (sorted by name, not recursive), or ``[path]`` for a file."""
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
            raise file_error(path, f"directory has no {', '.join(SUPPORTED_SUFFIXES)} files")
        return files
    if not path.exists():
        raise file_error(path, "file or directory not found")
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
    files = list_files(path)
    for file in files:
        table = read_records(file, encoding)
        records = len(table.df) + len(table.malformed)
        if records == 0:
            raise file_error(file, "no rows (the file is empty or has only a header)")
        if len(table.df.columns) or len(table.df):
            frames.append(canonical_frame(file, table.df, user_map, table.record_numbers, mask_pii))
        if table.malformed:
            bad.append(malformed_frame(file, table.malformed, mask_pii))
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
