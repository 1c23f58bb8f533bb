"""``reviewops servers``: PostgreSQL + the MLflow server (+ the Prefect server) from one state folder.

The folder (``.servers/`` by default) holds everything: ``postgres/`` (the cluster's data, kept
between starts), ``mlartifacts/`` (the MLflow server's artifact store), ``prefect_home/``, one log
per server in ``logs/`` and ``state.json`` (ports, pids, URLs) that ``stop`` and ``status`` read.
Starting is idempotent: what still runs is kept, what is down is started.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from reviewops.errors import ReviewOpsError
from reviewops.servers import process
from reviewops.servers.mlflow_server import start_mlflow
from reviewops.servers.postgres import PostgresCluster
from reviewops.servers.prefect_server import start_prefect

STATE_FILE = "state.json"
DATABASES = ("mlflow", "prefect")
# psycopg 3, named: SQLAlchemy 2.0 (pinned for Prefect's scheduler) would pick psycopg2 for a bare postgresql://.
MLFLOW_DRIVER = "postgresql+psycopg"


def _state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _save(folder: Path, state: dict[str, Any]) -> None:
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _require_free(host: str, port: int, option: str) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise ReviewOpsError(f"port {port} on {host} is taken: choose another with {option}") from None


def _client_host(host: str) -> str:
    """The address clients use: the machine's name when the server listens on every interface."""
    return socket.gethostname() if host in ("0.0.0.0", "::") else host  # noqa: S104 - a comparison


def start_stack(
    folder: Path,
    *,
    host: str = "127.0.0.1",
    mlflow_port: int = 5000,
    prefect: bool = False,
    prefect_port: int = 4200,
    workers: int = 2,
    timeout: float = 180.0,
) -> dict[str, Any]:
    """Start PostgreSQL, then the MLflow server (and the Prefect server) on it; wait until each answers.

    Returns:
        The state (also written to ``<folder>/state.json``): each server's URL, port, pid, log.

    Raises:
        ReviewOpsError: no PostgreSQL binaries, a port taken, or a server that exited or did not answer.
    """
    folder = Path(folder).absolute()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    state = _state(folder)
    pg = PostgresCluster(folder / "postgres").start()
    for name in DATABASES:
        pg.create_database(name)
    state["postgres"] = {"port": pg.port, "data_dir": str(pg.data_dir), "log": str(pg.log_file)}
    state["postgres"]["mlflow_db"] = pg.url("mlflow", MLFLOW_DRIVER)
    _save(folder, state)
    if not _up(state.get("mlflow")):
        _require_free(host, mlflow_port, "--mlflow-port")
        artifacts = folder / "mlartifacts"
        started = start_mlflow(
            pg.url("mlflow", MLFLOW_DRIVER),
            artifacts,
            folder / "logs" / "mlflow.log",
            mlflow_port,
            host,
            workers,
            timeout,
        )
        state["mlflow"] = {
            **started.as_dict(),
            "artifacts_dir": str(artifacts),
            "client_url": _client_url(started.url, host),
        }
        _save(folder, state)
    if prefect and not _up(state.get("prefect")):
        _require_free(host, prefect_port, "--prefect-port")
        db = pg.url("prefect", "postgresql+asyncpg")
        started = start_prefect(
            db, folder / "prefect_home", folder / "logs" / "prefect.log", prefect_port, host, timeout
        )
        state["prefect"] = {**started.as_dict(), "database": db, "client_url": _client_url(started.url, host)}
        _save(folder, state)
    return status(folder)


def _client_url(url: str, host: str) -> str:
    return url.replace(f"//{host}:", f"//{_client_host(host)}:", 1)


def _up(record: dict[str, Any] | None) -> bool:
    return bool(record) and process.alive(record or {})


def stop_stack(folder: Path) -> dict[str, Any]:
    """Stop the Prefect and MLflow servers this folder started, then PostgreSQL; what was running."""
    folder = Path(folder).absolute()
    state = _state(folder)
    stopped: dict[str, bool] = {}
    for name in ("prefect", "mlflow"):
        if state.get(name):
            stopped[name] = process.stop(state[name])
    pg = PostgresCluster(folder / "postgres")
    stopped["postgres"] = pg.running_port() is not None
    pg.stop()
    return {"folder": str(folder), "stopped": stopped}


def status(folder: Path) -> dict[str, Any]:
    """Each server of ``folder``: up (its process runs and its health URL answers), URL, log; the exports."""
    folder = Path(folder).absolute()
    state = _state(folder)
    result: dict[str, Any] = {"folder": str(folder), "servers": {}, "exports": {}}
    pg_port = PostgresCluster(folder / "postgres").running_port()
    if state.get("postgres") or pg_port is not None:
        result["servers"]["postgres"] = {**state.get("postgres", {}), "up": pg_port is not None, "port": pg_port}
    health = {"mlflow": "/health", "prefect": "/health"}
    for name, env in (("mlflow", "MLFLOW_TRACKING_URI"), ("prefect", "PREFECT_API_URL")):
        record = state.get(name)
        if not record:
            continue
        up = process.alive(record) and process.answers(record["url"] + health[name])
        result["servers"][name] = {**record, "up": up}
        if up:
            result["exports"][env] = record.get("client_url", record["url"])
    return result


def export_lines(result: dict[str, Any]) -> list[str]:
    """``export NAME=value`` lines for a shell, one per server that is up."""
    return [f"export {name}={value}" for name, value in result.get("exports", {}).items()]
