"""The retrain cooldown: when the last drift-triggered retrain ran.

Stored in ``<reports_dir>/monitor/state.json`` (``orchestration.state: local``) or the Prefect
variable ``<work_pool>_cooldown`` (``prefect``: every worker sees it). :func:`claim_retrain` checks
the window and records the new retrain in one step under
:func:`reviewops.orchestration.locks.state_lock` (a one-slot Prefect global concurrency limit
across workers), so of two workers that see drift at once exactly one re-tunes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.monitoring.common import iso_utc, monitor_dir, parse_iso_utc, read_state, utc_now
from reviewops.orchestration import locks, state
from reviewops.reports import write_json

STATE_FILE = "state.json"
HISTORY = 50
PREFECT_HISTORY = 15  # a Prefect variable holds at most 5,000 characters of JSON
VARIABLE_KEY = "cooldown"


def state_path(settings: Settings) -> Path:
    """``<reports_dir>/monitor/state.json``."""
    return monitor_dir(settings) / STATE_FILE


def where(settings: Settings) -> str:
    """The state file, or ``prefect variable <name>``."""
    if state.settings_use_prefect(settings):
        return f"prefect variable {state.variable_name(settings, VARIABLE_KEY)}"
    return str(state_path(settings))


def read_cooldown_state(settings: Settings) -> dict[str, Any]:
    """The stored state: ``last_retrain_at``, ``last_retrain`` and ``history`` ({} before any retrain)."""
    if state.settings_use_prefect(settings):
        return dict(state.get(state.variable_name(settings, VARIABLE_KEY), None) or {})
    return dict(read_state(state_path(settings), {}))


def _write(settings: Settings, data: dict[str, Any]) -> str:
    if state.settings_use_prefect(settings):
        data["history"] = data.get("history", [])[-PREFECT_HISTORY:]
        state.put(state.variable_name(settings, VARIABLE_KEY), data)
        return where(settings)
    return str(write_json(state_path(settings), data))


def status_of(data: dict[str, Any], minutes: float, now: datetime) -> dict[str, Any]:
    """``active``, ``last_retrain_at``, ``until`` and ``minutes`` of a stored state at ``now``."""
    last = data.get("last_retrain_at")
    out = {"active": False, "last_retrain_at": last, "until": None, "minutes": minutes}
    if last and minutes > 0:
        until = parse_iso_utc(last) + timedelta(minutes=minutes)
        out.update(active=now < until, until=iso_utc(until))
    return out


def cooldown_status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Whether a drift-triggered retrain ran less than ``drift.cooldown_minutes`` ago.

    Returns ``active``, ``last_retrain_at``, ``until`` (ISO times or None) and ``minutes``.
    """
    return status_of(read_cooldown_state(settings), settings.drift.cooldown_minutes, utc_now(now))


def cooldown_active(settings: Settings, now: datetime | None = None) -> bool:
    """True while the last drift-triggered retrain is younger than ``drift.cooldown_minutes``."""
    return bool(cooldown_status(settings, now)["active"])


def _append(data: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    data["last_retrain_at"] = entry["at"]
    data["last_retrain"] = entry
    data["history"] = [*data.get("history", []), entry][-HISTORY:]
    return data


def record_retrain(settings: Settings, info: dict[str, Any] | None = None, now: datetime | None = None) -> str:
    """Record a drift-triggered retrain (starts the cooldown); keeps the last ones in ``history``.

    A retrain of a batch that already claimed the window (:func:`claim_retrain`) replaces that
    claim's entry. Returns where it was written (file path or ``prefect variable …``).
    """
    entry = {"at": iso_utc(utc_now(now)), **(info or {})}
    with locks.state_lock(settings.orchestration):
        data = read_cooldown_state(settings)
        last = data.get("last_retrain") or {}
        if last.get("status") == "claimed" and last.get("batch") == entry.get("batch"):
            data["history"] = data.get("history", [])[:-1]
        return _write(settings, _append(data, entry))


def claim_retrain(settings: Settings, batch: str, now: datetime | None = None) -> dict[str, Any]:
    """Check the cooldown and, when it is over, start it for ``batch``: one atomic step across workers.

    Returns :func:`cooldown_status` as it was, plus ``claimed`` (True: this caller re-tunes; the
    window now runs from this moment). A failed re-tune gives the window back with
    :func:`release_claim`.
    """
    now = utc_now(now)
    with locks.state_lock(settings.orchestration):
        data = read_cooldown_state(settings)
        status = status_of(data, settings.drift.cooldown_minutes, now)
        if status["active"]:
            return {**status, "claimed": False}
        previous = {k: v for k, v in (data.get("last_retrain") or {}).items() if k != "previous"} or None
        entry = {"at": iso_utc(now), "batch": batch, "status": "claimed", "previous": previous}
        where_ = _write(settings, _append(data, entry))
    return {**status, "claimed": True, "state": where_}


def release_claim(settings: Settings, batch: str) -> bool:
    """Undo :func:`claim_retrain` of ``batch`` when its re-tune failed (the next drifted batch may re-tune)."""
    with locks.state_lock(settings.orchestration):
        data = read_cooldown_state(settings)
        last = data.get("last_retrain") or {}
        if last.get("status") != "claimed" or last.get("batch") != batch:
            return False
        data["history"] = data.get("history", [])[:-1]
        previous = last.get("previous")
        data["last_retrain"] = previous
        data["last_retrain_at"] = (previous or {}).get("at")
        _write(settings, data)
    return True
