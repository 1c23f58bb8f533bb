"""Inbox ledger: each dropped batch file is processed once (again only when its content changes)."""

from __future__ import annotations

from pathlib import Path

from reviewops.monitoring import inbox as inbox_ledger
from tests.unit.monitoring.helpers import monitor_settings


def test_inbox_ledger_processes_each_file_once(tmp_path):
    settings = monitor_settings(tmp_path)
    inbox = Path(settings.drift.inbox_dir)
    assert inbox_ledger.pending_inbox_files(settings) == []
    inbox.mkdir()
    (inbox / "a.csv").write_text("text,rating\nok,5\n")
    (inbox / ".b.csv.tmp").write_text("half")
    (inbox / "notes.txt").write_text("not a batch")
    assert [p.name for p in inbox_ledger.pending_inbox_files(settings)] == ["a.csv"]
    inbox_ledger.record_inbox(settings, inbox / "a.csv", "completed", {"action": "none: no drift"})
    assert inbox_ledger.pending_inbox_files(settings) == []
    (inbox / "a.csv").write_text("text,rating\nchanged,1\n")  # replaced content: processed again
    assert [p.name for p in inbox_ledger.pending_inbox_files(settings)] == ["a.csv"]
