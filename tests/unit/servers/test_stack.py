"""`reviewops servers` without starting a server: an empty state folder, a taken port, the export lines, the CLI.

Starting and stopping the real servers is tests/integration/test_shared_mlflow.py.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reviewops.cli.app import app
from reviewops.errors import ReviewOpsError
from reviewops.servers import process, stack
from reviewops.servers.mlflow_server import mlflow_command


def test_an_empty_folder_has_no_servers_and_stop_is_a_no_op(tmp_path: Path) -> None:
    assert stack.status(tmp_path) == {"folder": str(tmp_path), "servers": {}, "exports": {}}
    assert stack.stop_stack(tmp_path)["stopped"] == {"postgres": False}
    result = CliRunner().invoke(app, ["servers", "status", "--folder", str(tmp_path)])
    assert result.exit_code == 0 and "run `reviewops servers start`" in result.output


def test_a_taken_port_names_the_option() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ReviewOpsError, match=f"port {port} on 127.0.0.1 is taken: choose another with --mlflow"):
            stack._require_free("127.0.0.1", port, "--mlflow-port")


def test_export_lines_and_status_of_a_dead_record(tmp_path: Path) -> None:
    record = {"name": "mlflow", "pid": 2**22 + 7, "started_at": 1.0, "port": 1, "url": "http://127.0.0.1:1", "log": ""}
    (tmp_path / stack.STATE_FILE).write_text(json.dumps({"mlflow": record}))
    assert not process.alive(record) and not process.stop(record)
    result = stack.status(tmp_path)
    assert result["servers"]["mlflow"]["up"] is False and result["exports"] == {}
    assert stack.export_lines({"exports": {"MLFLOW_TRACKING_URI": "http://h:5000"}}) == [
        "export MLFLOW_TRACKING_URI=http://h:5000"
    ]


def test_the_mlflow_server_keeps_artifacts_itself(tmp_path: Path) -> None:
    cmd = mlflow_command("postgresql://u@127.0.0.1:5/mlflow", tmp_path / "art", "127.0.0.1", 5001, workers=1)
    assert cmd[cmd.index("--backend-store-uri") + 1] == "postgresql://u@127.0.0.1:5/mlflow"
    assert "--serve-artifacts" in cmd and cmd[cmd.index("--artifacts-destination") + 1] == (tmp_path / "art").as_uri()
    assert cmd[cmd.index("--workers") + 1] == "1"


def test_a_server_for_other_machines_allows_this_machines_name(tmp_path: Path) -> None:
    cmd = mlflow_command("postgresql://u@127.0.0.1:5/mlflow", tmp_path, "0.0.0.0", 5001)
    allowed = cmd[cmd.index("--allowed-hosts") + 1].split(",")
    assert {socket.gethostname(), f"{socket.gethostname()}:*", "localhost", "10.*"} <= set(allowed)
