"""The two inputs of a drift check: the champion's training data (the reference) and a batch read like training data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.reports import sha256_file

if TYPE_CHECKING:
    from reviewops.config import Settings


def require_text(df: pd.DataFrame, which: str) -> None:
    """Refuse a batch without a ``text`` column or without rows (``which`` names it in the error)."""
    if "text" not in df.columns:
        raise ReviewOpsError(f"{which} batch has no 'text' column; expected processed columns (see docs/CONTRACTS.md)")
    if len(df) == 0:
        raise ReviewOpsError(f"{which} batch has no rows")


def _champion_params(settings: Settings, info: dict[str, Any]) -> tuple[Any, dict[str, str]] | None:
    """The champion version and its training run's params; None (and ``info["note"]``) when there are none."""
    try:
        import mlflow

        from reviewops.registry import registry
        from reviewops.registry.tracking import configure_mlflow

        configure_mlflow(settings)
        version = registry.get_alias_version(settings.gate.sentiment_name, registry.CHAMPION)
        if version is None or not version.run_id:
            info["note"] = "no champion in the registry yet: using the current training split"
            return None
        return version, mlflow.MlflowClient().get_run(version.run_id).data.params
    except Exception as exc:  # noqa: BLE001 - no tracking server must not block a drift check
        info["note"] = f"champion lookup failed ({type(exc).__name__}): using the current training split"
        return None


def champion_reference(settings: Settings) -> tuple[Path, dict[str, Any]]:
    """The training data of the current champion, found through its MLflow run's lineage.

    The training run logs ``data/processed_dir``, ``data/train_sha256`` and the DVC md5 of the
    raw data (``data/dvc_md5``). The reference is that run's ``train.parquet`` when the file on
    disk still has the logged sha256; else the run's ``data/train.parquet`` artifact (uploaded
    when the model was registered, so it comes from the tracking server on any machine), checked
    against the same sha256 and cached under ``<interim_dir>/reference/<run id>/``; otherwise (no
    champion yet, or an old run without the artifact) the current ``<processed_dir>/train.parquet``,
    and the returned info says why, naming the DVC md5 and git commit to check out
    (``git checkout <commit> && dvc checkout``) for the exact data.

    Returns:
        The reference path and where it came from (``source``, ``path``, champion version, run
        id, data md5, git commit, ``note`` when it fell back).
    """
    default = Path(settings.paths.processed_dir) / "train.parquet"
    info: dict[str, Any] = {"source": "processed_dir", "path": str(default)}
    found = _champion_params(settings, info)
    if found is None:
        return default, info
    version, params = found
    info.update(
        {
            "champion_version": str(version.version),
            "champion_run_id": version.run_id,
            "data_dvc_md5": params.get("data/dvc_md5"),
            "git_commit": params.get("git_commit"),
        }
    )
    logged_dir, logged_sha = params.get("data/processed_dir"), params.get("data/train_sha256")
    candidate = Path(logged_dir) / "train.parquet" if logged_dir else default
    if candidate.is_file() and logged_sha:
        digest = sha256_file(candidate)
        if digest == logged_sha:
            info.update(source="champion run", path=str(candidate), sha256=digest)
            return candidate, info
    downloaded = _download(settings, version.run_id, logged_sha, info)
    if downloaded is not None:
        return downloaded, info
    info["note"] = (
        f"the champion's training split ({candidate}, sha256 {str(logged_sha)[:12]}…) is no "
        "longer on disk as logged, nor an artifact of its run; using the current training split. "
        f"For the exact data: git checkout {info.get('git_commit')} && dvc checkout"
    )
    return default, info


def _download(settings: Settings, run_id: str, logged_sha: str | None, info: dict[str, Any]) -> Path | None:
    """The champion run's ``data/train.parquet`` artifact (cached under ``<interim_dir>/reference``), or None."""
    if not logged_sha:
        return None
    from reviewops.registry.datasets import TRAIN_ARTIFACT, download_training_split

    try:
        path = download_training_split(run_id, logged_sha, Path(settings.paths.interim_dir) / "reference")
    except Exception as exc:  # noqa: BLE001 - fall back to the current split, and say why
        info["download_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return None
    if path is not None:
        info.update(source="champion run artifact", path=str(path), sha256=logged_sha, artifact=TRAIN_ARTIFACT)
    return path


def load_batch(path: Path | str, settings: Settings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a batch for the drift check: processed Parquet as is, raw files through the pipeline.

    Raw CSV/JSONL (or a folder of them) goes through the same stages as training data —
    :func:`reviewops.data.ingest.ingest`, :func:`reviewops.data.validation.validate_batch` (quarantined
    rows are dropped, no Data Docs) and :func:`reviewops.data.clean.preprocess` — so that the
    descriptors compare like with like (HTML stripped, PII masked, labels from ratings).

    Returns:
        The processed frame and what happened to the rows on the way.
    """
    path = Path(path)
    if not path.exists():
        raise ReviewOpsError(f"{path}: no such file or folder")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        require_text(df, str(path))
        return df, {"path": str(path), "kind": "processed", "rows": len(df)}
    from reviewops.data.clean import preprocess
    from reviewops.data.ingest import ingest
    from reviewops.data.validation import validate_batch

    ingested = ingest(path, encoding=settings.ingest.encoding, mask_pii=settings.preprocess.mask_pii)
    checked = validate_batch(
        ingested.df, settings, batch_name=f"drift-{path.stem}", build_docs=False, malformed=ingested.malformed
    )
    clean = preprocess(checked.valid, settings.preprocess)
    info = {
        "path": str(path),
        "kind": "raw",
        "ingested_rows": ingested.rows,
        "quarantined_rows": checked.quarantined_rows,
        "repeated_rows": checked.repeated_rows,
        **{f"preprocess_{k}": v for k, v in clean.report.items() if isinstance(v, int)},
        "rows": len(clean.clean),
    }
    require_text(clean.clean, str(path))
    return clean.clean, info
