"""Starting an operator UI for real (the Data Docs' http.server), stopping it, and never signalling a reused pid."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import reviewops.monitoring.uis as ui
from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.ui_servers import start, stop_started
from reviewops.testing.server import free_port
from tests.unit.monitoring.ui_state import empty_project, made_run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return empty_project(tmp_path, monkeypatch)


def test_start_serves_the_data_docs_and_stop_ends_it(project):
    made_run(project)
    folder = project / "reports" / "ui"
    docs = ui.describe(Settings(), {"docs": free_port()})[3]

    started = start(docs, folder, timeout=60)
    try:
        assert started["started"] is True and started["url"] == docs.url
        assert ui.http_status(docs.url) == 200
        record = json.loads((folder / "docs.pid").read_text())
        assert record["pid"] == started["pid"] and record["command"] == docs.shell()
        assert start(docs, folder, timeout=5) == {
            "name": "docs",
            "url": docs.url,
            "started": False,
            "note": "already up",
        }
    finally:
        stopped = stop_started(folder, grace=10)
    assert stopped == [{"name": "docs", "pid": started["pid"], "stopped": True}]
    assert ui.probe(docs) == "down" and not (folder / "docs.pid").exists()


def test_start_refuses_missing_state_with_the_fix(project):
    mlflow = ui.describe(Settings())[0]
    with pytest.raises(ReviewOpsError, match=r"mlflow: no .*/mlflow.db yet: run `make run` first"):
        start(mlflow, project / "reports" / "ui", timeout=5)


def test_stop_forgets_a_pid_that_is_now_another_process(project):
    folder = project / "reports" / "ui"
    folder.mkdir(parents=True)
    # our own pid with another start time: a reused pid, which must not be signalled
    (folder / "mlflow.pid").write_text(json.dumps({"pid": os.getpid(), "started_at": 1.0}))
    assert stop_started(folder) == [{"name": "mlflow", "pid": os.getpid(), "stopped": False}]
    assert not (folder / "mlflow.pid").exists()
