"""What makes a rerun safe: the batch manifest (what its parts were made from) and the check against it.

A batch folder's parts are reused only when they came from the same input bytes, the same
models, the same summaries mode, the same chunking and the same checking/cleaning settings:
then every partition a rerun would write is byte-for-byte the one already there (``scored_at``
aside), so it is skipped, and a run killed midway finishes with the output an uninterrupted
run would have made. Anything else is refused with one line, never mixed into the batch.

Files are written beside their final name and renamed into place (``.<name>.<pid>.tmp``): a run
killed between the two leaves that temporary file behind, never a half part. A claimed batch's
folders lose such leftovers whose writer is gone (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.data.ingest import list_files
from reviewops.errors import ReviewOpsError
from reviewops.reports import read_json, sha256_file, write_json
from reviewops.scoring.dataset import batch_dir, manifest_path, report_path, side_path
from reviewops.scoring.models import ScoringModels

MANIFEST_VERSION = 1
# The temporary name of write_parquet_atomic and write_json: ``.<final name>.<pid>.tmp``.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def input_digests(path: Path) -> dict[str, str]:
    """``{file name: sha256}`` of the input files, in the order they are read."""
    return {f.name: sha256_file(f) for f in list_files(path)}


def settings_digest(settings: Settings) -> str:
    """A digest of the settings that change which rows are scored and what the models see."""
    parts = {name: getattr(settings, name).model_dump(mode="json") for name in ("ingest", "validation", "preprocess")}
    parts["sentiment"] = {"max_length": settings.sentiment.max_length}
    parts["summarizer"] = settings.summarizer.model_dump(mode="json", include={"prompt", "max_new_tokens", "num_beams"})
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def build_manifest(
    settings: Settings,
    *,
    inputs: Mapping[str, str],
    models: ScoringModels,
    columns: Mapping[str, str] | str | None,
) -> dict[str, Any]:
    """The manifest of a batch scored now (no timestamps: a rerun must produce the same one)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "inputs": dict(inputs),
        "models": {
            "sentiment": models.sentiment.fingerprint,
            "summarizer": models.summarizer.fingerprint if models.summarizer else None,
        },
        "summaries": settings.score.summaries,
        "chunk_rows": settings.score.chunk_rows,
        "columns": columns if isinstance(columns, str) or columns is None else dict(sorted(columns.items())),
        "settings": settings_digest(settings),
    }


def claim_batch(out_dir: Path, batch: str, manifest: Mapping[str, Any]) -> bool:
    """Write the batch's manifest, or check that the one there matches; True when parts may be reused.

    Raises:
        ReviewOpsError: the folder holds parts made from something else (names what differs and
            what to do), or parts without a manifest.
    """
    folder = batch_dir(out_dir, batch)
    found = read_json(manifest_path(out_dir, batch))
    if found is None:
        if any(folder.glob("part-*.parquet")):
            raise ReviewOpsError(
                f"{folder} holds parts but no _manifest.json (not written by `reviewops score`?); "
                f"use a new --out or --batch, or delete {folder} to rewrite it"
            )
        write_json(manifest_path(out_dir, batch), dict(manifest))
        return False
    differs = sorted(k for k in set(found) | set(manifest) if found.get(k) != manifest.get(k))
    if differs:
        raise ReviewOpsError(
            f"batch {batch!r} in {out_dir} was scored with other {', '.join(differs)}; "
            f"use a new --out or --batch, or delete {folder} to rewrite it"
        )
    remove_stale_temp_files(out_dir, batch)
    return True


def remove_stale_temp_files(out_dir: Path, batch: str) -> list[Path]:
    """Delete the temporary files a killed run left in the batch's folders; returns them.

    Looks at the batch's parts, its quarantine and duplicates folders and its report. A file
    is stale when the process named in it is gone, or is this one (a claim comes before this
    run writes anything: it is an earlier run's, in this process).
    """
    report = report_path(out_dir, batch)
    sides = [side_path(out_dir, kind, batch, 0).parent for kind in ("quarantine", "duplicates")]
    folders = [batch_dir(out_dir, batch), *sides]
    candidates = [p for folder in folders if folder.is_dir() for p in folder.iterdir()]
    candidates += list(report.parent.glob(f".{report.name}.*.tmp"))
    removed = []
    for path in candidates:
        match = TEMP_NAME.match(path.name)
        if match and _writer_gone(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _writer_gone(pid: int) -> bool:
    """True when process ``pid`` cannot be writing now (it does not exist, or it is this process)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
