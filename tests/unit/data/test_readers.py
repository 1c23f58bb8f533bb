"""Reading one file: CSV cells stay strings, and the fast and exact CSV readers agree."""

from __future__ import annotations

import csv

from reviewops.data.readers import _read_checked, _read_delimited, read_table


def test_read_table_keeps_csv_cells_as_strings(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,rating,n,e\nx,5,007,\n", encoding="utf-8")
    df = read_table(path)
    assert df.to_dict("records") == [{"text": "x", "rating": "5", "n": "007", "e": ""}]


def test_fast_and_exact_readers_agree_on_tricky_csv(tmp_path):
    path = tmp_path / "tricky.csv"
    rows = [
        ["id", "text", "rating", "id"],  # a repeated column name
        ["1", "Line one\r\nline two, with a comma", "5", "x"],
        ["2", 'She said "wow" and left', "", "y"],
        ["3", "", "4", ""],
        ["4", "味道很好，😀 ok", "3", "z"],
    ]
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    fast, exact = _read_delimited(path, ",", "utf-8"), _read_checked(path, ",", "utf-8")
    assert list(fast.df.columns) == ["id", "text", "rating", "id.1"]
    assert fast.df.equals(exact.df) and fast.record_numbers.tolist() == exact.record_numbers.tolist() == [1, 2, 3, 4]
    assert fast.df["text"].tolist() == [r[1] for r in rows[1:]]
