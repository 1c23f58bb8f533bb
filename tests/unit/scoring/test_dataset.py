"""The scored dataset's reader: batch, product and time filters applied while reading, row groups skipped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from reviewops.errors import ReviewOpsError
from reviewops.scoring.dataset import (
    part_path,
    read_scored,
    scored_filter,
    scored_parts,
    scored_row_groups,
    scored_table,
    write_parquet_atomic,
)
from reviewops.scoring.predictor import SCORED_COLUMNS

START = pd.Timestamp("2025-03-01", tz="UTC")


def _rows(batch: str, products: list[str], first: int, hours: list[int | None] | None = None) -> pd.DataFrame:
    """Scored rows r<first>... with these products, one hour apart from ``first`` (or the given hours)."""
    n = len(products)
    hours = hours if hours is not None else list(range(first, first + n))
    frame = pd.DataFrame({c: [None] * n for c in SCORED_COLUMNS})
    frame["review_id"] = [f"r{first + i}" for i in range(n)]
    frame["product_id"] = products
    frame["batch"] = batch
    frame["timestamp"] = [None if h is None else START + pd.Timedelta(hours=h) for h in hours]
    frame["rating"] = 4.0
    frame["text"] = [f"text {first + i}" for i in range(n)]
    frame["sentiment"] = "positive"
    for col in ("p_negative", "p_neutral", "p_positive"):
        frame[col] = 1 / 3
    frame["scored_at"] = START
    return frame


@pytest.fixture
def scored(tmp_path):
    """Two batches, three parts: mon (p1 p2 p1 | p3 p3 p2 with no timestamp on r5), tue (p1 p4)."""
    out = tmp_path / "scored"
    write_parquet_atomic(scored_table(_rows("mon", ["p1", "p2", "p1"], 0)), part_path(out, "mon", 0))
    write_parquet_atomic(scored_table(_rows("mon", ["p3", "p3", "p2"], 3, [3, 4, None])), part_path(out, "mon", 1))
    write_parquet_atomic(scored_table(_rows("tue", ["p1", "p4"], 24)), part_path(out, "tue", 0))
    return out


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _ids(frame: pd.DataFrame) -> list[str]:
    return frame["review_id"].tolist()


def test_no_filter_reads_every_batch_in_order(scored):
    assert _ids(read_scored(scored)) == ["r0", "r1", "r2", "r3", "r4", "r5", "r24", "r25"]
    assert _ids(read_scored(scored, "mon")) == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert _ids(read_scored(scored, ["tue", "mon"])) == ["r24", "r25", "r0", "r1", "r2", "r3", "r4", "r5"]
    assert read_scored(scored).columns.tolist() == SCORED_COLUMNS


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"product_id": "p1"}, ["r0", "r2", "r24"]),
        ({"product_id": "p2"}, ["r1", "r5"]),
        ({"product_id": ["p3", "p4"]}, ["r3", "r4", "r25"]),
        ({"product_id": "p1", "batch": "tue"}, ["r24"]),
        ({"product_id": "nope"}, []),
        ({"start": START + pd.Timedelta(hours=2)}, ["r2", "r3", "r4", "r24", "r25"]),  # r5: no timestamp
        ({"end": START + pd.Timedelta(hours=2)}, ["r0", "r1"]),  # end is exclusive
        ({"start": "2025-03-01T01:00", "end": "2025-03-01 04:00"}, ["r1", "r2", "r3"]),  # naive = UTC
        ({"start": "2025-03-01T02:00+01:00", "end": "2025-03-01T03:00Z"}, ["r1", "r2"]),
        ({"product_id": "p1", "start": "2025-03-02"}, ["r24"]),
    ],
)
def test_filters_match_a_filtered_full_read(scored, kwargs, expected):
    got = read_scored(scored, **kwargs)
    assert _ids(got) == expected
    full = read_scored(scored)
    mask = pd.Series(True, index=full.index)
    if "batch" in kwargs:
        mask &= full["batch"] == kwargs["batch"]
    if "product_id" in kwargs:
        ids = [kwargs["product_id"]] if isinstance(kwargs["product_id"], str) else kwargs["product_id"]
        mask &= full["product_id"].isin(ids)
    if "start" in kwargs:
        mask &= full["timestamp"] >= _utc(kwargs["start"])
    if "end" in kwargs:
        mask &= full["timestamp"] < _utc(kwargs["end"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), full[mask.fillna(False)].reset_index(drop=True))


def test_columns_are_the_only_ones_decoded(scored):
    got = read_scored(scored, product_id="p3", columns=["review_id", "sentiment"])
    assert got.to_dict("list") == {"review_id": ["r3", "r4"], "sentiment": ["positive", "positive"]}
    assert read_scored(scored, product_id="nope", columns=["review_id"]).columns.tolist() == ["review_id"]
    assert read_scored(scored.parent / "nowhere", columns=["text"]).columns.tolist() == ["text"]


def test_bad_arguments_say_what_is_wrong(scored):
    with pytest.raises(ReviewOpsError, match=r"unknown scored column\(s\) \['stars'\]"):
        read_scored(scored, columns=["review_id", "stars"])
    with pytest.raises(ReviewOpsError, match="start='yesterday-ish' is not a date or time"):
        read_scored(scored, start="yesterday-ish")
    assert scored_filter() is None


def test_batch_filter_opens_only_that_batchs_folder(scored):
    assert [p.parent.name for p in scored_parts(scored, "tue")] == ["batch=tue"]
    assert [p.name for p in scored_parts(scored, "mon")] == ["part-00000.parquet", "part-00001.parquet"]
    assert scored_parts(scored, "missing") == []


def _groups(fragments: list) -> list[int]:
    return [group.id for fragment in fragments for group in fragment.row_groups]


def test_row_groups_are_skipped_by_their_statistics(tmp_path):
    """Products clustered in row groups of 2 rows: a product lookup reads only its row groups."""
    out = tmp_path / "scored"
    products = ["a", "a", "b", "b", "c", "c", "d", "d"]
    table = scored_table(_rows("day", products, 0))
    path = part_path(out, "day", 0)
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, row_group_size=2)
    assert pq.ParquetFile(path).num_row_groups == 4
    assert _groups(scored_row_groups(out, product_id="c")) == [2]
    assert _groups(scored_row_groups(out, product_id=["a", "d"])) == [0, 3]
    assert _ids(read_scored(out, product_id=["a", "d"])) == ["r0", "r1", "r6", "r7"]
    # Hours 0..7 in order: a time range keeps only the row groups it overlaps.
    window = scored_row_groups(out, start=START + pd.Timedelta(hours=3), end=START + pd.Timedelta(hours=5))
    assert _groups(window) == [1, 2]
    assert scored_row_groups(out, product_id="zzz") == []
    assert len(scored_row_groups(out)) == 1  # no filter: the whole part, one fragment
    # A null id or time in a row group does not keep it: min/max cover the rest, nulls never match.
    with_nulls = _rows("day", ["a", None, "b", "b"], 0, [0, 1, None, 3])
    pq.write_table(scored_table(with_nulls), part_path(out, "day", 1), row_group_size=2)
    assert [(Path(f.path).name, _groups([f])) for f in scored_row_groups(out, "day", product_id="b")] == [
        ("part-00000.parquet", [1]),
        ("part-00001.parquet", [1]),
    ]
    assert _ids(read_scored(out, product_id="b")) == ["r2", "r3", "r2", "r3"]
    assert _groups(scored_row_groups(out, start=START + pd.Timedelta(hours=6))) == [3]


def test_time_range_skips_whole_parts(scored):
    """Parts written in time order: a window in Tuesday never reads Monday's parts."""
    groups = scored_row_groups(scored, start="2025-03-02")
    assert {Path(g.path).parent.name for g in groups} == {"batch=tue"}
