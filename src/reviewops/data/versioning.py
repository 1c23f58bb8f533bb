"""DVC and git lineage: track raw data, reproduce the data stages, report data versions.

DVC takes a repository lock, so every call here runs one DVC command at a time and waits
for it: :func:`run_dvc` holds :func:`reviewops.orchestration.locks.dvc_lock`, an in-process lock
and, when the state lives in Prefect, the one-slot global concurrency limit
``orchestration.dvc_limit`` shared by every worker (a caller holding it already, e.g. around a
copy into data/raw and its ``dvc commit``, is not blocked by its own calls).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from reviewops.errors import ReviewOpsError
from reviewops.orchestration import locks

RAW_DVC_FILE = Path("data.dvc")


def _dvc_exe() -> list[str]:
    exe = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    return [exe]


def run_dvc(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run one DVC command, returning its output; raise with DVC's own message on failure."""
    # Stage commands call `reviewops`: make sure this interpreter's scripts are on PATH.
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    with locks.dvc_lock():
        proc = subprocess.run([*_dvc_exe(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        message = next((line for line in reversed(detail) if line.startswith("ERROR")), None)
        message = message or (detail[-1] if detail else f"exit {proc.returncode}")
        raise ReviewOpsError(f"`dvc {' '.join(args)}` failed: {message}\n{proc.stderr.strip()}")
    return proc


def ensure_repo(root: Path = Path(".")) -> None:
    """Initialise DVC once; the committed ``.dvc/config`` sets the repo-local remote ``.dvc_storage``."""
    root = Path(root)
    with locks.dvc_lock():
        if not (root / ".dvc").exists():
            run_dvc("init", "-q", cwd=root)
            run_dvc("remote", "add", "-d", "local", str((root / ".dvc_storage").resolve()), cwd=root)


def track_raw(root: Path = Path("."), dvc_file: Path = RAW_DVC_FILE, raw_dir: Path = Path("data/raw")) -> dict:
    """Record the current content of the raw folder in ``data.dvc`` (and DVC's cache).

    Returns the md5 of the raw folder and whether it changed since the last commit.
    """
    root = Path(root)
    target = root / dvc_file
    before = data_version(target)
    if not target.exists():
        target.write_text(yaml.safe_dump({"outs": [{"path": str(raw_dir)}]}, sort_keys=False))
    run_dvc("commit", "-f", "-q", str(dvc_file), cwd=root)
    after = data_version(target)
    return {"dvc_file": str(dvc_file), "md5": after, "changed": before != after}


def repro(root: Path = Path("."), targets: tuple[str, ...] = ()) -> str:
    """``dvc repro``: rerun exactly the stages whose deps, params or code changed."""
    return run_dvc("repro", *targets, cwd=root).stdout


def push(root: Path = Path(".")) -> str:
    """Push tracked data and stage outputs to the default remote."""
    return run_dvc("push", "-q", cwd=root).stdout


def status(root: Path = Path(".")) -> str:
    """``dvc status`` output ("Data and pipelines are up to date." when nothing changed)."""
    return run_dvc("status", cwd=root).stdout.strip()


def data_version(dvc_file: Path = RAW_DVC_FILE) -> str | None:
    """The md5 DVC recorded for the raw data, or None before it is tracked."""
    dvc_file = Path(dvc_file)
    if not dvc_file.exists():
        return None
    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def git_commit(root: Path = Path(".")) -> str | None:
    """The current git commit, or None outside a git checkout."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None
