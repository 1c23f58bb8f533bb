"""A server in the background: its own process group, a log, a wait until its health URL answers, a stop.

Used for the MLflow and Prefect servers (PostgreSQL has ``pg_ctl``). A started server is described
by a :class:`Started` record (pid, process start time, port, log) that the caller keeps in a state
file; :func:`stop` signals the group only while that pid still belongs to the process that was
started (same start time), so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reviewops.errors import ReviewOpsError


@dataclass
class Started:
    """A background server: what to stop later and where to look."""

    name: str
    pid: int
    started_at: float | None
    port: int
    url: str
    log: str

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        return asdict(self)


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own loopback URL
            return 200 <= int(resp.status) < 300
    except OSError:
        return False


def launch(name: str, cmd: list[str], env: dict[str, str], log: Path, port: int, url: str) -> Started:
    """Start ``cmd`` in its own process group with its output in ``log``; wait (see :func:`wait`) is separate."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    started = Started(name, proc.pid, _create_time(proc.pid), port, url, str(log))
    _children[proc.pid] = proc
    return started


# Popen objects of this process's servers, so an exited one is reaped and its status read.
_children: dict[int, subprocess.Popen[bytes]] = {}


def wait(started: Started, health: str, timeout: float) -> float:
    """Wait until ``health`` answers 2xx; the seconds it took.

    Raises:
        ReviewOpsError: the process exited, or did not answer within ``timeout`` seconds (names the log).
    """
    began = time.monotonic()
    proc = _children.get(started.pid)
    while time.monotonic() - began < timeout:
        if proc is not None and proc.poll() is not None:
            raise ReviewOpsError(f"{started.name} exited with status {proc.returncode}: {_tail(started.log)}")
        if answers(health):
            return round(time.monotonic() - began, 1)
        time.sleep(0.5)
    raise ReviewOpsError(f"{started.name} did not answer {health} within {timeout:.0f} s: see {started.log}")


def alive(record: dict[str, Any]) -> bool:
    """True while the process of a :class:`Started` record runs (and is the same process, by start time)."""
    pid = int(record.get("pid", 0))
    if pid <= 0:
        return False
    recorded, now = record.get("started_at"), _create_time(pid)
    if now is None:
        return False
    return recorded is None or abs(float(recorded) - now) < 1.0


def stop(record: dict[str, Any], grace: float = 20.0) -> bool:
    """SIGTERM the record's process group, SIGKILL after ``grace`` seconds; False when it was already gone."""
    if not alive(record):
        return False
    pid = int(record["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.2)
    if _running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    return True


def _running(pid: int) -> bool:
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None
    return _create_time(pid) is not None


def _create_time(pid: int) -> float | None:
    import psutil

    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE:
            return float(proc.create_time())
    return None


def _tail(log: str, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        text = [line.strip() for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
        if text:
            return " | ".join(text[-lines:]) + f" (log: {log})"
    return f"see {log}"
