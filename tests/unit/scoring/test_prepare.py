"""Unit tests for the streaming data preparation: partitions equal the batch path, every row accounted."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from reviewops.config import PathsConfig, Settings
from reviewops.data.generate import COLUMNS, generate_reviews, write_generated
from reviewops.data.ingest import ingest
from reviewops.data.stages import run_preprocess, run_validate
from reviewops.errors import ReviewOpsError
from reviewops.scoring.prepare import (
    CLEAN_COLUMNS,
    DUPLICATE_COLUMNS,
    QUARANTINE_COLUMNS,
    Partition,
    iter_partitions,
)

ROWS, CHUNK = 1200, 250
PII = re.compile(r"@example\.com|https?://|www\.|555-\d{3}-\d{4}|1[3578]\d{9}")


def _settings(root: Path) -> Settings:
    return Settings(
        paths=PathsConfig(
            interim_dir=root / "interim", gx_dir=root / "gx", reports_dir=root / "reports", quarantine_dir=root / "q"
        )
    )


def _outcomes(frames: list[tuple[str, pd.DataFrame, str | None]]) -> dict[tuple[str, int], tuple[str, str | None]]:
    """``(source_file, source_row) -> (bucket, reason)``; each record exactly once."""
    out: dict[tuple[str, int], tuple[str, str | None]] = {}
    for bucket, df, column in frames:
        reasons = df[column] if column else [None] * len(df)
        for file, row, reason in zip(df["source_file"], df["source_row"], reasons, strict=True):
            key = (str(file), int(row))
            assert key not in out, f"{key} in two frames"
            out[key] = (bucket, reason)
    return out


def _partition_outcomes(parts: list[Partition]) -> dict[tuple[str, int], tuple[str, str | None]]:
    frames: list[tuple[str, pd.DataFrame, str | None]] = []
    for p in parts:
        frames += [
            ("clean", p.clean, None),
            ("duplicate", p.duplicates, "reason"),
            ("quarantined", p.quarantined, "reason"),
        ]
    return _outcomes(frames)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[Path, Settings]:
    """A generated batch with every kind of mess (HTML, PII, duplicates, conflicts, bad values)."""
    root = tmp_path_factory.mktemp("prepare")
    return write_generated(root / "in", ROWS, seed=7), _settings(root)


@pytest.fixture(scope="module")
def batch_path(messy) -> tuple[dict, dict]:
    """The training path on the same file: validate (GX) then preprocess."""
    path, settings = messy
    validated = run_validate(settings, path=path, batch="messy", build_docs=False, enforce=False)
    return validated, run_preprocess(settings, path=Path(validated["valid_path"]))


@pytest.fixture(scope="module")
def parts(messy) -> list[Partition]:
    path, settings = messy
    return list(iter_partitions(settings, path=path, batch="messy", chunk_rows=CHUNK))


def test_every_row_is_accounted_for(parts):
    assert [p.index for p in parts] == list(range(5))
    assert [p.input_rows for p in parts] == [250, 250, 250, 250, 200]
    for p in parts:
        assert p.input_rows == len(p.clean) + len(p.quarantined) + len(p.duplicates)
        assert p.batch == "messy" and p.source_file == "reviews_base.csv"
        assert p.clean.columns.tolist() == CLEAN_COLUMNS  # the same columns in every partition
        assert p.quarantined.columns.tolist() == QUARANTINE_COLUMNS
        assert p.duplicates.columns.tolist() == DUPLICATE_COLUMNS
        assert sum(p.failures.values()) >= len(p.quarantined)  # a row may break several rules
    assert len(_partition_outcomes(parts)) == ROWS


def test_partitions_equal_the_batch_path_but_for_released_first_copies(parts, batch_path):
    """Same rows, buckets and reasons as validate + preprocess, except the documented difference:
    the first copy of a review id that a later partition repeats with other content was already
    handed out (the batch path quarantines every copy as review_id_conflict)."""
    validated, pre = batch_path
    read = pd.read_parquet
    batch = _outcomes(
        [
            ("clean", read(pre["clean_path"]), None),
            ("duplicate", read(pre["duplicates_path"]), "duplicate_kind"),
            ("duplicate", read(validated["repeats_path"]), "duplicate_kind"),
            ("quarantined", read(validated["quarantine_path"]), "quarantine_reason"),
            ("quarantined", read(pre["rejected_path"]), "quarantine_reason"),
        ]
    )
    stream = _partition_outcomes(parts)
    assert stream.keys() == batch.keys()
    differ = {k for k in batch if batch[k] != stream[k]}
    assert differ, "the batch has review ids repeated across partitions: the difference must show"
    released = _released_first_copies(parts)
    assert differ == released
    for key in differ:
        assert "review_id_conflict" in str(batch[key][1])
        assert "review_id_conflict" not in str(stream[key][1])
    reasons = {r for _, r in stream.values()}
    assert {"exact", "normalized", "review_id_conflict", "rating_in_range", "text_not_empty"} <= reasons
    batch_clean = read(pre["clean_path"]).set_index("source_row")["text"]
    stream_clean = pd.concat([p.clean for p in parts]).set_index("source_row")["text"]
    common = batch_clean.index.intersection(stream_clean.index)
    assert len(common) == len(batch_clean)
    assert (batch_clean[common] == stream_clean[common]).all()


def test_one_partition_equals_the_batch_path_exactly(messy, batch_path):
    """With the whole input in one partition nothing differs, ``duplicate_of`` included."""
    path, settings = messy
    validated, pre = batch_path
    (whole,) = iter_partitions(settings, path=path, batch="messy", chunk_rows=ROWS)
    read = pd.read_parquet
    batch_dups = pd.concat([read(pre["duplicates_path"]), read(validated["repeats_path"])])
    batch = _outcomes(
        [
            ("clean", read(pre["clean_path"]), None),
            ("duplicate", batch_dups, "duplicate_of"),
            ("quarantined", read(validated["quarantine_path"]), "quarantine_reason"),
            ("quarantined", read(pre["rejected_path"]), "quarantine_reason"),
        ]
    )
    stream = _outcomes(
        [
            ("clean", whole.clean, None),
            ("duplicate", whole.duplicates, "duplicate_of"),
            ("quarantined", whole.quarantined, "reason"),
        ]
    )
    assert stream == batch


def _released_first_copies(parts: list[Partition]) -> set[tuple[str, int]]:
    """First copies of ids that a later partition quarantined as a conflict."""
    later = {
        rid
        for p in parts
        for rid, reason in zip(p.quarantined["review_id"], p.quarantined["reason"], strict=True)
        if "review_id_conflict" in str(reason)
    }
    first: dict[str, tuple[int, tuple[str, int]]] = {}
    for p in parts:
        for df in (p.clean, p.quarantined, p.duplicates):
            for rid, file, row in zip(df["review_id"], df["source_file"], df["source_row"], strict=True):
                if rid in later and (rid not in first or int(row) < first[rid][1][1]):
                    first[rid] = (p.index, (str(file), int(row)))
    conflict_parts = {
        rid: {
            p.index
            for p in parts
            if rid in set(p.quarantined.loc[p.quarantined["reason"].str.contains("conflict"), "review_id"])
        }
        for rid in later
    }
    return {where for rid, (index, where) in first.items() if index not in conflict_parts[rid]}


def test_duplicate_of_names_a_kept_copy_in_the_partition_or_is_null(parts):
    for p in parts:
        kept_ids = set(p.clean["review_id"])
        kept_rows = {f"{f}:{r}" for f, r in zip(p.clean["source_file"], p.clean["source_row"], strict=True)}
        for reason, of in zip(p.duplicates["reason"], p.duplicates["duplicate_of"], strict=True):
            if of is not None:  # repeats name file:row, duplicates the kept review id
                assert of in (kept_rows if reason == "repeated_row" else kept_ids), (p.index, reason, of)
    assert any(p.duplicates["duplicate_of"].isna().any() for p in parts[1:])  # first copy in an earlier one


def test_chunking_is_deterministic(messy, parts):
    path, settings = messy
    again = list(iter_partitions(settings, path=path, batch="messy", chunk_rows=CHUNK))
    assert len(again) == len(parts)
    for a, b in zip(parts, again, strict=True):
        assert a.index == b.index and a.input_rows == b.input_rows
        for name in ("clean", "quarantined", "duplicates"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_pii_is_masked_in_every_frame(messy, parts):
    path, _ = messy
    assert PII.search(path.read_text(encoding="utf-8"))  # the input has some
    for p in parts:
        for df in (p.clean, p.quarantined, p.duplicates):
            for column in ("text", "summary", "raw_record"):
                if column in df:
                    hits = [v for v in df[column].dropna() if PII.search(str(v))]
                    assert not hits, (p.index, column, hits[:3])
    masked = pd.concat([p.clean for p in parts])["text"].str.contains(r"\[(?:EMAIL|PHONE|URL)\]")
    assert masked.sum() > 10


def _write_ragged(path: Path, rows: int, bad_rows: set[int]) -> None:
    df = generate_reviews(rows, seed=3)
    df["text"] = df["text"].str.replace(",", ";").str.replace("\n", " ").str.replace('"', "'")
    df["summary"] = df["summary"].str.replace(",", ";").str.replace('"', "'")
    lines = [",".join(COLUMNS)]
    for i, record in enumerate(df[COLUMNS].astype(str).itertuples(index=False), start=1):
        cells = list(record)
        if i in bad_rows:
            cells[3] = cells[3] + ", an unquoted comma"
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("bad_rows", [{5, 40}, {130, 131, 299}], ids=["first-chunk", "later-chunks"])
def test_ragged_rows_are_quarantined_as_the_batch_reader_does(tmp_path, bad_rows):
    path = tmp_path / "ragged.csv"
    _write_ragged(path, 300, bad_rows)
    settings = _settings(tmp_path)
    parts = list(iter_partitions(settings, path=path, batch="ragged", chunk_rows=100))
    assert [p.input_rows for p in parts] == [100, 100, 100]
    quarantined = pd.concat([p.quarantined for p in parts])
    mismatched = quarantined[quarantined["reason"] == "field_count_mismatch"]
    expected = ingest(path).malformed
    assert sorted(mismatched["source_row"]) == sorted(bad_rows) == sorted(expected["source_row"])
    merged = mismatched.merge(expected, on="source_row", suffixes=("", "_batch"))
    assert (merged["quarantine_detail"] == merged["quarantine_detail_batch"]).all()
    assert (merged["raw_record"] == merged["raw_record_batch"]).all()
    assert merged["quarantine_detail"].str.startswith("line ").all()


def _same_outcomes_by_row(a: list[Partition], b: list[Partition]) -> None:
    def by_row(parts: list[Partition]) -> dict[int, tuple[str, str | None]]:
        return {row: v for (_, row), v in _partition_outcomes(parts).items()}

    assert by_row(a) == by_row(b)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_parquet_and_jsonl_give_the_csv_outcomes(tmp_path, suffix):
    df = generate_reviews(400, seed=11)
    csv_path = write_generated(tmp_path / "csv", 400, seed=11)
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".parquet":
        df.to_parquet(path, index=False, row_group_size=90)  # row groups that do not line up with chunks
    else:
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    settings = _settings(tmp_path)
    parts = list(iter_partitions(settings, path=path, batch="b", chunk_rows=128))
    assert [p.input_rows for p in parts] == [128, 128, 128, 16]
    _same_outcomes_by_row(parts, list(iter_partitions(settings, path=csv_path, batch="b", chunk_rows=128)))


def test_a_folder_is_read_file_by_file_and_deduplicated_across_files(tmp_path):
    df = generate_reviews(300, seed=5)
    folder = tmp_path / "inbox"
    folder.mkdir()
    df.iloc[:200].to_parquet(folder / "a.parquet", index=False)
    copies = df.iloc[:10].assign(review_id=[f"copy-{i}" for i in range(10)])
    pd.concat([df.iloc[200:], copies]).to_json(folder / "b.jsonl", orient="records", lines=True, force_ascii=False)
    parts = list(iter_partitions(_settings(tmp_path), path=folder, batch="inbox", chunk_rows=150))
    assert [(p.index, p.source_file, p.input_rows) for p in parts] == [
        (0, "a.parquet", 150),
        (1, "a.parquet", 50),
        (2, "b.jsonl", 110),
    ]
    first = parts[0]
    passed = set(first.clean["review_id"]) | set(first.duplicates["review_id"])
    expected = {f"copy-{i}" for i, rid in enumerate(df["review_id"][:10]) if rid in passed}
    dups = parts[2].duplicates
    assert len(expected) >= 8
    assert set(dups.loc[dups["reason"] == "exact", "review_id"]) >= expected


def test_columns_are_mapped_and_a_rating_is_optional(tmp_path):
    df = generate_reviews(200, seed=9).rename(columns={"text": "Body", "review_id": "Id", "rating": "Stars"})
    path = tmp_path / "renamed.csv"
    df.to_csv(path, index=False)
    settings = _settings(tmp_path)
    as_text = list(iter_partitions(settings, path=path, columns="text=Body,review_id=Id,rating=Stars", batch="r"))
    as_dict = list(
        iter_partitions(settings, path=path, columns={"text": "Body", "review_id": "Id", "rating": "Stars"}, batch="r")
    )
    pd.testing.assert_frame_equal(as_text[0].clean, as_dict[0].clean)
    assert set(as_text[0].clean["review_id"]) <= set(df["Id"])
    assert as_text[0].clean["rating"].notna().all()

    unlabelled = tmp_path / "unlabelled.csv"
    df.drop(columns=["Stars"]).to_csv(unlabelled, index=False)
    parts = list(iter_partitions(settings, path=unlabelled, columns={"text": "Body", "review_id": "Id"}, batch="u"))
    clean = parts[0].clean
    assert len(clean) > 150 and clean["rating"].isna().all()
    assert "rating_not_null" not in set(parts[0].quarantined["reason"])


def test_bad_inputs_fail_before_the_first_partition(tmp_path):
    good = write_generated(tmp_path / "in", 120, seed=1)
    (tmp_path / "in" / "z.csv").write_text("text,rating\n", encoding="utf-8")
    settings = _settings(tmp_path)
    with pytest.raises(ReviewOpsError, match="no rows"):
        next(iter_partitions(settings, path=tmp_path / "in", batch="b"))
    with pytest.raises(ReviewOpsError, match="'Nope' not found"):
        next(iter_partitions(settings, path=good, columns="text=Nope", batch="b"))
    with pytest.raises(ReviewOpsError, match="batch name"):
        next(iter_partitions(settings, path=good, batch="../x"))
