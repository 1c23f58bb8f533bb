"""The training split as an artifact of its MLflow run, so a champion's data travels with the tracking server.

A training run logs where its split was (``data/processed_dir``) and its sha256
(``data/train_sha256``); on another machine, or after the split was rebuilt, that path says
nothing. When a run's model is registered, :func:`log_training_split` uploads the split the run
trained on (only if the local file still has the logged sha256) as ``data/train.parquet``;
:func:`download_training_split` fetches it back, checked against the same sha256, through whatever
``MLFLOW_TRACKING_URI`` points at (a local store or a server with ``mlflow-artifacts:``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reviewops.reports import sha256_file

TRAIN_ARTIFACT_DIR = "data"
TRAIN_ARTIFACT = f"{TRAIN_ARTIFACT_DIR}/train.parquet"


def has_training_split(run_id: str) -> bool:
    """True when run ``run_id`` already has the ``data/train.parquet`` artifact."""
    import mlflow

    files = mlflow.MlflowClient().list_artifacts(run_id, TRAIN_ARTIFACT_DIR)
    return any(f.path == TRAIN_ARTIFACT for f in files)


def log_training_split(run_id: str) -> str | None:
    """Upload the split run ``run_id`` trained on as its artifact ``data/train.parquet``.

    Only the file the run logged counts: ``<data/processed_dir>/train.parquet`` with the logged
    ``data/train_sha256``. Nothing is uploaded twice.

    Returns:
        The artifact path, or None when the run logged no lineage or the local file differs.
    """
    import mlflow

    params = mlflow.MlflowClient().get_run(run_id).data.params
    logged_dir, logged_sha = params.get("data/processed_dir"), params.get("data/train_sha256")
    if not logged_dir or not logged_sha:
        return None
    if has_training_split(run_id):
        return TRAIN_ARTIFACT
    path = Path(logged_dir) / "train.parquet"
    if not path.is_file() or sha256_file(path) != logged_sha:
        return None
    mlflow.MlflowClient().log_artifact(run_id, str(path), TRAIN_ARTIFACT_DIR)
    return TRAIN_ARTIFACT


def download_training_split(run_id: str, sha256: str, cache_dir: Path) -> Path | None:
    """Run ``run_id``'s ``data/train.parquet``, downloaded once into ``cache_dir/<run_id>/``, if it has ``sha256``.

    Returns:
        The local file, or None when the run has no such artifact or it is not the logged file.
    """
    import mlflow

    folder = Path(cache_dir) / run_id
    cached = folder / "train.parquet"
    if cached.is_file() and sha256_file(cached) == sha256:
        return cached
    if not has_training_split(run_id):
        return None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=TRAIN_ARTIFACT, dst_path=str(folder)))
    if local.resolve() != cached.resolve():
        shutil.move(str(local), cached)
    return cached if sha256_file(cached) == sha256 else None
