"""``reviewops ui``: the commands for a project, up/down against real HTTP servers, start/stop, missing state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reviewops.cli import ui
from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.testing.server import free_port

EXE = shutil.which("reviewops") or str(Path(sys.executable).with_name("reviewops"))
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with no tracking/Prefect/BentoML server exported."""
    for var in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "BENTOML_HOME"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def _made_run(root: Path) -> None:
    """The files `make run` leaves that `reviewops ui` reads (contents as the stages write them)."""
    (root / "mlflow.db").write_bytes(b"")
    (root / ".prefect").mkdir()
    (root / ".prefect" / "prefect.db").write_bytes(b"")
    project = root / "reports" / "evidently_workspace" / "0193-abc"
    project.mkdir(parents=True)
    (project / "metadata.json").write_text(json.dumps({"id": "0193-abc", "name": "reviewops-drift"}))
    site = root / "great_expectations" / "gx" / "uncommitted" / "data_docs" / "local_site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html><body>validations</body></html>")
    (root / "reports" / "validation").mkdir(parents=True)
    (root / "reports" / "validation" / "raw.json").write_text(json.dumps({"data_docs": str(site / "index.html")}))
    bentos = root / "bentoml_home" / "bentos" / "reviewops"
    bentos.mkdir(parents=True)
    (bentos / "latest").write_text("v7abc\n")


def test_fresh_project_prints_every_command_and_says_what_is_missing(project):
    uis = {u.name: u for u in ui.describe(Settings(), {"prefect": 4300})}

    assert list(uis) == ["mlflow", "prefect", "evidently", "docs", "bento"]
    assert uis["mlflow"].shell() == (
        f"{BIN / 'mlflow'} ui --backend-store-uri sqlite:///{project}/mlflow.db"
        " --host 127.0.0.1 --port 5000 --workers 1"
    )
    assert uis["mlflow"].missing == f"no {project}/mlflow.db yet: run `make run` first"
    # the Prefect UI reads make run's PREFECT_HOME, with the UI on and its API on the chosen port
    assert uis["prefect"].shell() == (
        f"PREFECT_HOME={project}/.prefect PREFECT_UI_API_URL=http://127.0.0.1:4300/api "
        f"PREFECT_SERVER_ANALYTICS_ENABLED=false {BIN / 'prefect'} server start --host 127.0.0.1 --port 4300 --ui"
    )
    assert uis["prefect"].url == "http://127.0.0.1:4300/runs"
    assert uis["prefect"].missing == f"no flow run in {project}/.prefect yet: run `make run` first"
    assert uis["evidently"].shell() == (
        f"{BIN / 'evidently'} ui --workspace {project}/reports/evidently_workspace --host 127.0.0.1 --port 8000"
    )
    assert uis["evidently"].missing.startswith(f"no drift check in {project}/reports/evidently_workspace yet")
    site = project / "great_expectations" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert uis["docs"].command == [
        sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", str(site)
    ]  # fmt: skip
    assert uis["docs"].note == f"or open the file itself: file://{site}/index.html"
    assert (
        uis["bento"].missing
        == f"no reviewops Bento in {Path.home() / 'bentoml'} yet: run `make run` first (it packages the champion)"
    )
    assert {u.state for u in uis.values()} == {"down"}


def test_after_make_run_nothing_is_missing_and_links_name_the_state(project):
    _made_run(project)
    uis = {u.name: u for u in ui.describe(Settings())}

    assert {name: u.missing for name, u in uis.items()} == dict.fromkeys(ui.NAMES)
    assert uis["evidently"].url == "http://127.0.0.1:8000/projects/0193-abc"
    assert uis["bento"].shell() == (
        f"BENTOML_HOME={project}/bentoml_home {BIN / 'bentoml'} serve reviewops:v7abc --host 127.0.0.1 --port 3000"
    )
    assert uis["bento"].probe == "http://127.0.0.1:3000/readyz"
    assert uis["mlflow"].url == "http://127.0.0.1:5000/#/models?workflowType=machine_learning"


def test_servers_that_are_not_ours_are_linked_not_started(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ops:s3cret@127.0.0.1:5999")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4999/api")
    uis = {u.name: u for u in ui.describe(Settings())}

    assert uis["mlflow"].command is None and uis["mlflow"].url == "http://ops:***@127.0.0.1:5999"
    assert uis["prefect"].command is None and uis["prefect"].url == "http://127.0.0.1:4999"
    with pytest.raises(ReviewOpsError, match="mlflow: nothing to start"):
        ui.start(uis["mlflow"], project / "reports" / "ui", timeout=5)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 that answers 200 on /health and 404 elsewhere."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_up_down_and_taken_ports_are_told_apart(project, http_port):
    uis = {u.name: u for u in ui.describe(Settings(), {"mlflow": http_port, "prefect": http_port, "docs": free_port()})}

    assert ui.probe(uis["mlflow"]) == "up"  # GET /health -> 200
    assert ui.probe(uis["prefect"]) == "answering HTTP 404"  # something else holds the port
    assert ui.probe(uis["docs"]) == "down"
    assert ui.http_status(f"http://127.0.0.1:{http_port}/health") == 200
    _made_run(project)
    taken = ui.describe(Settings(), {"docs": http_port})[3]
    with pytest.raises(ReviewOpsError, match=f"docs: port {http_port} is taken \\(answering HTTP 404\\)"):
        ui.start(taken, project / "reports" / "ui", timeout=5)


def test_start_serves_the_data_docs_and_stop_ends_it(project):
    _made_run(project)
    folder = project / "reports" / "ui"
    docs = ui.describe(Settings(), {"docs": free_port()})[3]

    started = ui.start(docs, folder, timeout=60)
    try:
        assert started["started"] is True and started["url"] == docs.url
        assert ui.http_status(docs.url) == 200
        record = json.loads((folder / "docs.pid").read_text())
        assert record["pid"] == started["pid"] and record["command"] == docs.shell()
        assert ui.start(docs, folder, timeout=5) == {
            "name": "docs",
            "url": docs.url,
            "started": False,
            "note": "already up",
        }
    finally:
        stopped = ui.stop_started(folder, grace=10)
    assert stopped == [{"name": "docs", "pid": started["pid"], "stopped": True}]
    assert ui.probe(docs) == "down" and not (folder / "docs.pid").exists()


def test_start_refuses_missing_state_with_the_fix(project):
    mlflow = ui.describe(Settings())[0]
    with pytest.raises(ReviewOpsError, match=r"mlflow: no .*/mlflow.db yet: run `make run` first"):
        ui.start(mlflow, project / "reports" / "ui", timeout=5)


def test_stop_forgets_a_pid_that_is_now_another_process(project):
    folder = project / "reports" / "ui"
    folder.mkdir(parents=True)
    # our own pid with another start time: a reused pid, which must not be signalled
    (folder / "mlflow.pid").write_text(json.dumps({"pid": os.getpid(), "started_at": 1.0}))
    assert ui.stop_started(folder) == [{"name": "mlflow", "pid": os.getpid(), "stopped": False}]
    assert not (folder / "mlflow.pid").exists()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "BENTOML_HOME")}
    return subprocess.run(
        [EXE, "ui", *args], cwd=cwd, capture_output=True, text=True, env={**env, "COLUMNS": "60"}, timeout=120
    )


def test_cli_lists_each_command_whole_on_its_own_line_even_at_60_columns(project):
    _made_run(project)
    listing = _cli("--mlflow-port", str(free_port()), cwd=project)
    data = json.loads(_cli("--json", cwd=project).stdout)

    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert [u["name"] for u in data["uis"]] == list(ui.NAMES) and data["started"] == [] and data["errors"] == []
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
