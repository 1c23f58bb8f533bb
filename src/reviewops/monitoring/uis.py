"""The five operator UIs of a project on 127.0.0.1: where each answers, how to start it, what it lacks.

The MLflow UI (runs, registry, aliases), the Prefect UI (``make run``'s flow runs: the same
``PREFECT_HOME``, the UI switched on, its API URL on the chosen port), the Evidently UI (the drift
workspace), the Great Expectations Data Docs (a file, or served by ``python -m http.server``) and
the champion Bento's Swagger page. For each one: a ready-to-paste command on one line, whether
something already answers on its port (:func:`probe`), and what is missing when ``make run`` has
not made it yet. Starting and stopping them is :mod:`reviewops.monitoring.ui_servers`; the
command is ``reviewops ui`` (:mod:`reviewops.cli.ui`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewops.config import Settings

HOST = "127.0.0.1"
NAMES = ("mlflow", "prefect", "evidently", "docs", "bento")
BENTO_NAME = "reviewops"  # bentofile.yaml's name
EVIDENTLY_PROJECT = "reviewops-drift"  # reviewops.monitoring.outputs.WORKSPACE_PROJECT (not imported: heavy)
RUN_FIRST = "run `make run` first"


@dataclass
class Ui:
    """One operator UI: where it answers, how to start it, and what it still lacks."""

    name: str
    title: str
    port: int | None
    url: str | None  # the page to open
    probe: str | None  # a URL that answers 2xx when this UI is up
    command: list[str] | None = None  # argv that serves it (None: a file, or a server that is not ours)
    env: dict[str, str] = field(default_factory=dict)  # variables the command needs, shown before it
    missing: str | None = None  # what ``make run`` has not made yet, and the fix
    note: str | None = None
    state: str = "down"  # up | down | answering HTTP <code> | not checked

    def shell(self) -> str | None:
        """The command as one line to paste into a shell (variables first)."""
        if not self.command:
            return None
        assigns = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        return " ".join([*assigns, shlex.join(self.command)])


DEFAULT_PORTS = {"mlflow": 5000, "prefect": 4200, "evidently": 8000, "docs": 8080, "bento": 3000}


def _exe(name: str) -> str:
    """A console script of this Python's environment (absolute: the line works from any folder)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _mlflow(port: int) -> Ui:
    from reviewops.registry.tracking import redact, sqlite_path, tracking_uri

    uri = tracking_uri()
    title = "MLflow UI: runs, model registry, champion/challenger aliases"
    if uri.startswith(("http://", "https://")):
        note = "runs go to this tracking server ($MLFLOW_TRACKING_URI): its own UI, nothing to start"
        return Ui("mlflow", title, None, redact(uri), f"{uri.rstrip('/')}/health", note=note)
    base = f"http://{HOST}:{port}"
    cmd = [_exe("mlflow"), "ui", "--backend-store-uri", uri, "--host", HOST, "--port", str(port), "--workers", "1"]
    db = sqlite_path(uri)
    missing = f"no {db} yet: {RUN_FIRST}" if db is not None and not db.exists() else None
    return Ui(
        "mlflow", title, port, f"{base}/#/models?workflowType=machine_learning", f"{base}/health", cmd, missing=missing
    )


def _prefect(root: Path, port: int) -> Ui:
    title = "Prefect UI: make run's flow runs, their logs and artifacts"
    api = os.environ.get("PREFECT_API_URL", "").strip()
    if api:
        note = "flows report to this server ($PREFECT_API_URL): its own UI, nothing to start"
        return Ui("prefect", title, None, api.removesuffix("/api"), f"{api.rstrip('/')}/health", note=note)
    home = root / ".prefect"
    base = f"http://{HOST}:{port}"
    env = {"PREFECT_HOME": str(home), "PREFECT_UI_API_URL": f"{base}/api", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [_exe("prefect"), "server", "start", "--host", HOST, "--port", str(port), "--ui"]
    missing = None if (home / "prefect.db").exists() else f"no flow run in {home} yet: {RUN_FIRST}"
    return Ui("prefect", title, port, f"{base}/runs", f"{base}/api/health", cmd, env, missing)


def evidently_project(workspace: Path) -> str | None:
    """The id of the drift project in an Evidently workspace folder, if a drift check made it."""
    for meta in sorted(workspace.glob("*/metadata.json")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if data.get("name") == EVIDENTLY_PROJECT:
            return str(data.get("id") or meta.parent.name)
    return None


def _evidently(root: Path, reports: Path, port: int) -> Ui:
    workspace = (root / reports / "evidently_workspace").resolve()
    base = f"http://{HOST}:{port}"
    project = evidently_project(workspace)
    cmd = [_exe("evidently"), "ui", "--workspace", str(workspace), "--host", HOST, "--port", str(port)]
    missing = None if project else f"no drift check in {workspace} yet: {RUN_FIRST} (its monitor step adds one)"
    url = f"{base}/projects/{project}" if project else base
    title = "Evidently UI: drift over batches (dashboard) and one snapshot per batch"
    return Ui("evidently", title, port, url, f"{base}/", cmd, missing=missing)


def docs_index(root: Path, settings: Settings) -> Path:
    """The Data Docs index: the one the last validation of data/raw wrote, else GX's default place."""
    report = root / settings.paths.reports_dir / "validation" / "raw.json"
    try:
        written = json.loads(report.read_text()).get("data_docs")
    except (OSError, ValueError):
        written = None
    if written:
        return (root / written).resolve()
    site = root / settings.paths.gx_dir / "gx" / "uncommitted" / "data_docs" / "local_site"
    return (site / "index.html").resolve()


def _docs(root: Path, settings: Settings, port: int) -> Ui:
    index = docs_index(root, settings)
    base = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(index.parent)]
    title = "Data Docs: Great Expectations validations and the quarantine (static pages)"
    missing = None if index.exists() else f"no {index} yet: {RUN_FIRST}"
    note = f"or open the file itself: {index.as_uri()}"
    return Ui("docs", title, port, f"{base}/{index.name}", f"{base}/{index.name}", cmd, missing=missing, note=note)


def bentoml_home(root: Path) -> Path:
    """$BENTOML_HOME, else the project's ``bentoml_home/`` (where ``make run`` packages), else ~/bentoml."""
    env = os.environ.get("BENTOML_HOME", "").strip()
    if env:
        return Path(env).resolve()
    local = root / "bentoml_home"
    return local.resolve() if local.is_dir() else Path.home() / "bentoml"


def _bento(root: Path, port: int) -> Ui:
    home = bentoml_home(root)
    latest = home / "bentos" / BENTO_NAME / "latest"
    tag = f"{BENTO_NAME}:{latest.read_text().strip()}" if latest.is_file() else None
    base = f"http://{HOST}:{port}"
    cmd = [_exe("bentoml"), "serve", tag or f"{BENTO_NAME}:latest", "--host", HOST, "--port", str(port)]
    missing = None if tag else f"no {BENTO_NAME} Bento in {home} yet: {RUN_FIRST} (it packages the champion)"
    note = "with $REVIEWOPS_API_TOKEN set the page and the API want 'Authorization: Bearer <token>'"
    title = "Champion Bento: Swagger page of the HTTP API (/analyze, /summarize, /sentiment)"
    return Ui("bento", title, port, f"{base}/", f"{base}/readyz", cmd, {"BENTOML_HOME": str(home)}, missing, note)


def describe(settings: Settings, ports: dict[str, int] | None = None, root: Path | None = None) -> list[Ui]:
    """The five UIs of the project at ``root`` (default: the working directory), not yet probed."""
    root, port = (root or Path.cwd()).resolve(), {**DEFAULT_PORTS, **(ports or {})}
    return [
        _mlflow(port["mlflow"]),
        _prefect(root, port["prefect"]),
        _evidently(root, Path(settings.paths.reports_dir), port["evidently"]),
        _docs(root, settings, port["docs"]),
        _bento(root, port["bento"]),
    ]


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status a GET of ``url`` answers, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback or the user's own server
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def probe(ui: Ui, timeout: float = 1.0) -> str:
    """Set and return ``ui.state``: ``up`` (2xx/3xx), ``answering HTTP <code>``, or ``down``."""
    status = http_status(ui.probe, timeout) if ui.probe else None
    ui.state = "down" if status is None else "up" if status < 400 else f"answering HTTP {status}"
    return ui.state


def render(uis: list[Ui], started: list[dict[str, Any]]) -> str:
    """The listing for people: per UI a heading line, then each URL or command alone on its line."""
    lines = ["ReviewOps UIs on 127.0.0.1 (each command is one line: paste it as it is)"]
    by_name = {entry["name"]: entry for entry in started}
    for ui in uis:
        lines.append(f"{ui.title} [{ui.name}]: {ui.state.upper() if ui.state == 'up' else ui.state}")
        if ui.url:
            lines.append(f"  open:    {ui.url}")
        if ui.missing:
            lines.append(f"  missing: {ui.missing}")
        if ui.name in by_name and by_name[ui.name].get("log"):
            lines.append(f"  started: pid {by_name[ui.name]['pid']}, log {by_name[ui.name]['log']}")
        elif ui.command and ui.state != "up":
            lines.append(f"  start:   {ui.shell()}")
        if ui.note:
            lines.append(f"  note:    {ui.note}")
    if started:
        lines.append("Stop what was started here: reviewops ui --stop")
    return "\n".join(lines)
