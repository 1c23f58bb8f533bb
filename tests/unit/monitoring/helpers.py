"""Helpers shared by the monitoring tests: settings with every path under a temporary folder."""

from __future__ import annotations

from pathlib import Path

from reviewops.config import Settings


def monitor_settings(tmp_path: Path, **drift) -> Settings:
    """Settings whose reports, processed, raw, interim and inbox folders are under ``tmp_path``."""
    return Settings(
        paths={
            "reports_dir": str(tmp_path / "reports"),
            "processed_dir": str(tmp_path / "processed"),
            "raw_dir": str(tmp_path / "raw"),
            "interim_dir": str(tmp_path / "interim"),
        },
        drift={"inbox_dir": str(tmp_path / "inbox"), **drift},
    )
