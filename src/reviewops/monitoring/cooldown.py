"""The retrain cooldown: when the last drift-triggered retrain ran (``<reports_dir>/monitor/state.json``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.monitoring.common import iso_utc, monitor_dir, read_state, utc_now
from reviewops.reports import write_json

STATE_FILE = "state.json"
HISTORY = 50


def state_path(settings: Settings) -> Path:
    """``<reports_dir>/monitor/state.json``."""
    return monitor_dir(settings) / STATE_FILE


def cooldown_status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Whether a drift-triggered retrain ran less than ``drift.cooldown_minutes`` ago.

    Returns ``active``, ``last_retrain_at``, ``until`` (ISO times or None) and ``minutes``.
    """
    now = utc_now(now)
    state = read_state(state_path(settings), {})
    minutes = settings.drift.cooldown_minutes
    last = state.get("last_retrain_at")
    out = {"active": False, "last_retrain_at": last, "until": None, "minutes": minutes}
    if last and minutes > 0:
        until = datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(minutes=minutes)
        out.update(active=now < until, until=iso_utc(until))
    return out


def cooldown_active(settings: Settings, now: datetime | None = None) -> bool:
    """True while the last drift-triggered retrain is younger than ``drift.cooldown_minutes``."""
    return bool(cooldown_status(settings, now)["active"])


def record_retrain(settings: Settings, info: dict[str, Any] | None = None, now: datetime | None = None) -> Path:
    """Record a drift-triggered retrain (starts the cooldown); keeps the last 50 in ``history``."""
    path = state_path(settings)
    state = read_state(path, {})
    entry = {"at": iso_utc(utc_now(now)), **(info or {})}
    state["last_retrain_at"] = entry["at"]
    state["last_retrain"] = entry
    state["history"] = ([*state.get("history", []), entry])[-HISTORY:]
    return write_json(path, state)
