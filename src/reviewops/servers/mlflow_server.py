"""The MLflow tracking server on PostgreSQL, with a server-managed artifact store.

``mlflow server --backend-store-uri postgresql://… --serve-artifacts --artifacts-destination DIR``:
runs, metrics, the registry and aliases live in PostgreSQL; artifacts (models, the training split,
reports) are uploaded to and downloaded from the server (``mlflow-artifacts:`` URIs), so clients
need ``MLFLOW_TRACKING_URI=http://HOST:PORT`` and nothing else: no shared disk, no database driver.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from reviewops.servers.process import Started, launch, wait


def mlflow_command(backend_uri: str, artifacts_dir: Path, host: str, port: int, workers: int = 2) -> list[str]:
    """The ``mlflow server`` argv: PostgreSQL (or any SQLAlchemy URL) for runs and registry, proxied artifacts."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        Path(artifacts_dir).absolute().as_uri(),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *_allowed_hosts(host),
    ]


def _allowed_hosts(host: str) -> list[str]:
    """``--allowed-hosts`` for a server other machines reach: MLflow's defaults plus this machine's names.

    MLflow 3 answers only Host headers it allows (localhost and private addresses by default), so a
    client using ``http://<this machine's name>:PORT`` would be refused.
    """
    if host in ("127.0.0.1", "localhost", "::1"):
        return []
    from mlflow.server.security_utils import get_default_allowed_hosts

    names = dict.fromkeys([socket.gethostname(), socket.getfqdn(), host])
    return ["--allowed-hosts", ",".join([*get_default_allowed_hosts(), *(f"{n},{n}:*" for n in names if n)])]


def start_mlflow(
    backend_uri: str,
    artifacts_dir: Path,
    log: Path,
    port: int,
    host: str = "127.0.0.1",
    workers: int = 2,
    timeout: float = 180.0,
) -> Started:
    """Start the MLflow server in the background and wait until ``/health`` answers.

    Raises:
        ReviewOpsError: it exited (the message quotes its log) or did not answer within ``timeout``.
    """
    Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the server's own store is --backend-store-uri
    url = f"http://{host}:{port}"
    started = launch("mlflow", mlflow_command(backend_uri, artifacts_dir, host, port, workers), env, log, port, url)
    wait(started, f"{url}/health", timeout)
    return started
