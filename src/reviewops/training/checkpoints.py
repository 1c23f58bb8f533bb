"""Trainer checkpoints: list them, tell complete from half-written, set the broken aside, resume the newest.

A process killed while saving leaves a checkpoint folder that looks like the newest one; the
Trainer would pick it for resuming and fail (``Can't find a valid checkpoint``) on this and every
later run. :func:`train_with_resume` moves such folders to ``incomplete/`` and resumes from the
newest complete checkpoint of the *same* job (:func:`reviewops.training.common.fingerprint`).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from reviewops.training.distributed import on_main

# A process killed while saving leaves these behind (``x.tmp``, ``tmpab12``, ``x.part``...).
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".incomplete")
INCOMPLETE_DIR = "incomplete"
FINGERPRINT_FILE = "reviewops_fingerprint.txt"


def checkpoints(ckpt_dir: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders under ``ckpt_dir``, newest (highest step) first."""
    found = [p for p in ckpt_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest ``checkpoint-<step>`` folder under ``ckpt_dir``, or None."""
    found = checkpoints(ckpt_dir)
    return found[0] if found else None


def safetensors_problem(path: Path) -> str | None:
    """Why a ``.safetensors`` file is unusable (truncated, bad header), or None.

    The format is an 8-byte header length, a JSON header with each tensor's byte range, then
    the data: the file must be exactly as long as the header says.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or n <= 0 or 8 + n > size:
                return f"{path.name} is truncated"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        return f"{path.name} is unreadable ({type(exc).__name__})"
    try:
        expected = 8 + n + max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return f"{path.name} has a malformed header"
    if expected != size:
        return f"{path.name} is truncated ({size} of {expected} bytes)"
    return None


def _state_problem(path: Path) -> str | None:
    """Why ``trainer_state.json`` (the Trainer writes it last) is missing or unreadable, or None."""
    try:
        state_data = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError):
        return "trainer_state.json is unreadable"
    if not isinstance(state_data, dict) or "global_step" not in state_data:
        return "trainer_state.json is unreadable"
    return None


def _weight_files(path: Path) -> tuple[list[Path], str | None]:
    """The checkpoint's weight files (full, sharded or a LoRA adapter), or the reason a shard index is broken."""
    from transformers.utils import (
        ADAPTER_SAFE_WEIGHTS_NAME,
        ADAPTER_WEIGHTS_NAME,
        SAFE_WEIGHTS_INDEX_NAME,
        SAFE_WEIGHTS_NAME,
        WEIGHTS_INDEX_NAME,
        WEIGHTS_NAME,
    )

    weights: list[Path] = []
    for index_name in (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME):
        index = path / index_name
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return [], f"{index_name} is unreadable"
            missing = sorted(s for s in shards if not (path / s).is_file())
            if missing:
                return [], f"missing weight shard(s): {', '.join(missing[:3])}"
            weights += [path / s for s in shards]
    weights += [
        path / n
        for n in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME, ADAPTER_SAFE_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME)
        if (path / n).is_file()
    ]
    return weights, None


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be resumed from, or None when it is complete.

    Complete means: no temporary files, a readable ``trainer_state.json`` (the Trainer writes
    it last) and model weights (full, sharded or a LoRA adapter) whose safetensors files are
    whole.
    """
    temps = sorted(
        p.name for p in path.rglob("*") if p.name.endswith(_TEMP_SUFFIXES) or p.name.startswith(("tmp", ".tmp"))
    )
    if temps:
        return f"temporary file(s) left by an interrupted save: {', '.join(temps[:3])}"
    problem = _state_problem(path)
    if problem:
        return problem
    weights, problem = _weight_files(path)
    if problem:
        return problem
    if not weights:
        return "no model weights"
    for file in weights:
        if file.suffix == ".safetensors":
            problem = safetensors_problem(file)
            if problem:
                return problem
    return None


def set_aside_incomplete(ckpt_dir: Path) -> list[str]:
    """Move every incomplete checkpoint to ``ckpt_dir/incomplete/``, out of the Trainer's way.

    Left in place, the newest one would be picked for resuming (``Can't find a valid
    checkpoint``) and a later save of the same step would mix with its leftovers; an older one
    could be kept by checkpoint rotation instead of a good checkpoint.

    Returns:
        One ``"checkpoint-N: reason"`` line per moved checkpoint.
    """
    skipped: list[str] = []
    for path in checkpoints(ckpt_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            continue
        dest = ckpt_dir / INCOMPLETE_DIR / path.name
        if dest.exists():  # an older leftover of the same step: the newer one is kept for inspection
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        path.rename(dest)
        skipped.append(f"{path.name}: {problem}")
        print(f"[train] skipped incomplete {path} ({problem}); moved to {dest}", file=sys.stderr, flush=True)
    return skipped


def train_with_resume(
    trainer: Any, ckpt_dir: Path, resume: bool, fingerprint: str
) -> tuple[Any, str | None, list[str]]:
    """Run ``trainer.train``, resuming from the newest complete checkpoint of this same job.

    Checkpoints of a different job (other base model, data or knobs) are deleted rather than
    resumed: a retrain on new data must not silently continue the old run. Incomplete
    checkpoints (a kill while saving) are set aside, not resumed (:func:`set_aside_incomplete`).
    With several processes (torchrun) only rank 0 looks at and changes ``ckpt_dir``; the others
    wait for it and resume from the checkpoint it chose.

    Returns:
        The Trainer's output, the checkpoint resumed from (or None) and the skipped checkpoints.
    """
    checkpoint, skipped = on_main(lambda: prepare_checkpoints(ckpt_dir, resume, fingerprint))
    output = trainer.train(resume_from_checkpoint=checkpoint)
    return output, checkpoint, skipped


def prepare_checkpoints(ckpt_dir: Path, resume: bool, fingerprint: str) -> tuple[str | None, list[str]]:
    """Ready ``ckpt_dir`` for a training of job ``fingerprint``: the checkpoint to resume (or None), the skipped.

    Deletes the checkpoints of another job (or all of them without ``resume``), sets incomplete
    ones aside and writes the job's fingerprint.
    """
    marker = ckpt_dir / FINGERPRINT_FILE
    same_job = marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint
    skipped: list[str] = []
    if ckpt_dir.is_dir() and not (resume and same_job):
        if latest_checkpoint(ckpt_dir) is not None:
            shutil.rmtree(ckpt_dir)
    elif ckpt_dir.is_dir():
        skipped = set_aside_incomplete(ckpt_dir)
    checkpoint = latest_checkpoint(ckpt_dir) if resume and same_job and ckpt_dir.is_dir() else None
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint, encoding="utf-8")
    return (str(checkpoint) if checkpoint else None), skipped
