"""Data stages as functions with file inputs and outputs.

The DVC stages (``dvc.yaml``, through the CLI) and the Prefect flows call these same
functions, so each stage's logic exists once. Each returns a JSON-able dict of counts
and paths, which the CLI prints and the flow passes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reviewops.config import Settings


def write_json(path: Path, data: dict) -> Path:
    """Write a report as pretty UTF-8 JSON (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def _write_parquet(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def batch_name_for(path: Path) -> str:
    """A batch name from an input path: ``data/raw`` -> ``raw``, ``x/new.csv`` -> ``new``."""
    path = Path(path)
    return path.stem if path.is_file() else path.name


def stage_ingest(path: Path, columns: dict[str, str] | None, out: Path | None = None) -> dict:
    """Read user files into the canonical schema and (optionally) write them as Parquet."""
    from reviewops.data.ingest import ingest

    result = ingest(Path(path), columns)
    info = {"input": str(path), "files": result.files, "rows": result.rows, "per_file": result.per_file}
    if out is not None:
        info["output"] = str(_write_parquet(result.df, Path(out)))
    return info


def stage_validate(settings: Settings, path: Path, columns: dict[str, str] | None = None,
                   out: Path | None = None, batch: str | None = None, build_docs: bool = True,
                   enforce: bool = True) -> dict:
    """Ingest + Great Expectations validation + quarantine of failing rows.

    Writes the valid rows to ``out`` (default ``<interim_dir>/valid.parquet``), the
    quarantined rows with their reasons to ``<quarantine_dir>/<batch>.parquet`` (an empty
    file when none failed, so downstream tools always find it) and a JSON report to
    ``<reports_dir>/validation/<batch>.json``.

    Raises:
        BatchFailedError: the failure rate is above ``validation.max_failure_rate`` (after
            the quarantine and report are written, so operators can inspect them).
    """
    from reviewops.data.ingest import ingest
    from reviewops.validation import check_failure_rate, validate_batch

    path = Path(path)
    batch = batch or batch_name_for(path)
    ingested = ingest(path, columns)
    result = validate_batch(ingested.df, settings, batch, build_docs=build_docs)
    out = Path(out or settings.paths.interim_dir / "valid.parquet")
    quarantine_path = settings.paths.quarantine_dir / f"{batch}.parquet"
    _write_parquet(result.quarantined, quarantine_path)
    _write_parquet(result.valid, out)
    report = {
        "batch": batch,
        "input": str(path),
        "files": ingested.files,
        "ingested": ingested.rows,
        "valid": result.valid_rows,
        "quarantined": result.quarantined_rows,
        "failure_rate": round(result.failure_rate, 6),
        "failures": result.failures,
        "gx_success": result.gx_success,
        "valid_path": str(out),
        "quarantine_path": str(quarantine_path),
        "data_docs": str(result.docs_path) if result.docs_path else None,
    }
    assert report["valid"] + report["quarantined"] == report["ingested"], report
    report["report_path"] = str(write_json(settings.paths.reports_dir / "validation" / f"{batch}.json",
                                           report))
    if enforce:
        check_failure_rate(result, settings.validation)
    return report


def stage_preprocess(settings: Settings, path: Path, out: Path | None = None) -> dict:
    """Clean, mask PII, deduplicate and label validated rows.

    Writes ``clean.parquet`` (``out``), ``duplicates.parquet`` beside it, rows left empty
    by cleaning to ``<quarantine_dir>/preprocess.parquet`` and ``<reports_dir>/preprocess.json``.
    """
    from reviewops.data.clean import preprocess

    out = Path(out or settings.paths.interim_dir / "clean.parquet")
    result = preprocess(pd.read_parquet(path), settings.preprocess)
    _write_parquet(result.clean, out)
    dup_path = _write_parquet(result.duplicates, out.with_name("duplicates.parquet"))
    rej_path = _write_parquet(result.rejected, settings.paths.quarantine_dir / "preprocess.parquet")
    report = {**result.report, "clean_path": str(out), "duplicates_path": str(dup_path),
              "rejected_path": str(rej_path)}
    report["report_path"] = str(write_json(settings.paths.reports_dir / "preprocess.json", report))
    return report


def stage_split(settings: Settings, path: Path, out_dir: Path | None = None) -> dict:
    """Grouped, stratified train/val/test split written as Parquet files."""
    from reviewops.data.split import split, split_report

    out_dir = Path(out_dir or settings.paths.processed_dir)
    parts = split(pd.read_parquet(path), settings.split)
    report = split_report(parts)
    for name, part in parts.items():
        report[name]["path"] = str(_write_parquet(part, out_dir / f"{name}.parquet"))
    report["report_path"] = str(write_json(settings.paths.reports_dir / "split.json", report))
    return report
