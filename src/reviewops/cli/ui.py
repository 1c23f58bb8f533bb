"""CLI for operators: ``reviewops ui`` lists, starts and stops the five UIs of a project on 127.0.0.1.

The MLflow UI (runs, registry, aliases), the Prefect UI (``make run``'s flow runs: the same
``PREFECT_HOME``, the UI switched on, its API URL on the chosen port), the Evidently UI (the drift
workspace), the Great Expectations Data Docs (a file, or served by ``python -m http.server``) and
the champion Bento's Swagger page. For each one: a ready-to-paste command on one line, whether
something already answers on its port, and what is missing when ``make run`` has not made it yet.
``--start`` runs the chosen ones in the background (own process group, log and pid file under
``reports/ui/``); ``--stop`` ends those, and only those.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from reviewops.cli.common import JSON_OPTION, emit, get_settings, out_console
from reviewops.config import Settings
from reviewops.errors import ReviewOpsError

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


# --------------------------------------------------------------------------- start / stop


def start(ui: Ui, folder: Path, timeout: float) -> dict[str, Any]:
    """Start ``ui`` in its own process group, wait until its probe answers 2xx; its pid file and log.

    Raises:
        ReviewOpsError: it cannot be started here, its port is taken, it exited, or it did not answer in time.
    """
    if ui.missing:
        raise ReviewOpsError(f"{ui.name}: {ui.missing}")
    if not ui.command:
        raise ReviewOpsError(f"{ui.name}: nothing to start ({ui.note})")
    if probe(ui) == "up":
        return {"name": ui.name, "url": ui.url, "started": False, "note": "already up"}
    if ui.state != "down":
        raise ReviewOpsError(f"{ui.name}: port {ui.port} is taken ({ui.state}): choose another with --{ui.name}-port")
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{ui.name}.log"
    env = {**os.environ, "DO_NOT_TRACK": "1", **ui.env}
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            ui.command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    record = {"pid": proc.pid, "started_at": _create_time(proc.pid), "port": ui.port, "command": ui.shell()}
    (folder / f"{ui.name}.pid").write_text(json.dumps(record))
    waited = _wait_up(ui, proc, log, timeout)
    return {"name": ui.name, "url": ui.url, "started": True, "pid": proc.pid, "log": str(log), "seconds": waited}


def _wait_up(ui: Ui, proc: subprocess.Popen, log: Path, timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if proc.poll() is not None:
            raise ReviewOpsError(f"{ui.name} exited with status {proc.returncode}: see {log}")
        if probe(ui) == "up":
            return round(time.monotonic() - began, 1)
        time.sleep(0.5)
    raise ReviewOpsError(f"{ui.name} did not answer {ui.probe} within {timeout:.0f} s (still running): see {log}")


def _create_time(pid: int) -> float | None:
    import psutil

    with contextlib.suppress(psutil.Error):
        return float(psutil.Process(pid).create_time())
    return None


def stop_started(folder: Path, grace: float = 15.0) -> list[dict[str, Any]]:
    """SIGTERM (then SIGKILL) the process group of each UI started by ``--start``; remove its pid file.

    A pid whose process is gone, or belongs to a later process (another start time), is only forgotten.
    """
    stopped = []
    for pid_file in sorted(folder.glob("*.pid")) if folder.is_dir() else []:
        try:
            record = json.loads(pid_file.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pid_file.unlink(missing_ok=True)
            continue
        ours = record.get("started_at") is not None and _create_time(pid) == record["started_at"]
        if ours:
            _kill_group(pid, grace)
        pid_file.unlink(missing_ok=True)
        stopped.append({"name": pid_file.stem, "pid": pid, "stopped": ours})
    return stopped


def _kill_group(pid: int, grace: float) -> None:
    import psutil

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # the group start() created (start_new_session): the server and its workers
        with contextlib.suppress(psutil.Error):  # gone already, or still there after ``wait`` s: next signal
            psutil.Process(pid).wait(timeout=wait)
            return


# --------------------------------------------------------------------------- the command


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


def _chosen(start: str) -> list[str]:
    names = list(NAMES) if start.strip() == "all" else [n.strip() for n in start.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        raise ReviewOpsError(f"--start {start!r}: choose among {', '.join(NAMES)} or all (comma-separated)")
    return names


def _start_all(uis: list[Ui], names: list[str], folder: Path, timeout: float) -> tuple[list[dict], list[str]]:
    """Start each chosen UI; a UI that cannot start is an error line, the others still start."""
    started, errors = [], []
    for ui in uis:
        if ui.name not in names:
            continue
        try:
            started.append(start(ui, folder, timeout))
        except ReviewOpsError as exc:
            errors.append(str(exc))
    return started, errors


StartOption = Annotated[
    str | None,
    typer.Option(
        "--start",
        metavar="NAME|all",
        help=f"Start these in the background and wait until each answers: {', '.join(NAMES)} (comma-separated) "
        "or all. Logs and pid files go to reports/ui/.",
    ),
]
StopOption = Annotated[
    bool, typer.Option("--stop", help="Stop every UI that --start started (pid files in reports/ui/).")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each started UI to answer.")]


def _port(name: str) -> Any:
    return typer.Option(DEFAULT_PORTS[name], f"--{name}-port", min=1, max=65535, help=f"Port of the {name} UI.")


def ui_cmd(
    ctx: typer.Context,
    start_: StartOption = None,
    stop: StopOption = False,
    timeout: TimeoutOption = 180.0,
    mlflow_port: int = _port("mlflow"),
    prefect_port: int = _port("prefect"),
    evidently_port: int = _port("evidently"),
    docs_port: int = _port("docs"),
    bento_port: int = _port("bento"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Where to look after `make run`: the five operator UIs, which are up, and how to start them.

    MLflow UI (runs, registry, aliases; :5000), Prefect UI (make run's flow runs: same PREFECT_HOME,
    UI on; :4200), Evidently UI (drift dashboard; :8000), Great Expectations Data Docs (a file, or
    served on :8080) and the champion Bento's Swagger page (:3000), all on 127.0.0.1. Without
    options: one ready-to-paste command per UI, each on its own line, whether something already
    answers on its port, and what make run has not produced yet. Exits 0.

    --start all (or e.g. --start mlflow,prefect) starts them in the background, each in its own
    process group with its log in reports/ui/<name>.log, waits until each answers and prints its
    URL; exits 2 if one could not start (the others stay up). --stop stops those, and only those.

    Examples: reviewops ui | reviewops ui --start all | reviewops ui --stop | reviewops ui --json
    """
    settings = get_settings(ctx)
    root = Path.cwd().resolve()
    folder = root / settings.paths.reports_dir / "ui"  # logs and pid files of what --start started
    if stop:
        stopped = stop_started(folder)
        lines = [f"{s['name']}: {'stopped' if s['stopped'] else 'was gone'} (pid {s['pid']})" for s in stopped]
        return _print({"stopped": stopped}, as_json, "\n".join(lines) or "nothing that `ui --start` started is running")
    ports = dict(zip(NAMES, (mlflow_port, prefect_port, evidently_port, docs_port, bento_port), strict=True))
    uis = describe(settings, ports, root)
    started, errors = _start_all(uis, _chosen(start_), folder, timeout) if start_ else ([], [])
    for ui in uis:
        probe(ui)
    result = {"uis": [{**asdict(ui), "shell": ui.shell()} for ui in uis], "started": started, "errors": errors}
    _print(result, as_json, render(uis, started))
    if errors:
        raise ReviewOpsError("; ".join(errors))


def _print(result: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        return emit(result, True)
    out_console.print(text, soft_wrap=True, markup=False, highlight=False, emoji=False)


def register(app: typer.Typer) -> None:
    """Add ``ui`` to the root CLI."""
    app.command("ui")(ui_cmd)
