"""Shared state on a real (temporary) Prefect server: claims that hold across threads and processes.

The inbox claim relies on the server's unique variable names; the cooldown claim and the DVC lock
on one-slot global concurrency limits. Processes (not threads) race for them here, since threads
of one process already share the in-process lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reviewops.config import Settings
from reviewops.monitoring import cooldown, inbox
from reviewops.orchestration import state
from tests.unit.monitoring.helpers import monitor_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def shared(prefect_api, monkeypatch, tmp_path) -> Settings:
    """Settings whose state resolves to Prefect (auto + PREFECT_API_URL), a work pool name of its own."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    base = monitor_settings(tmp_path, cooldown_minutes=60)
    return base.model_copy(update={"orchestration": base.orchestration.model_copy(update={"work_pool": tmp_path.name})})


def test_variables_round_trip_and_create_is_won_once(shared):
    name = state.variable_name(shared, "probe")
    assert state.get(name, "missing") == "missing"
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(state.create(name, {"n": 1}))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    state.put(name, {"n": 2})
    assert state.get(name) == {"n": 2}
    assert state.with_prefix(state.variable_name(shared, "")) == {name: {"n": 2}}
    state.delete(name)
    state.delete(name)  # absent: nothing happens
    assert state.get(name) is None


def test_inbox_ledger_in_variables(shared):
    box = Path(shared.drift.inbox_dir)
    box.mkdir()
    for n in ("a", "b"):
        (box / f"{n}.csv").write_text(f"text,rating\n{n},5\n")
    assert [p.name for p in inbox.pending_inbox_files(shared)] == ["a.csv", "b.csv"]
    assert inbox.claim_inbox(shared, box / "a.csv") and not inbox.claim_inbox(shared, box / "a.csv")
    assert [p.name for p in inbox.pending_inbox_files(shared)] == ["b.csv"]
    where = inbox.record_inbox(shared, box / "a.csv", "completed", {"action": "none: no drift"})
    assert where.startswith("prefect variable ") and not inbox.ledger_path(shared).exists()
    ledger = inbox.read_ledger(shared)
    assert list(ledger) == ["a.csv"] and ledger["a.csv"]["status"] == "completed" and ledger["a.csv"]["claimed_at"]


def test_a_stale_inbox_claim_in_variables_is_taken_over_by_one_claimant(shared):
    box = Path(shared.drift.inbox_dir)
    box.mkdir()
    (box / "a.csv").write_text("text,rating\na,5\n")
    name = inbox.entry_variable(shared, "a.csv", inbox.sha256_file(box / "a.csv"))
    dead = {"name": "a.csv", "sha256": "x", "status": "processing", "claimed_at": "2000-01-01T00:00:00Z"}
    state.put(name, dead)  # a worker claimed it long ago and was killed
    assert [p.name for p in inbox.pending_inbox_files(shared)] == ["a.csv"]
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(inbox.claim_inbox(shared, box / "a.csv"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 3 + [True]
    entry = state.get(name)
    assert entry["status"] == "processing" and entry["reclaimed_from"] == "2000-01-01T00:00:00Z"
    assert inbox.pending_inbox_files(shared) == []


_CLAIM = """
import json, sys, time
from reviewops.config import Settings
from reviewops.monitoring import cooldown
from reviewops.orchestration import locks
settings = Settings.model_validate_json(sys.argv[1])
out = {"claim": cooldown.claim_retrain(settings, sys.argv[2])["claimed"]}
with locks.dvc_lock(settings.orchestration):
    out["in"] = time.time(); time.sleep(1.0); out["out"] = time.time()
print(json.dumps(out))
"""


def test_two_processes_one_cooldown_claim_and_one_dvc_holder_at_a_time(shared, prefect_api):
    import os

    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    procs = [
        subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", _CLAIM, shared.model_dump_json(), f"batch-{i}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sorted(o["claim"] for o in outs) == [False, True]
    first, second = sorted(outs, key=lambda o: o["in"])
    assert second["in"] >= first["out"]  # the DVC slot: one holder at a time across processes
    stored = cooldown.read_cooldown_state(shared)
    assert len(stored["history"]) == 1 and stored["last_retrain"]["status"] == "claimed"
    assert not cooldown.state_path(shared).exists()
