"""The pure gate decision: floors, regression vs the champion, and the rendered tables."""

from __future__ import annotations

import pytest

from reviewops.config import GateConfig
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.gate import GateFailedError, candidate_metrics, champion_from_eval, decide

CFG = GateConfig(min_rougeL=0.10, min_macro_f1=0.50, max_regression=0.02)


def _rows(decision):
    return {c.name: c for c in decision.checks}


def test_floors_only_without_champion():
    d = decide({"eval/rougeL": 0.2, "eval/sentiment_macro_f1": 0.7}, None, CFG)
    assert d.passed
    assert list(_rows(d)) == ["floor/rougeL", "floor/sentiment_macro_f1"]
    assert _rows(d)["floor/rougeL"].threshold == 0.10
    assert any("no champion" in n for n in d.notes)


def test_floor_failure_is_reported_per_metric():
    d = decide({"eval/rougeL": 0.05, "eval/sentiment_macro_f1": 0.7}, None, CFG)
    assert not d.passed
    assert [c.name for c in d.failed_checks] == ["floor/rougeL"]
    assert _rows(d)["floor/rougeL"].value == 0.05


def test_boundary_values_pass():
    d = decide(
        {"eval/rougeL": 0.10, "eval/sentiment_macro_f1": 0.50},
        {"eval/rougeL": 0.12, "eval/sentiment_macro_f1": 0.52},
        CFG,
    )
    assert d.passed  # exactly at the floor and exactly max_regression below the champion


def test_regression_vs_champion():
    champion = {"eval/rougeL": 0.30, "eval/sentiment_macro_f1": 0.80}
    ok = decide({"eval/rougeL": 0.29, "eval/sentiment_macro_f1": 0.85}, champion, CFG)
    assert ok.passed
    assert _rows(ok)["regression/rougeL"].threshold == pytest.approx(0.28)

    bad = decide({"eval/rougeL": 0.25, "eval/sentiment_macro_f1": 0.85}, champion, CFG)
    assert not bad.passed
    assert [c.name for c in bad.failed_checks] == ["regression/rougeL"]  # floors still pass
    assert "champion 0.3000" in _rows(bad)["regression/rougeL"].detail


def test_missing_candidate_metric_fails_and_missing_champion_metric_skips():
    d = decide({"eval/rougeL": 0.5}, {"eval/rougeL": 0.4}, CFG)
    assert not d.passed
    assert _rows(d)["floor/sentiment_macro_f1"].value is None
    assert "regression/sentiment_macro_f1" not in _rows(d)
    assert any("champion has no eval/sentiment_macro_f1" in n for n in d.notes)


def test_different_test_split_is_noted():
    d = decide(
        {"eval/rougeL": 0.5, "eval/sentiment_macro_f1": 0.9, "eval/test_fingerprint": "aaa"},
        {"eval/rougeL": 0.4, "eval/sentiment_macro_f1": 0.8, "eval/test_fingerprint": "bbb"},
        CFG,
    )
    assert d.passed
    assert any("test split bbb" in n for n in d.notes)


def test_tables_and_error_message():
    d = decide({"eval/rougeL": 0.05, "eval/sentiment_macro_f1": 0.9}, {"eval/rougeL": 0.3}, CFG)
    header, *rows = d.table()
    assert header == ["check", "value", "threshold", "result", "detail"]
    assert rows[0] == ["floor/rougeL", "0.0500", ">= 0.1000", "FAIL", "gate.min_rougeL"]
    assert rows[1][:4] == ["floor/sentiment_macro_f1", "0.9000", ">= 0.5000", "PASS"]
    assert rows[2][:4] == ["regression/rougeL", "0.0500", ">= 0.2800", "FAIL"]
    text = d.to_text()
    assert text.splitlines()[0].split() == header and "FAIL" in text
    err = GateFailedError(d)
    assert isinstance(err, ReviewOpsError)
    msg = str(err)
    assert "floor/rougeL" in msg and "regression/rougeL" in msg and "floor/sentiment_macro_f1" not in msg
    assert err.decision is d
    assert d.rich_table().row_count == 3
    assert d.to_dict()["passed"] is False


def test_candidate_and_champion_from_eval_result():
    result = {
        "eval/rougeL": 0.3,
        "eval/sentiment_macro_f1": 0.8,
        "baseline/lead8/rougeL": 0.2,
        "champion/eval/rougeL": 0.28,
        "meta": {"test_fingerprint": "abc"},
    }
    assert candidate_metrics(result) == {
        "eval/rougeL": 0.3,
        "eval/sentiment_macro_f1": 0.8,
        "eval/test_fingerprint": "abc",
    }
    champ = champion_from_eval(result)
    assert champ["eval/rougeL"] == 0.28 and champ["eval/test_fingerprint"] == "abc"
    assert champion_from_eval({"eval/rougeL": 0.3}) is None
