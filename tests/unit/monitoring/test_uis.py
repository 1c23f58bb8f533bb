"""The operator UIs' catalogue: the commands for a project, what is missing, up/down against real HTTP servers."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import reviewops.monitoring.uis as ui
from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.ui_servers import start
from reviewops.testing.server import free_port
from tests.unit.monitoring.ui_state import empty_project, made_run

BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return empty_project(tmp_path, monkeypatch)


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
    made_run(project)
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
        start(uis["mlflow"], project / "reports" / "ui", timeout=5)


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
    made_run(project)
    taken = ui.describe(Settings(), {"docs": http_port})[3]
    with pytest.raises(ReviewOpsError, match=f"docs: port {http_port} is taken \\(answering HTTP 404\\)"):
        start(taken, project / "reports" / "ui", timeout=5)
