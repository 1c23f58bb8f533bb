"""The inbox ledger: each dropped batch file is processed once, by one worker.

``orchestration.state: local``: ``<reports_dir>/monitor/inbox_ledger.json`` (name -> entry), one
process at a time. ``prefect``: one Prefect variable per file version,
``<work_pool>_inbox_<sha256 of name + content, 32 hex>``. A worker claims a file by *creating*
that variable (:func:`claim_inbox`): the server keeps variable names unique, so exactly one
creator wins, whichever worker asks first; the others skip the file. The entry then goes from
``processing`` to ``completed``/``failed`` (:func:`record_inbox`). A file whose content changes
is a new version: processed again.

A worker killed mid-batch never records its outcome: its claim stays ``processing``. After
``drift.inbox_claim_timeout_minutes`` such a claim is stale: the file is pending again and the next
claimant takes it over (under the state lock, so one of several does), noting ``reclaimed_from``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.monitoring.common import iso_utc, monitor_dir, parse_iso_utc, read_state, utc_now
from reviewops.orchestration import locks, state
from reviewops.reports import sha256_file, write_json

LEDGER_FILE = "inbox_ledger.json"
PROCESSING = "processing"
MAX_TEXT = 2000  # an error message is cut here (a Prefect variable holds 5,000 characters of JSON)
_local_lock = threading.Lock()
logger = logging.getLogger(__name__)


def ledger_path(settings: Settings) -> Path:
    """``<reports_dir>/monitor/inbox_ledger.json``: which inbox files were processed, and how."""
    return monitor_dir(settings) / LEDGER_FILE


def entry_variable(settings: Settings, name: str, sha256: str) -> str:
    """The Prefect variable of one file version: ``<work_pool>_inbox_<32 hex>``."""
    key = hashlib.sha256(f"{name}\0{sha256}".encode()).hexdigest()[:32]
    return state.variable_name(settings, f"inbox_{key}")


def read_ledger(settings: Settings) -> dict[str, dict[str, Any]]:
    """File name -> its latest entry (``sha256``, ``status``, ``processed_at``, outcome details)."""
    if not state.settings_use_prefect(settings):
        return dict(read_state(ledger_path(settings), {}))
    entries = state.with_prefix(state.variable_name(settings, "inbox_")).values()
    ledger: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: e.get("claimed_at") or ""):
        ledger[entry["name"]] = entry
    return ledger


def _entry_of(settings: Settings, name: str, sha256: str) -> dict[str, Any] | None:
    if state.settings_use_prefect(settings):
        return state.get(entry_variable(settings, name, sha256), None)
    entry = read_state(ledger_path(settings), {}).get(name)
    return entry if entry and entry.get("sha256") == sha256 else None


def is_stale(settings: Settings, entry: dict[str, Any] | None, now: datetime | None = None) -> bool:
    """True for a ``processing`` claim older than ``drift.inbox_claim_timeout_minutes`` (its worker died)."""
    timeout = settings.drift.inbox_claim_timeout_minutes
    if not entry or entry.get("status") != PROCESSING or timeout <= 0:
        return False
    try:
        claimed = parse_iso_utc(str(entry.get("claimed_at")))
    except ValueError:
        return True  # a claim without a readable time can't be waited out
    return (utc_now(now) - claimed).total_seconds() > timeout * 60


def _takeover(settings: Settings, name: str, old: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    logger.warning(
        "inbox: %s was claimed at %s and is still 'processing' after %d minutes (its worker died?): taking it over",
        name,
        old.get("claimed_at"),
        settings.drift.inbox_claim_timeout_minutes,
    )
    return {**entry, "reclaimed_from": old.get("claimed_at")}


def pending_inbox_files(settings: Settings, inbox_dir: Path | str | None = None) -> list[Path]:
    """Supported files in the inbox not yet in the ledger (or changed since), oldest name first.

    Dot files (half-written ``.x.tmp``) and sub-folders are skipped.
    """
    from reviewops.data.ingest import SUPPORTED_SUFFIXES

    inbox = Path(inbox_dir or settings.drift.inbox_dir)
    if not inbox.is_dir():
        return []
    files = sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
    )
    now = utc_now()
    pending = []
    for p in files:
        entry = _entry_of(settings, p.name, sha256_file(p))
        if entry is None or is_stale(settings, entry, now):
            pending.append(p)
    return pending


def claim_inbox(settings: Settings, path: Path | str) -> bool:
    """Take ``path`` for this run (status ``processing``); False when it is already taken or processed."""
    path = Path(path)
    digest = sha256_file(path)
    entry = {"name": path.name, "sha256": digest, "status": PROCESSING, "claimed_at": iso_utc(utc_now())}
    if state.settings_use_prefect(settings):
        name = entry_variable(settings, path.name, digest)
        if state.create(name, entry):
            return True
        with locks.state_lock(settings.orchestration):  # one of several claimants takes a stale claim over
            current = state.get(name, None)
            if current is None:
                return state.create(name, entry)
            if not is_stale(settings, current):
                return False
            state.put(name, _takeover(settings, path.name, current, entry))
        return True
    with _local_lock:
        current = _entry_of(settings, path.name, digest)
        if current is not None and not is_stale(settings, current):
            return False
        ledger = read_state(ledger_path(settings), {})
        ledger[path.name] = entry if current is None else _takeover(settings, path.name, current, entry)
        write_json(ledger_path(settings), ledger)
    return True


def record_inbox(settings: Settings, path: Path | str, status: str, detail: dict[str, Any] | None = None) -> str:
    """Mark an inbox file as processed (``status``: completed / failed / …) so it is not picked again.

    Returns where the entry went (the ledger file, or ``prefect variable …``).
    """
    path = Path(path)
    digest = sha256_file(path)
    detail = {k: v[:MAX_TEXT] if isinstance(v, str) else v for k, v in (detail or {}).items()}
    entry = {"name": path.name, "sha256": digest, "status": status, "processed_at": iso_utc(utc_now()), **detail}
    if state.settings_use_prefect(settings):
        name = entry_variable(settings, path.name, digest)
        claimed = state.get(name, None) or {}
        state.put(name, {"claimed_at": claimed.get("claimed_at", entry["processed_at"]), **entry})
        return f"prefect variable {name}"
    with _local_lock:
        ledger = read_state(ledger_path(settings), {})
        claimed_at = (ledger.get(path.name) or {}).get("claimed_at")
        ledger[path.name] = {**entry, **({"claimed_at": claimed_at} if claimed_at else {})}
        return str(write_json(ledger_path(settings), ledger))
