"""The Prefect server on the same PostgreSQL (``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://…``).

SQLite serialises writes, which many workers reporting at once feel first; PostgreSQL is what
Prefect recommends for a shared server. The asyncpg driver comes with Prefect.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reviewops.servers.process import Started, launch, wait


def prefect_env(database_url: str, home: Path, api_url: str) -> dict[str, str]:
    """The server's environment: its database, its own PREFECT_HOME, no analytics."""
    return {
        **os.environ,
        "PREFECT_HOME": str(Path(home).absolute()),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def start_prefect(
    database_url: str, home: Path, log: Path, port: int, host: str = "127.0.0.1", timeout: float = 180.0
) -> Started:
    """Start ``prefect server start`` on ``database_url`` and wait until ``/api/health`` answers.

    Raises:
        ReviewOpsError: it exited (the message quotes its log) or did not answer within ``timeout``.
    """
    url = f"http://{host}:{port}/api"
    env = prefect_env(database_url, home, url)
    env.pop("PREFECT_API_URL", None)  # the server does not talk to another server
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    started = launch("prefect", cmd, env, log, port, url)
    wait(started, f"{url}/health", timeout)
    return started
