"""What makes a rerun safe: the batch manifest (what its parts were made from) and the check against it.

A batch folder's parts are reused only when they came from the same input bytes, the same
models, the same summaries mode, the same chunking and the same checking/cleaning settings:
then every partition a rerun would write is byte-for-byte the one already there (``scored_at``
aside), so it is skipped, and a run killed midway finishes with the output an uninterrupted
run would have made. Anything else is refused with one line, never mixed into the batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.data.ingest import list_files
from reviewops.errors import ReviewOpsError
from reviewops.reports import read_json, sha256_file, write_json
from reviewops.scoring.dataset import batch_dir, manifest_path
from reviewops.scoring.models import ScoringModels

MANIFEST_VERSION = 1


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
    return True
