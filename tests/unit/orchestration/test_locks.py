"""The in-process half of the cross-worker locks: one holder at a time, re-entrant in one thread."""

from __future__ import annotations

import threading
import time

from reviewops.config import OrchestrationConfig
from reviewops.orchestration import locks

LOCAL = OrchestrationConfig(state="local")


def test_one_holder_at_a_time_across_threads():
    inside, overlaps = [], []

    def work(i: int) -> None:
        with locks.dvc_lock(LOCAL):
            if inside:
                overlaps.append(i)
            inside.append(i)
            time.sleep(0.02)
            inside.remove(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and inside == []


def test_reentrant_in_one_thread_and_separate_per_name():
    with locks.dvc_lock(LOCAL), locks.dvc_lock(LOCAL), locks.state_lock(LOCAL):
        got = []
        t = threading.Thread(target=lambda: got.append(locks._locks["reviewops-dvc"].acquire(timeout=0.05)))
        t.start()
        t.join()
        assert got == [False]  # another thread waits while this one holds it
    assert locks._locks["reviewops-dvc"].acquire(timeout=0.05)
    locks._locks["reviewops-dvc"].release()


def test_use_sets_what_dvc_calls_follow():
    before = locks.active()
    try:
        locks.use(OrchestrationConfig(dvc_limit="team-dvc", state="local"))
        with locks.dvc_lock():
            assert "team-dvc" in locks._locks
    finally:
        locks.use(before)
