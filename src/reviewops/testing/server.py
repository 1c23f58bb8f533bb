"""Start ``bentoml serve`` as a child process on loopback and stop it (integration tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reviewops.errors import ReviewOpsError

SERVICE = "reviewops.serving.service:ReviewAnalyzer"


def free_port(host: str = "127.0.0.1") -> int:
    """A currently unused TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running ``bentoml serve`` child: its URL, process and log file."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def wait_ready(server: Server, timeout: float = 120.0, headers: dict[str, str] | None = None) -> float:
    """Poll ``/readyz`` until 200; returns the seconds waited.

    Raises:
        ReviewOpsError: the process exited or the timeout passed (with the log tail).
    """
    import httpx

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if server.process.poll() is not None:
            raise ReviewOpsError(f"bentoml serve exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=3, headers=headers).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ReviewOpsError(f"{server.url}/readyz not 200 after {timeout:.0f}s:\n{server.log_tail()}")


def stop(server: Server, grace: float = 15.0) -> None:
    """SIGTERM the server's process group (arbiter + workers), SIGKILL after ``grace`` seconds.

    Circus may run a worker in a process group of its own, and a worker waiting on a hung request
    outlives a killed arbiter; so the descendants are collected first and any left at the end
    are killed too (they are this server's processes, nothing else).
    """
    proc = server.process
    if proc.poll() is not None:
        return
    try:
        import psutil

        descendants = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # psutil missing or the process just ended
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this module created (start_new_session)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
    for child in descendants:
        try:
            child.wait(timeout=5)
        except Exception:
            with contextlib.suppress(Exception):
                child.kill()


@contextmanager
def serving(
    env: dict[str, str] | None = None,
    log_path: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    target: str = SERVICE,
    ready_timeout: float = 120.0,
    cwd: Path | str | None = None,
    ready_headers: dict[str, str] | None = None,
    wait_for_ready: bool = True,
) -> Iterator[Server]:
    """Run ``bentoml serve target`` on ``host:port`` until the block exits; waits for ``/readyz``.

    Args:
        env: extra environment (e.g. ``REVIEWOPS_SUMMARIZER_DIR``, ``REVIEWOPS_BATCHING``).
        log_path: where stdout/stderr go (default: a temp file).
        wait_for_ready: False to get the server at once (e.g. to watch one that never becomes ready).
    """
    import tempfile

    port = port or free_port(host)
    full_env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "True",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    if log_path is None:
        log_path = Path(tempfile.mkstemp(prefix="reviewops-serve-", suffix=".log")[1])
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
    server = Server(url=f"http://{host}:{port}", process=proc, log_path=log_path)
    try:
        if wait_for_ready:
            wait_ready(server, ready_timeout, headers=ready_headers)
        yield server
    finally:
        stop(server)
