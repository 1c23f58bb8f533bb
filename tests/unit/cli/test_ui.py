"""``reviewops ui`` as a user runs it: whole commands at any width, one-line errors, help that reads at 80 and 120."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reviewops.monitoring.uis import NAMES
from reviewops.testing.server import free_port
from tests.unit.cli.test_help import half_empty_lines
from tests.unit.monitoring.ui_state import empty_project, made_run

EXE = shutil.which("reviewops") or str(Path(sys.executable).with_name("reviewops"))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return empty_project(tmp_path, monkeypatch)


def _cli(*args: str, cwd: Path, columns: int = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "BENTOML_HOME")}
    return subprocess.run(
        [EXE, "ui", *args], cwd=cwd, capture_output=True, text=True, env={**env, "COLUMNS": str(columns)}, timeout=120
    )


def test_cli_lists_each_command_whole_on_its_own_line_even_at_60_columns(project):
    made_run(project)
    listing = _cli("--mlflow-port", str(free_port()), cwd=project)
    data = json.loads(_cli("--json", cwd=project).stdout)

    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert [u["name"] for u in data["uis"]] == list(NAMES) and data["started"] == [] and data["errors"] == []
    for entry in data["uis"]:
        assert entry["missing"] is None
        if entry["name"] != "mlflow":  # the listing used another MLflow port
            assert f"  start:   {entry['shell']}" in lines, entry["shell"]
    assert f"  open:    {data['uis'][2]['url']}" in lines


def test_cli_errors_are_one_line(project):
    bad = _cli("--start", "grafana", cwd=project)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        == "error: --start 'grafana': choose among mlflow, prefect, evidently, docs, bento or all (comma-separated)"
    )
    missing = _cli("--start", "mlflow", "--json", cwd=project)
    assert missing.returncode == 2 and json.loads(missing.stdout)["errors"] == [
        f"mlflow: no {project}/mlflow.db yet: run `make run` first"
    ]
    assert _cli("--stop", cwd=project).stdout.strip() == "nothing that `ui --start` started is running"


@pytest.mark.parametrize("columns", [80, 120])
def test_help_has_no_half_empty_lines(project, columns):
    """The installed script in a subprocess (test_help.py covers every command through CliRunner)."""
    proc = _cli("--help", cwd=project, columns=columns)
    assert proc.returncode == 0, proc.stderr
    assert half_empty_lines(proc.stdout, columns) == []
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    assert "   reviewops ui --start all" in lines and " Examples:" in lines
