"""The monitor flow's scoring step: a failed scoring is a warning, and the drift check predicts as before."""

from __future__ import annotations

import logging

from flows import monitor

from reviewops.config import Settings


class _State:
    def __init__(self, ok: bool, result):
        self.ok, self._result = ok, result

    def is_completed(self) -> bool:
        return self.ok

    def result(self, raise_on_failure: bool = True):
        return self._result


def _patch(monkeypatch, state: _State) -> list:
    calls = []

    def fake_task(*args, return_state=False):
        calls.append((args, return_state))
        return state

    monkeypatch.setattr(monitor.score, "score_batch", fake_task)
    monkeypatch.setattr(monitor, "get_run_logger", lambda: logging.getLogger("test-monitor"))
    return calls


def test_score_step_scores_the_batch_into_the_scored_dataset(monkeypatch, tmp_path):
    settings = Settings(score={"out_dir": str(tmp_path / "scored"), "summaries": "none"})
    calls = _patch(monkeypatch, _State(True, {"counts": {"input_rows": 2, "scored": 2}}))
    out = monitor._score(settings, "data/inbox/b.csv", "b")
    assert calls == [((settings, "data/inbox/b.csv", str(tmp_path / "scored"), "b", "none"), True)]
    assert out["ok"] and out["out_dir"] == str(tmp_path / "scored") and out["batch"] == "b"
    rows = monitor._scoring_rows({"scoring": out, "drift": {"predictions": {"current": "scored dataset"}}})
    assert rows["scored"].startswith("input_rows=2 scored=2")
    assert rows["predicted sentiment (current side)"] == "scored dataset"


def test_failed_scoring_falls_back_to_champion_predictions(monkeypatch, caplog):
    _patch(monkeypatch, _State(False, RuntimeError("ray did not start")))
    with caplog.at_level(logging.WARNING, logger="test-monitor"):
        out = monitor._score(Settings(), "b.csv", "b")
    assert out["ok"] is False and "ray did not start" in out["error"]
    assert "champion's predictions" in out["note"] and "out_dir" not in out  # the drift check gets scored=None
    assert "falls back to the champion's predictions" in caplog.text
    assert monitor._scoring_rows({"scoring": out, "drift": {}})["scored"].startswith("FAILED (ray did not start")
