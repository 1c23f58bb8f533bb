"""Unit tests for validation, its rules, GX project and quarantine: suite, row split, reasons, failure gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewops.config import PathsConfig, Settings, ValidationConfig
from reviewops.data.gx import get_gx_project
from reviewops.data.quarantine import REASON_COLUMN
from reviewops.data.rules import build_rules
from reviewops.data.validation import (
    BatchFailedError,
    ValidationResult,
    check_failure_rate,
    validate_batch,
    write_quarantine,
    write_valid,
)
from reviewops.errors import ReviewOpsError

CANONICAL = [
    "review_id",
    "product_id",
    "text",
    "summary",
    "rating",
    "timestamp",
    "language",
    "category",
    "source_file",
    "source_row",
]
TS = "2024-05-01T10:20:30Z"


def _row(i: int, **over) -> dict:
    row = {
        "review_id": f"r{i}",
        "product_id": f"p{i % 3}",
        "text": f"A perfectly fine review {i}",
        "summary": "Fine",
        "rating": 4.0,
        "timestamp": TS,
        "language": "en",
        "category": "home",
        "source_file": "batch.csv",
        "source_row": i + 1,
    }
    row.update(over)
    return row


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CANONICAL)


# Row i -> expected quarantine_reason (None = valid). Built by hand, one concern per row
# plus combinations, so every count below is known exactly.
CASES: list[tuple[dict, str | None]] = [
    ({}, None),
    ({"rating": 0.0}, "rating_in_range"),
    ({"rating": 6.0}, "rating_in_range"),
    ({"rating": np.nan}, "rating_not_null"),
    ({"text": None}, "text_not_null"),
    ({"text": "   \n\t"}, "text_not_empty"),  # 5 chars of whitespace: long enough, but empty
    ({"text": "  "}, "text_length;text_not_empty"),
    ({"text": "ab"}, "text_length"),
    ({"text": "x" * 201}, "text_length"),
    ({"text": "好"}, "text_length"),  # 1 character (3 bytes in UTF-8)
    ({"text": "很好用", "language": "zh"}, None),  # exactly 3 characters: the minimum
    ({"text": "质" * 200, "language": "zh"}, None),  # 200 characters (600 bytes): the maximum
    ({"text": "质" * 201, "language": "zh"}, "text_length"),
    ({"summary": "s" * 31}, "summary_length"),
    ({"summary": None}, None),  # summary is optional
    ({"timestamp": "2024-05-01 10:20:30"}, "timestamp_iso8601"),
    ({"timestamp": "1714558830"}, "timestamp_iso8601"),
    ({"timestamp": None}, None),  # timestamps are optional: many exports have none
    ({"language": "fr"}, "language_allowed"),
    ({"review_id": None}, "review_id_not_null"),
    ({"review_id": "dup"}, "review_id_conflict"),
    ({"review_id": "dup", "rating": 9.0, "language": "de"}, "language_allowed;rating_in_range;review_id_conflict"),
    ({"text": "\x00\x00\x00\x00"}, "text_not_empty"),  # NUL bytes are not text
    ({"text": "\u200b\u200b\u200d\ufeff"}, "text_not_empty"),  # nor are zero-width characters
    ({"product_id": None}, "product_id_not_null"),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("validation")
    return Settings(
        paths=PathsConfig(gx_dir=root / "gx", quarantine_dir=root / "q"),
        validation=ValidationConfig(min_text_chars=3, max_text_chars=200, max_summary_chars=30, max_failure_rate=0.2),
    )


@pytest.fixture(scope="module")
def cases_df() -> pd.DataFrame:
    df = _frame([_row(i, **over) for i, (over, _) in enumerate(CASES)])
    # A shuffled, non-default index: GX's row indices must still map to the right rows.
    return df.set_axis([1000 - 7 * i for i in range(len(df))]).iloc[::-1]


@pytest.fixture(scope="module")
def cases_result(cases_df, settings) -> ValidationResult:
    return validate_batch(cases_df, settings, "cases")


def test_reasons_per_row_are_exact(cases_result):
    # keyed by source_row: some review_ids are null or duplicated on purpose
    got = dict(zip(cases_result.quarantined["source_row"] - 1, cases_result.quarantined[REASON_COLUMN], strict=True))
    want = {i: reason for i, (_, reason) in enumerate(CASES) if reason is not None}
    assert got == want
    assert set(cases_result.valid["source_row"] - 1) == {i for i, (_, reason) in enumerate(CASES) if reason is None}


def test_counts_and_invariant(cases_result):
    n_bad = sum(reason is not None for _, reason in CASES)
    r = cases_result
    assert r.input_rows == len(CASES)
    assert r.quarantined_rows == n_bad
    assert r.valid_rows + r.quarantined_rows == r.input_rows
    assert r.failure_rate == pytest.approx(n_bad / len(CASES))
    assert r.failures == {
        "text_length": 5,
        "text_not_empty": 4,
        "rating_in_range": 3,
        "language_allowed": 2,
        "review_id_conflict": 2,
        "timestamp_iso8601": 2,
        "product_id_not_null": 1,
        "rating_not_null": 1,
        "review_id_not_null": 1,
        "summary_length": 1,
        "text_not_null": 1,
    }
    # most frequent first, ties by name (check_failure_rate names the first three)
    assert list(r.failures)[:3] == ["text_length", "text_not_empty", "rating_in_range"]
    assert r.gx_success is False
    assert r.success is False  # well above max_failure_rate=0.2


def test_frames_keep_canonical_columns_unchanged(cases_df, cases_result):
    assert list(cases_result.valid.columns) == CANONICAL
    assert list(cases_result.quarantined.columns) == [*CANONICAL, REASON_COLUMN]
    original = cases_df.set_index("source_row").sort_index()
    valid = cases_result.valid.set_index("source_row").sort_index()
    pd.testing.assert_frame_equal(valid, original.loc[valid.index])
    quarantined = cases_result.quarantined.drop(columns=REASON_COLUMN).set_index("source_row")
    pd.testing.assert_frame_equal(quarantined.sort_index(), original.loc[quarantined.index].sort_index())


def test_pandas_twins_agree_with_gx(cases_df, cases_result, settings):
    """The pandas fallback masks mirror GX's semantics row for row on every rule."""
    frame = cases_df.reset_index(drop=True)
    reasons = [set() for _ in range(len(frame))]
    for rule in build_rules(settings.validation):
        if rule.failing is None:
            continue
        for pos in np.flatnonzero(rule.failing(frame).to_numpy()):
            reasons[pos].add(rule.name)
    pandas_reasons = {int(frame.source_row[i]) - 1: ";".join(sorted(r)) for i, r in enumerate(reasons) if r}
    gx_reasons = dict(
        zip(cases_result.quarantined["source_row"] - 1, cases_result.quarantined[REASON_COLUMN], strict=True)
    )
    assert pandas_reasons == gx_reasons


def test_chinese_length_counts_characters(tmp_path):
    # 3 characters = 9 UTF-8 bytes: valid although a byte count would exceed a 5-char max.
    cfg = Settings(
        paths=PathsConfig(gx_dir=tmp_path / "gx"), validation=ValidationConfig(min_text_chars=3, max_text_chars=5)
    )
    df = _frame(
        [
            _row(0, text="味道好", language="zh"),
            _row(1, text="味道很好吃的", language="zh"),
            _row(2, text="好吃", language="zh"),
        ]
    )
    r = validate_batch(df, cfg, "zh", build_docs=False)
    assert list(r.valid["review_id"]) == ["r0"]
    assert dict(zip(r.quarantined.review_id, r.quarantined[REASON_COLUMN], strict=True)) == {
        "r1": "text_length",
        "r2": "text_length",
    }


def test_changed_params_update_suite_and_keep_ids(tmp_path):
    paths = PathsConfig(gx_dir=tmp_path / "gx")
    suite_file = tmp_path / "gx" / "gx" / "expectations" / "reviews_canonical.json"
    get_gx_project(Settings(paths=paths))
    before = {e["meta"]["rule"]: e for e in json.loads(suite_file.read_text())["expectations"]}
    get_gx_project(Settings(paths=paths, validation=ValidationConfig(max_text_chars=50)))
    after = {e["meta"]["rule"]: e for e in json.loads(suite_file.read_text())["expectations"]}
    assert after["text_length"]["kwargs"]["max_value"] == 50
    assert {r: e["id"] for r, e in after.items()} == {r: e["id"] for r, e in before.items()}
    df = _frame([_row(0, text="y" * 60)])
    r = validate_batch(df, Settings(paths=paths, validation=ValidationConfig(max_text_chars=50)), "b", build_docs=False)
    assert r.failures == {"text_length": 1}


def test_all_valid_batch_and_missing_summary_column(settings):
    df = _frame([_row(i) for i in range(5)]).drop(columns=["summary", "category"])
    r = validate_batch(df, settings, "clean", build_docs=False)
    assert (r.valid_rows, r.quarantined_rows, r.failure_rate) == (5, 0, 0.0)
    assert r.success and r.gx_success and r.failures == {}
    assert r.docs_path is None
    assert list(r.valid.columns) == list(df.columns)
    assert list(r.quarantined.columns) == [*df.columns, REASON_COLUMN]
    assert write_quarantine(r, settings, "clean") is None


def test_empty_batch(settings):
    r = validate_batch(_frame([]), settings, "empty", build_docs=False)
    assert (r.input_rows, r.valid_rows, r.quarantined_rows, r.failure_rate) == (0, 0, 0, 0.0)
    assert r.success


def test_missing_required_column_raises(settings):
    df = _frame([_row(i) for i in range(3)]).drop(columns=["rating", "language"])
    with pytest.raises(ReviewOpsError, match=r"missing: rating, language"):
        validate_batch(df, settings, "broken", build_docs=False)


def test_failure_rate_error_names_top_rules(cases_result, settings):
    with pytest.raises(BatchFailedError) as exc:
        check_failure_rate(cases_result, settings.validation)
    msg = str(exc.value)
    pct = 100 * cases_result.failure_rate
    assert msg.startswith(f"batch 'cases': {pct:.1f}% of rows failed validation (limit 20.0%)")
    assert "top failures: text_length=5, text_not_empty=4, rating_in_range=3" in msg
    assert "language_allowed" not in msg  # only the top three
    check_failure_rate(cases_result, ValidationConfig(max_failure_rate=1.0))  # no raise


def test_success_follows_threshold(settings):
    df = _frame([_row(i) for i in range(9)] + [_row(9, rating=7.0)])  # 10% bad
    assert validate_batch(df, settings, "ten", build_docs=False).success
    strict = settings.model_copy(
        update={"validation": settings.validation.model_copy(update={"max_failure_rate": 0.05})}
    )
    r = validate_batch(df, strict, "ten", build_docs=False)
    assert not r.success and r.failures == {"rating_in_range": 1}


def test_write_quarantine_and_valid(cases_result, settings, tmp_path):
    path = write_quarantine(cases_result, settings, "cases")
    assert path == Path(settings.paths.quarantine_dir) / "cases.parquet"
    back = pd.read_parquet(path)
    assert len(back) == cases_result.quarantined_rows
    assert list(back[REASON_COLUMN]) == list(cases_result.quarantined[REASON_COLUMN])
    # overwrite, not append
    assert len(pd.read_parquet(write_quarantine(cases_result, settings, "cases"))) == len(back)
    with pytest.raises(ReviewOpsError, match="plain file name"):
        write_quarantine(cases_result, settings, "../escape")
    out = write_valid(cases_result, tmp_path / "v" / "valid.parquet")
    assert len(pd.read_parquet(out)) == cases_result.valid_rows


def test_data_docs_built(cases_result, settings):
    assert cases_result.docs_path is not None
    assert cases_result.docs_path.name == "index.html" and cases_result.docs_path.exists()
    assert "uncommitted" in cases_result.docs_path.parts


def test_project_layout_and_idempotence(cases_df, cases_result, settings):
    gx_root = Path(settings.paths.gx_dir) / "gx"
    suite_file = gx_root / "expectations" / "reviews_canonical.json"
    tracked = [
        suite_file,
        *sorted((gx_root / "checkpoints").glob("*.json")),
        *sorted((gx_root / "validation_definitions").glob("*.json")),
        gx_root / "great_expectations.yml",
    ]
    before = {p: p.read_bytes() for p in tracked}
    again = validate_batch(cases_df, settings, "cases")
    assert {p: p.read_bytes() for p in tracked} == before  # nothing committed churns
    assert again.failures == cases_result.failures
    assert "uncommitted/" in (gx_root / ".gitignore").read_text()

    suite = json.loads(suite_file.read_text())
    rules = [e["meta"]["rule"] for e in suite["expectations"]]
    assert len(rules) == len(set(rules))
    assert {
        "rating_in_range",
        "text_not_empty",
        "text_length",
        "review_id_conflict",
        "rating_unparseable",
        "timestamp_iso8601",
        "language_allowed",
        "summary_length",
        "column_exists:review_id",
    } <= set(rules)
    by_rule = {e["meta"]["rule"]: e for e in suite["expectations"]}
    assert by_rule["text_length"]["kwargs"] == {"column": "text", "min_value": 3, "max_value": 200}


def test_row_indices_come_from_gx(cases_result):
    # every failing column-map rule was attributed from GX's unexpected_index_list
    assert set(cases_result.index_source) == set(cases_result.failures)
    assert set(cases_result.index_source.values()) == {"gx"}


def test_pandas_fallback_when_gx_gives_no_indices(settings):
    from types import SimpleNamespace

    from reviewops.data.validation import _failing_positions

    frame = _frame([_row(0), _row(1, rating=9.0), _row(2, rating=0.0)])
    rule = {r.name: r for r in build_rules(settings.validation)}["rating_in_range"]
    er = SimpleNamespace(
        result={"unexpected_count": 2}, expectation_config=SimpleNamespace(meta={"rule": rule.name}, type="x")
    )
    positions, source = _failing_positions(er, rule, frame)
    assert (list(positions), source) == ([1, 2], "pandas")
    er.result = {"unexpected_count": 1}  # GX and the pandas twin disagree: fail loudly
    with pytest.raises(ReviewOpsError, match="disagree"):
        _failing_positions(er, rule, frame)


def test_stale_reason_column_is_dropped(settings):
    df = _frame([_row(0), _row(1, rating=9.0)]).assign(**{REASON_COLUMN: ["old", "old"]})
    r = validate_batch(df, settings, "revalidate", build_docs=False)
    assert REASON_COLUMN not in r.valid.columns
    assert list(r.quarantined[REASON_COLUMN]) == ["rating_in_range"]


def test_repeats_are_collapsed_before_the_suite(settings):
    rows = [
        _row(0),
        _row(1),
        _row(1, source_row=50),
        _row(1, source_row=51),  # r1 exported 3 times
        _row(2),
        _row(2, text="Another text under the same id"),
    ]  # r2: a conflict
    r = validate_batch(_frame(rows), settings, "repeats", build_docs=False)
    assert (r.valid_rows, r.quarantined_rows, r.repeated_rows, r.input_rows) == (2, 2, 2, 6)
    assert sorted(r.valid["review_id"]) == ["r0", "r1"]
    assert r.repeats["source_row"].tolist() == [50, 51]
    assert r.repeats["duplicate_of"].tolist() == ["batch.csv:2", "batch.csv:2"]
    assert r.failures == {"review_id_conflict": 2}
    assert r.failure_rate == pytest.approx(2 / 6)


def test_unparseable_rating_is_its_own_reason(settings):
    df = _frame([_row(0), _row(1, rating=np.nan), _row(2, rating=np.nan)]).assign(rating_raw=[None, None, "five-ish"])
    r = validate_batch(df, settings, "ratings", build_docs=False)
    assert dict(zip(r.quarantined["review_id"], r.quarantined[REASON_COLUMN], strict=True)) == {
        "r1": "rating_not_null",
        "r2": "rating_unparseable",
    }
    assert r.failures == {"rating_not_null": 1, "rating_unparseable": 1}
    assert r.quarantined.set_index("review_id").loc["r2", "rating_raw"] == "five-ish"
    assert "rating_raw" not in r.valid.columns


def test_malformed_records_join_the_quarantine(settings):
    malformed = pd.DataFrame(
        [
            {
                "source_file": "batch.csv",
                "source_row": 9,
                "raw_record": "a,b,c",
                "quarantine_reason": "field_count_mismatch",
                "quarantine_detail": "line 10",
            }
        ]
    )
    r = validate_batch(_frame([_row(0), _row(1)]), settings, "ragged", build_docs=False, malformed=malformed)
    assert (r.input_rows, r.valid_rows, r.quarantined_rows) == (3, 2, 1)
    assert r.failures == {"field_count_mismatch": 1}
    assert r.quarantined["raw_record"].tolist() == ["a,b,c"]


def test_a_validation_in_another_process_waits_for_the_gx_lock(tmp_path, cases_df):
    """Two processes never use the GX project's files at once (GX rewrites them, not atomically)."""
    import subprocess
    import sys
    import time

    from reviewops.data.gx import gx_lock

    cases_df.to_parquet(tmp_path / "batch.parquet")
    script = (
        "import sys, pandas as pd\n"
        "from reviewops.config import PathsConfig, Settings\n"
        "from reviewops.data.validation import validate_batch\n"
        f"s = Settings(paths=PathsConfig(gx_dir={str(tmp_path / 'gx')!r}, quarantine_dir={str(tmp_path / 'q')!r}))\n"
        f"r = validate_batch(pd.read_parquet({str(tmp_path / 'batch.parquet')!r}), s, 'other', build_docs=False)\n"
        "print(r.input_rows)\n"
    )
    settings = Settings(paths=PathsConfig(gx_dir=tmp_path / "gx", quarantine_dir=tmp_path / "q"))
    with gx_lock(settings) as lock:
        assert lock == tmp_path / "gx" / ".reviewops-gx.lock"
        other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        time.sleep(8)  # the other process imports, then blocks on the lock
        assert other.poll() is None
        assert not (tmp_path / "gx" / "gx").exists()  # it has not touched the project
    out, _ = other.communicate(timeout=240)
    assert other.returncode == 0 and out.split()[-1] == str(len(cases_df))
