"""Headless Chromium for tests: find it, and read a page's DOM or take a screenshot after its scripts ran.

Debian's ``chromium`` (``apt-get install chromium``) is driven through its own command line
(``--headless --dump-dom`` / ``--screenshot``), so no WebDriver and no Python dependency are needed.
``--virtual-time-budget`` lets a JavaScript app (the MLflow, Prefect and Evidently UIs) fetch its
data and draw before the DOM is read; each call gets a fresh throwaway profile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from reviewops.errors import ReviewOpsError

# Where to look, in order: $CHROMIUM, then the names distributions install it under.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--lang=en-US",
)


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable: ``$CHROMIUM`` if set, else the first of :data:`CANDIDATES` on PATH."""
    explicit = os.environ.get("CHROMIUM", "").strip()
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(args: list[str], budget_ms: int, window: tuple[int, int], timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise ReviewOpsError("no Chromium found: apt-get install chromium (or set $CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="reviewops-chromium-") as profile:
        cmd = [
            exe,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={budget_ms}",
            *args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise ReviewOpsError(f"chromium exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc


def dump_dom(url: str, budget_ms: int = 15000, window: tuple[int, int] = (1400, 1000), timeout: float = 180) -> str:
    """The page's DOM (HTML) once its scripts had ``budget_ms`` of virtual time to fetch and draw."""
    return _run(["--dump-dom", url], budget_ms, window, timeout).stdout


def screenshot(
    url: str, path: Path | str, budget_ms: int = 15000, window: tuple[int, int] = (1400, 1000), timeout: float = 180
) -> Path:
    """A PNG of the page at ``path`` (folders created), taken after ``budget_ms`` of virtual time."""
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={out}", url], budget_ms, window, timeout)
    if not out.is_file() or out.stat().st_size == 0:
        raise ReviewOpsError(f"chromium wrote no screenshot at {out}")
    return out
