"""What the monitoring modules share: the monitor folder, UTC timestamps, the progress callback and state files."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import read_json

Log = Callable[[str], None]


def noop(_: str) -> None:
    """A progress callback that says nothing."""


def utc_now(now: datetime | None = None) -> datetime:
    """``now`` (default: the current time) as an aware datetime; a naive one is taken as UTC."""
    now = now or datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def iso_utc(ts: datetime) -> str:
    """``2025-01-01T12:00:00Z``: the timestamp format of the state files."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> datetime:
    """The aware datetime of an :func:`iso_utc` string (``...Z``). Raises ValueError on other text."""
    return utc_now(datetime.fromisoformat(text.replace("Z", "+00:00")))


def monitor_dir(settings: Settings) -> Path:
    """``<reports_dir>/monitor``: cooldown state, inbox ledger and one summary per batch."""
    return Path(settings.paths.reports_dir) / "monitor"


def read_state(path: Path, default: Any) -> Any:
    """:func:`reviewops.reports.read_json`, with an error that says what to do about a broken file.

    Raises:
        ReviewOpsError: the file exists but is not valid JSON.
    """
    try:
        return read_json(path, default)
    except json.JSONDecodeError as exc:
        raise ReviewOpsError(f"{path}: not valid JSON ({exc}); fix or delete the file") from None
