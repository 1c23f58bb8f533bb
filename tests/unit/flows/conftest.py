"""Flows call quiet_output(), which sets progress-bar variables: each test gets them back as they were."""

from __future__ import annotations

import os

import pytest

from reviewops.cli.common import PROGRESS_BARS_OFF


@pytest.fixture(autouse=True)
def _restore_progress_env(monkeypatch):
    for key in PROGRESS_BARS_OFF:
        # setenv records the current state (absent or its value), so teardown puts it back.
        monkeypatch.setenv(key, os.environ.get(key, ""))
        if key not in os.environ or os.environ[key] == "":
            monkeypatch.delenv(key)
