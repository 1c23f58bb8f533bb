"""Unit tests for reading one file in chunks: fixed record boundaries whichever reader reads them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reviewops.data.readers import read_records
from reviewops.errors import ReviewOpsError
from reviewops.scoring import chunks
from reviewops.scoring.chunks import open_source


def _csv(path: Path, rows: int, ragged: set[int] = frozenset(), sep: str = ",") -> Path:
    lines = [sep.join(["review_id", "text", "rating"])]
    for i in range(1, rows + 1):
        text = f'"line one, {i}\nline two"' if i % 7 == 0 else f"review {i}"
        lines.append(sep.join([f"r{i}", text + (f"{sep}extra" if i in ragged else ""), str(i % 5 + 1)]))
        if i % 11 == 0:
            lines.append("")  # blank lines are skipped, not numbered
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _records(path: Path, size: int) -> list[tuple[list[int], list[int]]]:
    return [(c.rows.tolist(), [m["source_row"] for m in c.malformed]) for c in open_source(path).chunks(size)]


@pytest.mark.parametrize("ragged", [set(), {3}, {95}, {40, 41, 260}])
def test_chunks_hold_fixed_record_ranges_and_match_the_whole_file_reader(tmp_path, ragged):
    path = _csv(tmp_path / "r.csv", 300, ragged)
    got = list(open_source(path).chunks(64))
    assert [c.records for c in got] == [64, 64, 64, 64, 44]
    numbers = [n for c in got for n in [*c.rows.tolist(), *(m["source_row"] for m in c.malformed)]]
    assert sorted(numbers) == list(range(1, 301))
    for k, c in enumerate(got):
        assert all(64 * k < n <= 64 * (k + 1) for n in c.rows)
    whole = read_records(path)
    streamed = pd.concat([c.df for c in got], ignore_index=True)
    pd.testing.assert_frame_equal(streamed, whole.df.reset_index(drop=True))
    assert [m for c in got for m in c.malformed] == whole.malformed


def test_a_ragged_record_after_the_first_block_switches_readers_mid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "_BLOCK_BYTES", 1024)  # many pyarrow blocks, so chunks go out before the switch
    path = _csv(tmp_path / "r.csv", 400, {350})
    expected = _records_exact(path, 50)
    exact = chunks._exact_csv_chunks
    skipped: list[int] = []

    def spy(*args, skip=0):
        skipped.append(skip)
        return exact(*args, skip=skip)

    monkeypatch.setattr(chunks, "_exact_csv_chunks", spy)
    assert _records(path, 50) == expected
    assert skipped and skipped[0] >= 100  # pyarrow handed out the first chunks, the csv module the rest
    assert [r for rows, _ in expected for r in rows][:3] == [1, 2, 3]


def _records_exact(path: Path, size: int) -> list[tuple[list[int], list[int]]]:
    return [
        (c.rows.tolist(), [m["source_row"] for m in c.malformed])
        for c in chunks._exact_csv_chunks(path, ",", "utf-8", size)
    ]


def test_tsv_parquet_and_jsonl_chunks(tmp_path):
    tsv = _csv(tmp_path / "r.tsv", 30, sep="\t")
    assert [c.records for c in open_source(tsv).chunks(8)] == [8, 8, 8, 6]
    df = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "rating": range(30)})
    df.to_parquet(tmp_path / "r.parquet", row_group_size=7)
    got = list(open_source(tmp_path / "r.parquet").chunks(8))
    assert [len(c.df) for c in got] == [8, 8, 8, 6] and got[1].rows.tolist() == list(range(9, 17))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"text": "a", "rating": 1}\n\n{"text": "b", "rating": 2, "title": "x"}\n{"text": "c"}\n')
    source = open_source(jsonl)
    assert source.columns == ["text", "rating", "title"]
    first, second = source.chunks(2)
    assert first.df.columns.tolist() == ["text", "rating", "title"] and second.df["text"].tolist() == ["c"]


def test_bad_files_fail_when_opened(tmp_path):
    (tmp_path / "empty.csv").write_text("text,rating\n", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n[1, 2]\n', encoding="utf-8")
    (tmp_path / "x.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(ReviewOpsError, match="no rows"):
        open_source(tmp_path / "empty.csv")
    with pytest.raises(ReviewOpsError, match="line 2 is a JSON list"):
        open_source(tmp_path / "bad.jsonl")
    with pytest.raises(ReviewOpsError, match="unsupported file type"):
        open_source(tmp_path / "x.txt")
    with pytest.raises(ReviewOpsError, match="not found"):
        open_source(tmp_path / "missing.parquet")


def test_jsonl_chunks_type_cells_as_the_whole_file_reader(tmp_path):
    path = tmp_path / "ids.jsonl"
    lines = [f'{{"review_id": {i}, "text": "t{i}", "rating": 4}}' for i in range(1, 5)] + [
        '{"text": "t5", "rating": 3}'
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    streamed = pd.concat([c.df for c in open_source(path).chunks(2)], ignore_index=True)
    pd.testing.assert_frame_equal(streamed, read_records(path).df)  # ids 1..4 are floats in both
