"""Tests for reading user files into the canonical batch."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest

from reviewops.data.generate import generate_reviews, write_generated
from reviewops.data.ingest import (
    OUTPUT_COLUMNS,
    IngestResult,
    ingest,
    normalize_timestamps,
    parse_column_map,
)
from reviewops.errors import ReviewOpsError

SHARED_FILE = Path(__file__).resolve().parents[3].parent / "shared/data/amazon_fine_food_1k.csv"
AMAZON_MAP = "review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time"

ROWS = [
    {
        "review_id": "a1",
        "product_id": "P-1",
        "text": "Great battery, fast shipping.",
        "summary": "Great",
        "rating": "5",
        "timestamp": "2023-05-01T10:00:00Z",
        "language": "en",
        "category": "electronics",
    },
    {
        "review_id": "a2",
        "product_id": "P-2",
        "text": "物流太慢了，等了三个星期。",
        "summary": "物流太慢",
        "rating": "1",
        "timestamp": "1303862400",
        "language": "zh",
        "category": "grocery",
    },
    {
        "review_id": "a3",
        "product_id": "P-1",
        "text": 'Okay, "fine", nothing more,\nsecond line.',
        "summary": "",
        "rating": "great",
        "timestamp": "not a date",
        "language": "en",
        "category": "",
    },
]


def _write_csv(path: Path, rows: list[dict], sep: str = ",", bom: bool = False) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=sep, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def _expect_error(path: Path, root: Path, *fragments: str, columns=None) -> str:
    """Ingest must fail with one line naming the file and each fragment, and write nothing."""
    before = _snapshot(root)
    with pytest.raises(ReviewOpsError) as err:
        ingest(path, columns)
    message = str(err.value)
    assert "\n" not in message
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message
    assert _snapshot(root) == before
    return message


# ------------------------------------------------------------------ column mapping


def test_parse_column_map():
    assert parse_column_map(AMAZON_MAP) == {
        "review_id": "Id",
        "product_id": "ProductId",
        "text": "Text",
        "summary": "Summary",
        "rating": "Score",
        "timestamp": "Time",
    }
    assert parse_column_map(" text = Review Body , category=Dept,") == {"text": "Review Body", "category": "Dept"}
    assert parse_column_map(None) == {}
    assert parse_column_map("  ") == {}


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("body=Text", "unknown column 'body'"),
        ("text", "must look like canonical=SourceColumn"),
        ("text=", "names no source column"),
        ("text=A,text=B", "mapped twice"),
    ],
)
def test_parse_column_map_errors(spec, fragment):
    with pytest.raises(ReviewOpsError) as err:
        parse_column_map(spec)
    assert fragment in str(err.value)
    if "unknown" in fragment:
        for name in ("review_id", "text", "rating", "timestamp", "language", "category"):
            assert name in str(err.value)


def test_ingest_rejects_unknown_canonical_name(tmp_path):
    path = _write_csv(tmp_path / "r.csv", ROWS)
    with pytest.raises(ReviewOpsError, match="unknown column.*'stars'.*valid names"):
        ingest(path, {"stars": "rating"})


# ------------------------------------------------------------------ round trips


def _check_canonical(df: pd.DataFrame, source_file: str, rating_raw: str | None = "great") -> None:
    assert list(df.columns) == OUTPUT_COLUMNS
    assert df["review_id"].tolist() == ["a1", "a2", "a3"]
    assert df["product_id"].tolist() == ["P-1", "P-2", "P-1"]
    assert df["text"].tolist() == [r["text"] for r in ROWS]
    assert df["summary"].tolist() == ["Great", "物流太慢", None]
    assert df["rating"].dtype == float
    assert df["rating"].iloc[:2].tolist() == [5.0, 1.0]
    assert math.isnan(df["rating"].iloc[2])
    assert df["rating_raw"].tolist() == [None, None, rating_raw]  # what the user wrote, kept
    assert df["timestamp"].tolist() == ["2023-05-01T10:00:00Z", "2011-04-27T00:00:00Z", "not a date"]
    assert df["language"].tolist() == ["en", "zh", "en"]
    assert df["category"].tolist() == ["electronics", "grocery", None]
    assert df["source_file"].tolist() == [source_file] * 3
    assert df["source_row"].tolist() == [1, 2, 3]


def test_csv_round_trip_with_bom(tmp_path):
    path = _write_csv(tmp_path / "reviews.csv", ROWS, bom=True)
    result = ingest(path)
    assert isinstance(result, IngestResult)
    assert result.rows == 3
    assert result.files == ["reviews.csv"]
    assert result.per_file == {"reviews.csv": 3}
    _check_canonical(result.df, "reviews.csv")


def test_tsv_round_trip(tmp_path):
    path = _write_csv(tmp_path / "reviews.tsv", ROWS, sep="\t")
    _check_canonical(ingest(path).df, "reviews.tsv")


def test_jsonl_round_trip_with_native_types(tmp_path):
    path = tmp_path / "reviews.jsonl"
    records = []
    for row in ROWS:
        rec = dict(row)
        rec["rating"] = int(rec["rating"]) if rec["rating"].isdigit() else rec["rating"]
        if rec["timestamp"].isdigit():
            rec["timestamp"] = int(rec["timestamp"])
        if rec["summary"] == "":
            rec["summary"] = None
        records.append(rec)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) + "\n", encoding="utf-8")
    _check_canonical(ingest(path).df, "reviews.jsonl")


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "reviews.parquet"
    df = pd.DataFrame(ROWS)
    df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
    df.to_parquet(path, index=False)
    _check_canonical(ingest(path).df, "reviews.parquet", rating_raw=None)  # already NaN in the file


def test_directory_reads_supported_files_sorted_by_name(tmp_path):
    _write_csv(tmp_path / "b.csv", [{"text": "Great.", "rating": "5"}, {"text": "Bad.", "rating": "1"}])
    (tmp_path / "a.jsonl").write_text('{"text": "非常满意，强烈推荐。", "rating": 4}\n', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not data\n")
    (tmp_path / "sub").mkdir()
    _write_csv(tmp_path / "sub" / "c.csv", [{"text": "nested", "rating": "3"}])  # not recursive
    result = ingest(tmp_path)
    assert result.files == ["a.jsonl", "b.csv"]
    assert result.per_file == {"a.jsonl": 1, "b.csv": 2}
    assert result.rows == 3
    df = result.df
    assert df["source_file"].tolist() == ["a.jsonl", "b.csv", "b.csv"]
    assert df["source_row"].tolist() == [1, 1, 2]
    assert df["text"].tolist() == ["非常满意，强烈推荐。", "Great.", "Bad."]
    assert df["language"].tolist() == ["zh", "en", "en"]
    # unmapped ids are stable hashes of file name and row
    expected = [
        f"r-{hashlib.sha1(f'{f}:{r}'.encode()).hexdigest()[:12]}"
        for f, r in [("a.jsonl", 1), ("b.csv", 1), ("b.csv", 2)]
    ]
    assert df["review_id"].tolist() == expected
    assert ingest(tmp_path).df["review_id"].tolist() == expected
    assert df["product_id"].tolist() == ["unknown"] * 3
    assert df["summary"].isna().all()
    assert df["category"].isna().all()
    assert df["timestamp"].isna().all()
    assert df.index.tolist() == [0, 1, 2]


def test_user_mapping_overrides_identity_and_case_insensitive_identity(tmp_path):
    path = _write_csv(
        tmp_path / "export.csv",
        [{"Text": "ignored title-ish", "body": "The real body.", "Rating": "4", "Stars": "2", "Language": "EN"}],
    )
    df = ingest(path, {"text": "body"}).df
    assert df["text"].tolist() == ["The real body."]
    assert df["rating"].tolist() == [4.0]  # "Rating" matched case-insensitively
    assert df["language"].tolist() == ["en"]  # normalized
    df = ingest(path, parse_column_map("text=body,rating=Stars")).df
    assert df["rating"].tolist() == [2.0]


def test_generated_file_round_trip(tmp_path):
    path = write_generated(tmp_path, 400, seed=4)
    expected = generate_reviews(400, seed=4)
    df = ingest(path, mask_pii=False).df
    assert len(df) == 400
    assert df["review_id"].tolist() == expected["review_id"].tolist()
    assert df["text"].tolist() == expected["text"].tolist()
    assert df["category"].tolist() == expected["category"].tolist()
    assert df["language"].tolist() == expected["language"].tolist()
    assert df["rating"].tolist() == expected["rating"].astype(float).tolist()
    # valid timestamps pass through unchanged, invalid ones keep their original string
    assert df["timestamp"].tolist() == expected["timestamp"].tolist()


def test_normalize_timestamps():
    raw = pd.Series(
        [
            "1303862400",
            1303862400,
            1303862400000,
            1e20,
            "",
            None,
            "2020-01-05 10:00:00+02:00",
            "Jan 5 2020",
            "not a date",
            "  2011-04-27T00:00:00Z ",
            "2023-13-45",
        ],
        dtype=object,
    )
    assert normalize_timestamps(raw).tolist() == [
        "2011-04-27T00:00:00Z",
        "2011-04-27T00:00:00Z",
        "2011-04-27T00:00:00Z",
        "1e+20",
        None,
        None,
        "2020-01-05T08:00:00Z",
        "2020-01-05T00:00:00Z",
        "not a date",
        "2011-04-27T00:00:00Z",
        "2023-13-45",
    ]


# ------------------------------------------------------------------ bad files


def test_not_utf8_names_byte_and_offset(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,rating\nok,5\ncaf\xe9 au lait,4\n")
    message = _expect_error(
        path,
        tmp_path,
        "not UTF-8 text",
        "byte 0xe9 at offset 20",
        "re-encode it as UTF-8",
        "nor UTF-16 or GB18030",
        "--encoding",
    )
    assert message.startswith(str(path))


def test_not_utf8_deep_in_a_big_file_reports_the_file_offset(tmp_path):
    path = tmp_path / "big_latin.csv"
    head = b"text,rating\n" + b"fine text,5\n" * 300_000
    path.write_bytes(head + b"na\xefve,3\n")
    _expect_error(path, tmp_path, f"byte 0xef at offset {len(head) + 2}")


def test_not_utf8_jsonl(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"text": "caf\xe9", "rating": 4}\n')
    _expect_error(path, tmp_path, "not UTF-8 text", "byte 0xe9 at offset 13")


def test_semicolon_delimiter_is_named(tmp_path):
    path = tmp_path / "euro.csv"
    path.write_text("text;rating\nGood;5\nBad;1\n", encoding="utf-8")
    _expect_error(path, tmp_path, "delimiter looks like ';'", "not found")


def test_semicolon_delimiter_with_a_mapping(tmp_path):
    path = tmp_path / "euro.csv"
    path.write_text("Body;Score\nGood;5\n", encoding="utf-8")
    _expect_error(
        path, tmp_path, "'Body'", "not found", "delimiter looks like ';'", columns={"text": "Body", "rating": "Score"}
    )


def test_mapped_column_missing_lists_available(tmp_path):
    path = _write_csv(tmp_path / "r.csv", [{"Text": "x", "Score": "5", "Time": "1"}])
    _expect_error(
        path,
        tmp_path,
        "'Summary'",
        "not found",
        "available columns: 'Text', 'Score', 'Time'",
        columns={"text": "Text", "rating": "Score", "summary": "Summary"},
    )


def test_required_columns_missing(tmp_path):
    path = _write_csv(tmp_path / "r.csv", [{"body": "x", "stars": "5"}])
    _expect_error(path, tmp_path, "no column for text, rating", "'body', 'stars'", "--columns")


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.csv", b""),
        ("header_only.csv", b"text,rating\n"),
        ("bom_only.csv", b"\xef\xbb\xbf"),
        ("empty.jsonl", b""),
        ("blank_lines.jsonl", b"\n\n"),
    ],
)
def test_empty_files_have_no_rows(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    _expect_error(path, tmp_path, "no rows")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "reviews.xlsx"
    path.write_bytes(b"PK\x03\x04")
    _expect_error(path, tmp_path, "unsupported file type '.xlsx'", ".csv", ".parquet")


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a", "rating": 5}\n{"text": "b", "rating": 4}\n{"text": "c", rating: 3}\n')
    _expect_error(path, tmp_path, "invalid JSON on line 3")


def test_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "r.ndjson"
    path.write_text('{"text": "a", "rating": 5}\n[1, 2]\n')
    _expect_error(path, tmp_path, "line 2 is a JSON list, expected an object")


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all" * 10)
    _expect_error(path, tmp_path, "not a readable Parquet file")


def test_ragged_record_is_set_aside_with_its_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("text,rating\ngood,5\nbad,1,extra,cells\nfine,4\n")
    result = ingest(path)
    assert result.rows == 3 and result.per_file == {"ragged.csv": 3}
    assert result.df["text"].tolist() == ["good", "fine"]
    assert result.df["source_row"].tolist() == [1, 3]  # record numbers survive the gap
    bad = result.malformed.to_dict("records")
    assert bad == [
        {
            "source_file": "ragged.csv",
            "source_row": 2,
            "raw_record": "bad,1,extra,cells",
            "quarantine_reason": "field_count_mismatch",
            "quarantine_detail": "line 3: 4 fields where the header has 2 (an unquoted ',' inside a value?)",
        }
    ]


def test_missing_path_and_empty_directory(tmp_path):
    _expect_error(tmp_path / "nope.csv", tmp_path, "not found")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "readme.md").write_text("no data here")
    _expect_error(empty, tmp_path, "directory has no", ".csv")


def test_one_bad_file_in_a_directory_fails_the_ingest(tmp_path):
    _write_csv(tmp_path / "a.csv", [{"text": "x", "rating": "5"}])
    (tmp_path / "b.csv").write_bytes(b"text,rating\n\xff,5\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ReviewOpsError, match=r"b\.csv: not UTF-8 text \(byte 0xff at offset 12\)"):
        ingest(tmp_path)
    assert _snapshot(tmp_path) == before


def test_huge_single_field_is_read(tmp_path):
    size = 100_000_000
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write('text,rating\n"')
        chunk = "word " * 200_000  # 1,000,000 chars
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.write('",2\nsmall one,4\n')
    start = time.perf_counter()
    result = ingest(path)
    elapsed = time.perf_counter() - start
    assert result.rows == 2
    assert len(result.df["text"].iloc[0]) == size
    assert result.df["rating"].tolist() == [2.0, 4.0]
    assert result.df["language"].tolist() == ["en", "en"]
    assert elapsed < 30


# ------------------------------------------------------------------ the real shared file


def test_real_amazon_fine_food_file():
    if not SHARED_FILE.exists():
        pytest.skip("../shared/data/amazon_fine_food_1k.csv not found")
    result = ingest(SHARED_FILE, parse_column_map(AMAZON_MAP))
    df = result.df
    assert result.rows == 1000
    assert result.per_file == {"amazon_fine_food_1k.csv": 1000}
    first = df.iloc[0]
    assert first["review_id"] == "1"
    assert first["product_id"] == "B001E4KFG0"
    assert first["summary"] == "Good Quality Dog Food"
    assert first["rating"] == 5.0
    assert first["timestamp"] == "2011-04-27T00:00:00Z"
    assert first["text"].startswith("I have bought several of the Vitality canned dog food")
    assert df["timestamp"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    assert (df["language"] == "en").all()
    assert df["rating"].between(1, 5).all()
    assert df["review_id"].is_unique
    assert df["source_row"].tolist() == list(range(1, 1001))


def test_real_file_without_mapping_says_what_to_map():
    if not SHARED_FILE.exists():
        pytest.skip("../shared/data/amazon_fine_food_1k.csv not found")
    with pytest.raises(ReviewOpsError) as err:
        ingest(SHARED_FILE)
    message = str(err.value)
    assert "amazon_fine_food_1k.csv" in message
    assert "no column for rating" in message
    assert "'Score'" in message
