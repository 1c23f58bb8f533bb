"""New review batches: their names, synthetic drifted batches, validation + cleaning, and the append to raw data."""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import sha256_file

logger = logging.getLogger(__name__)


def batch_name(path: Path | str) -> str:
    """A report-safe name for a batch file: ``data/inbox/new reviews.csv`` -> ``new-reviews``."""
    stem = Path(path).stem if Path(path).suffix else Path(path).name
    return re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "batch"


def generate_batch(
    out_dir: Path | str, rows: int, seed: int, scenario: str = "language_sentiment_shift", tag: str | None = None
) -> Path:
    """A synthetic batch with review ids that cannot collide with earlier batches.

    :func:`reviewops.data.generate.write_generated` numbers ``review_id`` from ``R-00000001`` in
    every file; appended to the raw folder, those ids would clash with the default data set's and
    the ``review_id_conflict`` rule would quarantine both copies. The ids are prefixed with ``tag``
    (default: UTC time), and the file is named ``batch-<tag>-<scenario>.csv``.
    """
    from reviewops.data.generate import write_generated

    tag = tag or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out_dir = Path(out_dir)
    tmp_dir = out_dir / f".gen-{tag}"
    src = write_generated(tmp_dir, rows, seed, scenario)
    dest = out_dir / f"batch-{tag}-{scenario}.csv"
    tmp = out_dir / f".{dest.name}.tmp"
    with src.open(encoding="utf-8", newline="") as fin, tmp.open("w", encoding="utf-8", newline="") as fout:
        reader, writer = csv.reader(fin), csv.writer(fout, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        header = next(reader)
        writer.writerow(header)
        col = header.index("review_id")
        for row in reader:
            if row[col]:
                row[col] = f"{tag}-{row[col]}"
            writer.writerow(row)
    os.replace(tmp, dest)  # the inbox poller never sees a half-written file (dot files are skipped)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


def batch_dir(settings: Settings, name: str) -> Path:
    """Where one batch's validated and cleaned rows go: ``<interim_dir>/batches/<name>/``."""
    from reviewops.data.stages import batch_folder

    return batch_folder(settings, name)


def prepare_batch(
    settings: Settings, batch_path: Path | str, name: str | None = None, build_docs: bool = True
) -> dict[str, Any]:
    """Validate and preprocess a new batch into batch-specific files.

    Validation is :func:`reviewops.data.stages.run_validate` into the batch's folder
    ``<interim_dir>/batches/<name>/`` (valid, quarantine and repeats Parquet files and
    ``report.json``); preprocessing is the same :func:`reviewops.data.clean.preprocess` as the
    DVC stage, written to the same folder (the preprocess stage would overwrite the DVC
    stage's own outputs and report).

    Raises:
        BatchFailedError: more than ``validation.max_failure_rate`` of the rows failed (the
            report and quarantine are written first).
        ReviewOpsError: unreadable file, or nothing left after cleaning.
    """
    from reviewops.data.clean import preprocess
    from reviewops.data.ingest import parse_column_map
    from reviewops.data.stages import run_validate

    batch_path = Path(batch_path)
    name = name or batch_name(batch_path)
    out = batch_dir(settings, name)
    columns = parse_column_map(settings.ingest.columns) or None
    validation = run_validate(settings, path=batch_path, columns=columns, batch=name, build_docs=build_docs)
    result = preprocess(pd.read_parquet(validation["valid_path"]), settings.preprocess)
    if len(result.clean) == 0:
        raise ReviewOpsError(f"{batch_path}: no rows left after validation and cleaning")
    clean_path = out / "clean.parquet"
    result.clean.to_parquet(clean_path, index=False)
    result.duplicates.to_parquet(out / "duplicates.parquet", index=False)
    report = {k: v for k, v in result.report.items() if isinstance(v, int | float | str)}
    return {
        "name": name,
        "batch": str(batch_path),
        "validation": validation,
        "preprocess": report,
        "clean_rows": len(result.clean),
        "clean_path": str(clean_path),
    }


def _review_ids(settings: Settings, path: Path) -> set[str]:
    from reviewops.data.ingest import ingest, parse_column_map

    return set(ingest(path, parse_column_map(settings.ingest.columns) or None).df["review_id"].dropna().astype(str))


def _existing_ids(settings: Settings) -> set[str]:
    try:
        return _review_ids(settings, Path(settings.paths.raw_dir))
    except ReviewOpsError:  # empty raw folder
        return set()


def _unique_raw_name(raw_dir: Path, source: Path) -> Path:
    dest = raw_dir / source.name
    n = 1
    while dest.exists():
        dest = raw_dir / f"{source.stem}-{n}{source.suffix}"
        n += 1
    return dest


def _same_content(batch_path: Path, digest: str, raw_dir: Path) -> Path | None:
    """The file in ``raw_dir`` whose bytes equal the batch's (sha256 ``digest``), if any (dot files skipped)."""
    if not raw_dir.is_dir():
        return None
    size = batch_path.stat().st_size
    for existing in sorted(raw_dir.iterdir()):
        if (
            existing.is_file()
            and not existing.name.startswith(".")
            and existing.stat().st_size == size
            and sha256_file(existing) == digest
        ):
            return existing
    return None


def _check_new_ids(settings: Settings, batch_path: Path, raw_dir: Path) -> None:
    """Refuse a batch whose review ids already exist in ``raw_dir``."""
    clash = sorted(_review_ids(settings, batch_path) & _existing_ids(settings))
    if clash:
        raise ReviewOpsError(
            f"{batch_path}: {len(clash)} review id(s) already exist in {raw_dir} (e.g. {', '.join(clash[:3])}); "
            "ids must be unique across batches — drop the rows already ingested or give them new ids"
        )


def _existing_copy(settings: Settings, batch_path: Path, digest: str, raw_dir: Path, existing_ok: bool) -> Path | None:
    """The raw file already holding ``batch_path``'s bytes (``existing_ok`` only), else None.

    Raises when such a copy exists without ``existing_ok``, and when a new batch's review ids
    collide with existing ones. A reused copy is not id-checked: it passed the check when it was
    appended, and every later append is checked against it (raw data is append-only).
    """
    dest = _same_content(batch_path, digest, raw_dir)
    if dest is None:
        _check_new_ids(settings, batch_path, raw_dir)
        return None
    if not existing_ok:
        raise ReviewOpsError(f"{batch_path} is already in the raw data as {dest}; nothing to append")
    logger.warning(
        "%s is already in the raw data as %s (an earlier run appended it): continuing with that copy",
        batch_path,
        dest,
    )
    return dest


def _copy_into_raw(batch_path: Path, raw_dir: Path) -> Path:
    """Copy the batch under a fresh name in ``raw_dir``, atomically (temp dot file + rename)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    dest = _unique_raw_name(raw_dir, batch_path)
    tmp = raw_dir / f".{dest.name}.tmp"  # dot files are ignored by ingest and by DVC's listing
    shutil.copyfile(batch_path, tmp)
    os.replace(tmp, dest)
    return dest


def append_batch_to_raw(
    settings: Settings, batch_path: Path | str, root: Path | str = ".", existing_ok: bool = False
) -> dict[str, Any]:
    """Copy a batch into ``paths.raw_dir`` and record the new raw version in ``data.dvc``.

    Raw data is append-only: the batch gets a name no existing file has (``x.csv``, ``x-1.csv``…)
    and nothing there is modified. The rows keep that file name as ``source_file`` through the
    DVC stages, which is how :func:`reviewops.monitoring.retune.build_retune_split` finds them.

    ``existing_ok``: when a raw file already holds the batch's exact bytes (a re-tune taking over
    from a worker that died after its append), use that file instead of refusing: nothing is
    copied, ``data.dvc`` is brought up to date (the dead worker may have died before recording it)
    and ``reused`` is True.

    Returns:
        ``raw_file`` (name), ``raw_path``, ``sha256``, ``old_version`` / ``new_version``
        (``data.dvc`` md5), ``changed``, ``reused``, ``dvc_file``.

    Raises:
        ReviewOpsError: the same file content is already in the raw folder (unless
            ``existing_ok``), or its review ids collide with existing ones (the
            ``review_id_conflict`` rule would quarantine both copies and fail the whole data
            set's validation).
    """
    from reviewops.data import versioning

    batch_path = Path(batch_path)
    raw_dir = Path(settings.paths.raw_dir)
    root = Path(root)
    if not batch_path.is_file():
        raise ReviewOpsError(f"{batch_path}: not a file; pass one batch file to append")
    digest = sha256_file(batch_path)
    dest = _existing_copy(settings, batch_path, digest, raw_dir, existing_ok)
    versioning.ensure_repo(root)
    old = versioning.data_version(root / versioning.RAW_DVC_FILE)
    reused = dest is not None
    if dest is None:
        dest = _copy_into_raw(batch_path, raw_dir)
    tracked = versioning.track_raw(root=root, raw_dir=raw_dir)
    return {
        "raw_file": dest.name,
        "raw_path": str(dest),
        "sha256": digest,
        "old_version": old,
        "new_version": tracked["md5"],
        "changed": tracked["changed"],
        "reused": reused,
        "dvc_file": tracked["dvc_file"],
    }
