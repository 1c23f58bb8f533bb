"""The inbox ledger (``<reports_dir>/monitor/inbox_ledger.json``): each dropped batch file is processed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.monitoring.common import iso_utc, monitor_dir, read_state, utc_now
from reviewops.reports import sha256_file, write_json

LEDGER_FILE = "inbox_ledger.json"


def ledger_path(settings: Settings) -> Path:
    """``<reports_dir>/monitor/inbox_ledger.json``: which inbox files were processed, and how."""
    return monitor_dir(settings) / LEDGER_FILE


def pending_inbox_files(settings: Settings, inbox_dir: Path | str | None = None) -> list[Path]:
    """Supported files in the inbox not yet in the ledger (or changed since), oldest name first.

    Dot files (half-written ``.x.tmp``) and sub-folders are skipped.
    """
    from reviewops.data.ingest import SUPPORTED_SUFFIXES

    inbox = Path(inbox_dir or settings.drift.inbox_dir)
    if not inbox.is_dir():
        return []
    ledger = read_state(ledger_path(settings), {})
    files = sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
    )
    return [p for p in files if (ledger.get(p.name) or {}).get("sha256") != sha256_file(p)]


def record_inbox(settings: Settings, path: Path | str, status: str, detail: dict[str, Any] | None = None) -> Path:
    """Mark an inbox file as processed (``status``: completed / failed / …) so it is not picked again."""
    path = Path(path)
    ledger_file = ledger_path(settings)
    ledger = read_state(ledger_file, {})
    ledger[path.name] = {
        "sha256": sha256_file(path),
        "status": status,
        "processed_at": iso_utc(utc_now()),
        **(detail or {}),
    }
    return write_json(ledger_file, ledger)
