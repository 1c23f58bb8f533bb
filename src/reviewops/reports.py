"""JSON reports and file digests: the one way every stage writes, reads and fingerprints files."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def write_json(path: Path | str, data: Any) -> Path:
    """Write ``data`` as indented UTF-8 JSON (non-ASCII kept, unknown types as ``str``).

    The file is written beside its final name and renamed into place, so a reader never sees
    half a report and a killed run leaves the previous one intact. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: Path | str, default: Any = None) -> Any:
    """The parsed JSON file at ``path``, or ``default`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (memory stays flat for large files)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def file_lock(path: Path | str) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    For files other libraries write non-atomically (an Evidently workspace): processes on one
    machine or one shared checkout wait for each other; a killed holder never leaves it taken.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
