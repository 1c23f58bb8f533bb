"""Start the operator UIs in the background and stop them again: process groups, pid files, logs.

Each started UI runs in its own process group (``start_new_session``) with its log and a pid file
(pid, start time, command) in one folder (``reports/ui/``); :func:`stop_started` signals only the
groups whose pid still belongs to the process it started, so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from reviewops.errors import ReviewOpsError
from reviewops.monitoring.uis import Ui, probe


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


def start_all(uis: list[Ui], names: list[str], folder: Path, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Start each chosen UI; a UI that cannot start is an error line, the others still start."""
    started: list[dict[str, Any]] = []
    errors: list[str] = []
    for ui in uis:
        if ui.name not in names:
            continue
        try:
            started.append(start(ui, folder, timeout))
        except ReviewOpsError as exc:
            errors.append(str(exc))
    return started, errors
