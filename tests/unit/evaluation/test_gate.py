"""The pure gate decision: floors, regression vs the champion, and the rendered tables."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from reviewops.config import GateConfig
from reviewops.errors import ReviewOpsError
from reviewops.evaluation import gate_decision
from reviewops.evaluation.gate import GateFailedError, candidate_metrics, champion_from_eval, decide


class CeilingGateConfig(GateConfig):
    """GateConfig as it reads once it has the ``max_contradiction_rate`` field."""

    max_contradiction_rate: float | None = 0.2


# Floors and regression only: the contradiction ceiling has its own tests below.
CFG = CeilingGateConfig(min_rougeL=0.10, min_macro_f1=0.50, max_regression=0.02, max_contradiction_rate=None)


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


# --------------------------------------------------------------------------- the contradiction ceiling

GOOD = {"eval/rougeL": 0.2, "eval/sentiment_macro_f1": 0.7}


def test_contradiction_ceiling_rejects_a_challenger_above_it():
    cfg = CeilingGateConfig(min_rougeL=0.10, min_macro_f1=0.50)
    ok = decide({**GOOD, "eval/contradiction_rate_macro": 0.2}, None, cfg)
    assert ok.passed  # exactly at the ceiling
    row = _rows(ok)["ceiling/contradiction_rate_macro"]
    assert (row.value, row.threshold, row.comparison, row.detail) == (0.2, 0.2, "<=", "gate.max_contradiction_rate")

    bad = decide({**GOOD, "eval/contradiction_rate_macro": 0.35}, {"eval/rougeL": 0.2}, cfg)
    assert [c.name for c in bad.failed_checks] == ["ceiling/contradiction_rate_macro"]
    assert [
        "ceiling/contradiction_rate_macro",
        "0.3500",
        "<= 0.2000",
        "FAIL",
        "gate.max_contradiction_rate",
    ] in bad.table()
    msg = str(GateFailedError(bad))
    assert "ceiling/contradiction_rate_macro" in msg and "<= 0.2000" in msg and "floor/rougeL" not in msg
    assert bad.to_dict()["checks"][2]["comparison"] == "<="


def test_missing_contradiction_rate_fails_a_set_ceiling():
    d = decide(GOOD, None, CeilingGateConfig())
    row = _rows(d)["ceiling/contradiction_rate_macro"]
    assert not d.passed and row.value is None
    assert row.detail == "eval/contradiction_rate_macro missing from evaluation"


def test_contradiction_ceiling_off_when_null_and_default_while_the_config_lacks_it(monkeypatch):
    high = {**GOOD, "eval/contradiction_rate_macro": 0.9}
    off = decide(high, None, CeilingGateConfig(max_contradiction_rate=None))
    assert off.passed and "ceiling/contradiction_rate_macro" not in _rows(off)
    assert any("gate.max_contradiction_rate is not set" in n for n in off.notes)
    # A config without the field reads the built-in default (None = off; a number caps).
    without_field = SimpleNamespace(**GateConfig().model_dump(exclude={"max_contradiction_rate"}))
    assert decide(high, None, without_field).passed
    monkeypatch.setitem(gate_decision.CEILING_DEFAULTS, "max_contradiction_rate", 0.5)
    capped = decide(high, None, without_field)
    assert [(c.name, c.threshold) for c in capped.failed_checks] == [("ceiling/contradiction_rate_macro", 0.5)]


def test_the_class_balanced_rate_is_the_one_capped():
    # Upbeat titles for most negative reviews hide in the plain share when reviews are mostly positive.
    result = {**GOOD, "eval/contradiction_rate": 0.1, "eval/contradiction_rate_macro": 0.3, "reference/x": 0.05}
    assert candidate_metrics(result) == {**GOOD, "eval/contradiction_rate": 0.1, "eval/contradiction_rate_macro": 0.3}
    d = decide(candidate_metrics(result), None, CeilingGateConfig())
    assert [(c.name, c.value) for c in d.failed_checks] == [("ceiling/contradiction_rate_macro", 0.3)]
