"""Data stages as functions with file inputs and outputs.

The DVC stages (``dvc.yaml``, through the CLI) and the Prefect flows call these same
functions, so each stage's logic exists once. Each returns a JSON-able dict of counts
and paths, which the CLI prints and the flow passes on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import write_json

if TYPE_CHECKING:
    from reviewops.data.ingest import IngestResult
    from reviewops.data.validation import ValidationResult

# A batch name becomes a file or folder name: no separators, no "..", nothing a shell mangles.
_BATCH_NAME = re.compile(r"^\w[\w.-]{0,127}$")


def _write_parquet(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def batch_name_for(path: Path) -> str:
    """A batch name from an input path: ``data/raw`` -> ``raw``, ``x/my file.csv`` -> ``my_file``."""
    path = Path(path)
    name = path.stem if path.is_file() else path.name
    name = re.sub(r"[^\w.-]+", "_", name).strip("._-") or "batch"
    return name[:128]


def check_batch_name(name: str) -> str:
    """Return ``name`` when it can name files, else raise a one-line error saying what is allowed."""
    if not _BATCH_NAME.match(name) or ".." in name:
        raise ReviewOpsError(
            f"batch name {name!r} must be a plain name of letters, digits, '.', '_' or '-' "
            f"(no '/', '\\' or '..'): it names the batch's files"
        )
    return name


def _write_private_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Owner-only (0700 folder, 0600 file): quarantined rows are there to be fixed by their owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    df.to_parquet(tmp, index=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def batch_folder(settings: Settings, batch: str) -> Path:
    """Where one batch's files live outside the DVC pipeline: ``<interim_dir>/batches/<batch>/``."""
    return Path(settings.paths.interim_dir) / "batches" / batch


@dataclass(frozen=True)
class ValidateOutputs:
    """Where one validation run writes: valid rows, quarantine, repeats and the JSON report.

    Only the DVC ``validate`` stage writes the stage's outputs (:meth:`for_stage`); any other
    run writes under its own batch folder (:meth:`for_batch`), so an ad-hoc
    ``reviewops validate FILE`` never changes what ``dvc status`` or the next training sees.
    """

    valid: Path
    quarantine: Path
    repeats: Path
    report: Path

    @classmethod
    def for_stage(cls, settings: Settings, batch: str, valid: Path | None = None) -> ValidateOutputs:
        """The DVC stage's files: ``interim/valid.parquet``, ``quarantine/<batch>.parquet``, ..."""
        paths = settings.paths
        return cls(
            valid=Path(valid or paths.interim_dir / "valid.parquet"),
            quarantine=paths.quarantine_dir / f"{batch}.parquet",
            repeats=paths.interim_dir / "repeats.parquet",
            report=paths.reports_dir / "validation" / f"{batch}.json",
        )

    @classmethod
    def for_batch(cls, settings: Settings, batch: str, valid: Path | None = None) -> ValidateOutputs:
        """An ad-hoc batch's folder, ``<interim_dir>/batches/<batch>/`` (quarantine owner-only inside)."""
        folder = batch_folder(settings, batch)
        return cls(
            valid=Path(valid or folder / "valid.parquet"),
            quarantine=folder / "quarantine.parquet",
            repeats=folder / "repeats.parquet",
            report=folder / "report.json",
        )


def run_ingest(
    settings: Settings,
    *,
    path: Path,
    columns: dict[str, str] | None = None,
    out: Path | None = None,
    encoding: str | None = None,
) -> dict:
    """Read user files into the canonical schema (PII masked) and (optionally) write them as Parquet.

    The encoding defaults to ``ingest.encoding``; PII is masked when ``preprocess.mask_pii``
    says so. Records whose field count differs from the header are counted (``malformed``),
    not written: ``reviewops validate`` quarantines them with their line numbers.
    """
    from reviewops.data.ingest import ingest

    mask_pii = settings.preprocess.mask_pii
    result = ingest(Path(path), columns, encoding=encoding or settings.ingest.encoding, mask_pii=mask_pii)
    info = {
        "input": str(path),
        "files": result.files,
        "encodings": result.encodings,
        "rows": result.rows,
        "per_file": result.per_file,
        "malformed": len(result.malformed),
        "pii_masked": mask_pii,
    }
    if out is not None:
        info["output"] = str(_write_parquet(result.df, Path(out)))
    return info


def run_validate(
    settings: Settings,
    *,
    path: Path,
    columns: dict[str, str] | None = None,
    out: Path | None = None,
    batch: str | None = None,
    build_docs: bool = True,
    enforce: bool = True,
    encoding: str | None = None,
    stage: bool = False,
) -> dict:
    """Ingest (PII masked) + Great Expectations validation + quarantine of failing rows.

    Every input record ends up in exactly one of: the valid rows, the quarantine (with its
    reasons; records whose field count differs from the header included) or the repeats
    (rows the exporter repeated: same id, same content as a kept row). The report's counts
    add up to the records read. Where the files go is :class:`ValidateOutputs`: the DVC
    stage's outputs only with ``stage=True``, else the batch's own folder; ``out`` moves
    the valid rows.

    Raises:
        ReviewOpsError: a bad batch name, or an unreadable file (before anything is written).
        BatchFailedError: the failure rate is above ``validation.max_failure_rate``; raised after
            the quarantine and report are written, and carrying the report (``exc.report``).
    """
    from reviewops.data.ingest import ingest
    from reviewops.data.validation import validate_batch

    path = Path(path)
    batch = check_batch_name(batch) if batch else batch_name_for(path)
    outputs = (ValidateOutputs.for_stage if stage else ValidateOutputs.for_batch)(settings, batch, out)
    ingested = ingest(
        path, columns, encoding=encoding or settings.ingest.encoding, mask_pii=settings.preprocess.mask_pii
    )
    result = validate_batch(
        ingested.df,
        settings,
        batch,
        build_docs=build_docs,
        malformed=ingested.malformed,
        quarantine_path=outputs.quarantine,
    )
    _write_private_parquet(result.quarantined, outputs.quarantine)
    _write_parquet(result.valid, outputs.valid)
    _write_parquet(result.repeats, outputs.repeats)
    report = _validation_report(batch, path, ingested, result, outputs, settings.preprocess.mask_pii)
    _write_validation_report(report, result, settings, outputs.report, enforce=enforce)
    return report


def _validation_report(
    batch: str,
    path: Path,
    ingested: IngestResult,
    result: ValidationResult,
    outputs: ValidateOutputs,
    pii_masked: bool,
) -> dict[str, Any]:
    """The validate stage's report: counts that add up to the records read, and where the files went."""
    report: dict[str, Any] = {
        "batch": batch,
        "input": str(path),
        "files": ingested.files,
        "encodings": ingested.encodings,
        "ingested": ingested.rows,
        "valid": result.valid_rows,
        "quarantined": result.quarantined_rows,
        "repeated": result.repeated_rows,
        "failure_rate": round(result.failure_rate, 6),
        "failures": result.failures,
        "gx_success": result.gx_success,
        "pii_masked": pii_masked,
        "valid_path": str(outputs.valid),
        "quarantine_path": str(outputs.quarantine),
        "repeats_path": str(outputs.repeats),
        "data_docs": str(result.docs_path) if result.docs_path else None,
    }
    assert report["valid"] + report["quarantined"] + report["repeated"] == report["ingested"], report
    report["report_path"] = str(outputs.report)
    return report


def _write_validation_report(
    report: dict[str, Any], result: ValidationResult, settings: Settings, path: Path, *, enforce: bool
) -> None:
    """Write the report; a batch over ``max_failure_rate`` gets its error in it, then raises.

    Raises:
        BatchFailedError: with ``enforce``, the failure rate is above the limit; the report is
            written first and carried by the error (``exc.report``).
    """
    from reviewops.data.validation import BatchFailedError, check_failure_rate

    try:
        if enforce:
            check_failure_rate(result, settings.validation)
    except BatchFailedError as exc:
        report["error"] = str(exc)
        write_json(path, report)
        exc.report = report
        raise
    write_json(path, report)


def _not_a_stage_folder(settings: Settings, folder: Path, command: str) -> Path:
    """Refuse an ad-hoc run whose outputs would land in a DVC stage's folder (interim, processed...)."""
    paths = settings.paths
    stage_dirs = {
        Path(d).resolve() for d in (paths.interim_dir, paths.processed_dir, paths.quarantine_dir, paths.reports_dir)
    }
    if Path(folder).resolve() in stage_dirs:
        raise ReviewOpsError(
            f"{command}: writing into {folder} would replace the DVC pipeline's outputs; "
            f"work in a batch folder (`reviewops validate FILE` writes "
            f"{paths.interim_dir}/batches/<batch>/), name another --out, or pass --stage "
            f"(what dvc.yaml runs)"
        )
    return Path(folder)


def _read_input(path: Path, columns: tuple[str, ...], producer: str) -> pd.DataFrame:
    """A stage's input Parquet file, refused in one line when it lacks the columns the stage reads."""
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise ReviewOpsError(f"{path}: file not found (it is written by `reviewops {producer}`)")
    try:
        # The footer says which columns there are: a wrong file is refused without reading its rows.
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise ReviewOpsError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise ReviewOpsError(
            f"{path}: no column(s) {', '.join(missing)}; this stage reads the output of `reviewops {producer}`"
        )
    return pd.read_parquet(path)


def run_preprocess(settings: Settings, *, path: Path, out: Path | None = None, stage: bool = False) -> dict:
    """Clean, mask PII, deduplicate and label validated rows.

    With ``stage=True`` (the DVC stage): ``clean.parquet`` at ``out`` (default
    ``<interim_dir>/clean.parquet``), ``duplicates.parquet`` beside it, rows left empty by
    cleaning in ``<quarantine_dir>/preprocess.parquet``, the report in
    ``<reports_dir>/preprocess.json``. Otherwise everything goes to one folder, ``out``'s or the
    input's (a batch folder): ``clean``, ``duplicates``, ``rejected.parquet`` and
    ``preprocess.json``; a folder of the DVC pipeline is refused.
    """
    from reviewops.data.clean import preprocess

    path = Path(path)
    if stage:
        out = Path(out or settings.paths.interim_dir / "clean.parquet")
        rejected = settings.paths.quarantine_dir / "preprocess.parquet"
        report_file = settings.paths.reports_dir / "preprocess.json"
    else:
        folder = _not_a_stage_folder(settings, Path(out).parent if out else path.parent, "preprocess")
        out = Path(out or folder / "clean.parquet")
        rejected, report_file = folder / "rejected.parquet", folder / "preprocess.json"
    result = preprocess(_read_input(path, ("review_id", "text", "rating"), "validate"), settings.preprocess)
    _write_parquet(result.clean, out)
    dup_path = _write_parquet(result.duplicates, out.with_name("duplicates.parquet"))
    rej_path = _write_private_parquet(result.rejected, rejected)
    report = {**result.report, "clean_path": str(out), "duplicates_path": str(dup_path), "rejected_path": str(rej_path)}
    report["report_path"] = str(write_json(report_file, report))
    return report


def run_split(settings: Settings, *, path: Path, out_dir: Path | None = None, stage: bool = False) -> dict:
    """Grouped, stratified train/val/test split written as Parquet files.

    With ``stage=True`` (the DVC stage) into ``out_dir`` (default ``<processed_dir>``) with the
    report in ``<reports_dir>/split.json``; otherwise into ``out_dir`` (default ``split/`` beside
    the input) with ``split.json`` there, never into a folder of the DVC pipeline.
    """
    from reviewops.data.split import split, split_report

    path = Path(path)
    if stage:
        out_dir = Path(out_dir or settings.paths.processed_dir)
        report_file = settings.paths.reports_dir / "split.json"
    else:
        out_dir = _not_a_stage_folder(settings, Path(out_dir or path.parent / "split"), "split")
        report_file = out_dir / "split.json"
    parts = split(_read_input(path, ("review_id", "product_id", "label", "label_id"), "preprocess"), settings.split)
    report = split_report(parts)
    for name, part in parts.items():
        report[name]["path"] = str(_write_parquet(part, out_dir / f"{name}.parquet"))
    report["report_path"] = str(write_json(report_file, report))
    return report
