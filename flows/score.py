"""Scoring flow: a batch of reviews -> validation + cleaning -> the champions on Ray -> a partitioned Parquet dataset.

Run ``python -m flows.score data/new.csv`` (or a folder, any size), or deploy it with
``python -m flows.deployments`` and run it on demand::

    prefect deployment run reviewops-score/score -p path=data/new.csv

The work is :func:`reviewops.scoring.score.run_score`, the same function ``reviewops score`` calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from reviewops.cli.common import quiet_output
from reviewops.config import Settings, load_settings

COUNT_KEYS = ("input_rows", "scored", "quarantined", "deduplicated")


@task(name="score-batch", cache_policy=NO_CACHE)
def score_batch(
    settings: Settings, path: str, out_dir: str | None, batch: str | None, summaries: str | None
) -> dict[str, Any]:
    """Validate, clean and score one batch on Ray; skips the partitions a previous run already wrote."""
    from reviewops.scoring.score import run_score

    result = run_score(
        settings, path=path, out_dir=out_dir, batch=batch, summaries=summaries, log=get_run_logger().info
    )
    return result.to_dict()


def counts_line(result: dict[str, Any]) -> str:
    """``input_rows=… scored=… quarantined=… deduplicated=…`` from a scoring result (its ``counts``)."""
    counts = result.get("counts") or result
    return " ".join(f"{key}={counts.get(key)}" for key in COUNT_KEYS)


@flow(name="reviewops-score", log_prints=True)
def score_flow(
    path: str,
    settings: Settings | None = None,
    out_dir: str | None = None,
    batch: str | None = None,
    summaries: str | None = None,
) -> dict[str, Any]:
    """Score one batch (a file or a folder) into the scored dataset.

    Steps (inside run_score): read the input in chunks (same column mapping as ingest) ->
    validation rules + quarantine with reasons, PII masked, cleaning and dedup (as training) ->
    sentiment and summaries (score.summaries) by the registry champions on a Ray actor pool ->
    ``<out_dir>/batch=<batch>/part-*.parquet`` + ``_reports/<batch>.json`` + one MLflow run ->
    counts logged here (input rows = scored + quarantined + deduplicated).
    """
    quiet_output()
    settings = settings or load_settings()
    result = score_batch(settings, path, out_dir, batch, summaries)
    get_run_logger().info("scored %s: %s", path, counts_line(result))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``PATH [--out DIR] [--batch NAME] [--summaries none|all|sample:N]``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", help="a batch file or folder (CSV/TSV/JSONL/Parquet)")
    parser.add_argument("--out", dest="out_dir", help="the scored dataset's folder (default: score.out_dir)")
    parser.add_argument("--batch", help="the batch name (default: the input's file name)")
    parser.add_argument("--summaries", help="none, all or sample:N (default: score.summaries)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the flow once from the command line and print its result as JSON."""
    args = parse_args(argv)
    quiet_output()
    result = score_flow(args.path, load_settings(), args.out_dir, args.batch, args.summaries)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
