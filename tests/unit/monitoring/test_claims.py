"""Claims on one machine (orchestration.state local): an inbox file taken once, the cooldown claimed once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reviewops.monitoring import cooldown, inbox
from tests.unit.monitoring.helpers import monitor_settings


@pytest.fixture(autouse=True)
def _local_state(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # state: auto -> local files


def test_an_inbox_file_is_claimed_by_one_caller(tmp_path):
    settings = monitor_settings(tmp_path)
    box = Path(settings.drift.inbox_dir)
    box.mkdir()
    (box / "a.csv").write_text("text,rating\nok,5\n")
    wins: list[bool] = []
    threads = [
        threading.Thread(target=lambda: wins.append(inbox.claim_inbox(settings, box / "a.csv"))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert inbox.pending_inbox_files(settings) == []  # claimed: no other run picks it up
    assert inbox.read_ledger(settings)["a.csv"]["status"] == "processing"
    where = inbox.record_inbox(settings, box / "a.csv", "failed", {"error": "x" * 5000})
    entry = json.loads(Path(where).read_text())["a.csv"]
    assert entry["status"] == "failed" and len(entry["error"]) == inbox.MAX_TEXT and entry["claimed_at"]
    (box / "a.csv").write_text("text,rating\nchanged,1\n")  # a new version: claimable again
    assert inbox.claim_inbox(settings, box / "a.csv")


def _claim_in_threads(settings, path, n=8) -> list[bool]:
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(inbox.claim_inbox(settings, path))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(wins)


def test_a_dead_workers_claim_is_taken_over_once_after_the_timeout(tmp_path, caplog):
    settings = monitor_settings(tmp_path)
    box = Path(settings.drift.inbox_dir)
    box.mkdir()
    (box / "a.csv").write_text("text,rating\nok,5\n")
    assert inbox.claim_inbox(settings, box / "a.csv")  # then the worker is killed: no record_inbox
    assert inbox.pending_inbox_files(settings) == []  # a fresh claim is respected
    ledger = json.loads(inbox.ledger_path(settings).read_text())
    old = datetime.now(UTC) - timedelta(minutes=settings.drift.inbox_claim_timeout_minutes + 1)
    ledger["a.csv"]["claimed_at"] = old.strftime("%Y-%m-%dT%H:%M:%SZ")
    inbox.ledger_path(settings).write_text(json.dumps(ledger))
    assert inbox.is_stale(settings, ledger["a.csv"])
    assert [p.name for p in inbox.pending_inbox_files(settings)] == ["a.csv"]
    assert _claim_in_threads(settings, box / "a.csv") == [False] * 7 + [True]
    entry = inbox.read_ledger(settings)["a.csv"]
    assert entry["status"] == "processing" and entry["reclaimed_from"] == ledger["a.csv"]["claimed_at"]
    assert "taking it over" in caplog.text
    assert inbox.pending_inbox_files(settings) == []
    # finished claims never go stale, and timeout 0 waits forever
    inbox.record_inbox(settings, box / "a.csv", "completed")
    assert not inbox.is_stale(settings, {**inbox.read_ledger(settings)["a.csv"], "claimed_at": "2000-01-01T00:00:00Z"})
    forever = settings.model_copy(
        update={"drift": settings.drift.model_copy(update={"inbox_claim_timeout_minutes": 0})}
    )
    assert not inbox.is_stale(forever, {"status": "processing", "claimed_at": "2000-01-01T00:00:00Z"})


def test_cooldown_claim_is_check_and_start_in_one_step(tmp_path):
    settings = monitor_settings(tmp_path, cooldown_minutes=60)
    t0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    first = cooldown.claim_retrain(settings, "b1", now=t0)
    assert first["claimed"] and not first["active"]
    second = cooldown.claim_retrain(settings, "b2", now=t0 + timedelta(minutes=1))
    assert not second["claimed"] and second["active"] and second["until"] == "2025-01-01T13:00:00Z"
    # the re-tune finished: its record replaces the claim and restarts the window from then
    cooldown.record_retrain(settings, {"batch": "b1", "run_id": "r1"}, now=t0 + timedelta(minutes=10))
    state = cooldown.read_cooldown_state(settings)
    assert [(h["batch"], h.get("run_id")) for h in state["history"]] == [("b1", "r1")]
    assert cooldown.cooldown_status(settings, t0 + timedelta(minutes=65))["active"]  # 10 + 60 minutes
    assert cooldown.where(settings) == str(cooldown.state_path(settings))


def test_a_failed_retune_gives_the_window_back(tmp_path):
    settings = monitor_settings(tmp_path, cooldown_minutes=60)
    t0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    cooldown.record_retrain(settings, {"batch": "b0", "run_id": "r0"}, now=t0)
    later = t0 + timedelta(hours=2)
    assert cooldown.claim_retrain(settings, "b1", now=later)["claimed"]
    assert not cooldown.release_claim(settings, "other")  # only the claimant's batch
    assert cooldown.release_claim(settings, "b1")
    state = cooldown.read_cooldown_state(settings)
    assert state["last_retrain_at"] == "2025-01-01T12:00:00Z" and [h["batch"] for h in state["history"]] == ["b0"]
    assert cooldown.claim_retrain(settings, "b2", now=later)["claimed"]
