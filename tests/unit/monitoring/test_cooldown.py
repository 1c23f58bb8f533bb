"""Retrain cooldown: the window after a drift-triggered retrain, and its history in state.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from reviewops.monitoring import cooldown
from tests.unit.monitoring.helpers import monitor_settings


def test_cooldown_window(tmp_path):
    settings = monitor_settings(tmp_path, cooldown_minutes=60)
    t0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert not cooldown.cooldown_active(settings, t0)
    cooldown.record_retrain(settings, {"batch": "b1", "run_id": "r1"}, now=t0)
    assert cooldown.cooldown_active(settings, t0 + timedelta(minutes=30))
    status = cooldown.cooldown_status(settings, t0 + timedelta(minutes=30))
    assert status["until"] == "2025-01-01T13:00:00Z" and status["last_retrain_at"] == "2025-01-01T12:00:00Z"
    assert not cooldown.cooldown_active(settings, t0 + timedelta(minutes=61))
    cooldown.record_retrain(settings, {"batch": "b2"}, now=t0 + timedelta(minutes=61))
    state = json.loads(cooldown.state_path(settings).read_text())
    assert [h["batch"] for h in state["history"]] == ["b1", "b2"]
    assert not cooldown.cooldown_active(monitor_settings(tmp_path, cooldown_minutes=0), t0 + timedelta(minutes=62))
