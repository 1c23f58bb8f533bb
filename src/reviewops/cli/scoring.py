"""CLI for bulk scoring: ``reviewops score PATH --out DIR`` puts every review through both models on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from reviewops.cli.common import JSON_OPTION, emit, err_console, get_settings, out_console, progress
from reviewops.cli.data import COLUMNS_OPTION

OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="The scored dataset's folder (default: score.out_dir).")
]
BatchOption = Annotated[
    str | None,
    typer.Option("--batch", help="Batch name: letters, digits, '.', '_', '-' (default: the file or folder name)."),
]
SummariesOption = Annotated[
    str | None,
    typer.Option(
        "--summaries",
        help="none | all | sample:N (default: score.summaries = sample:50: the N reviews of the batch with "
        "the smallest review_id hash). A summary costs ~100x a sentiment on CPU.",
    ),
]
SentimentOption = Annotated[
    str | None,
    typer.Option(
        "--sentiment-model",
        help="NAME@ALIAS, NAME/VERSION or a model folder (default: the registry champion, else models/trained).",
    ),
]
SummarizerOption = Annotated[
    str | None, typer.Option("--summarizer-model", help="As --sentiment-model, for the summarizer.")
]
RayOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="A running Ray cluster (e.g. auto, 10.0.0.1:6379); default: score.ray_address, $RAY_ADDRESS, "
        "else a local Ray for this run ('local' forces one).",
    ),
]
TrackOption = Annotated[
    bool | None,
    typer.Option("--track/--no-track", help="Log an MLflow run (default: when MLFLOW_TRACKING_URI or ./mlflow.db)."),
]


def score_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A CSV/TSV, JSONL or Parquet file, or a folder of them (any size)."),
    out: OutOption = None,
    columns: str = COLUMNS_OPTION,
    batch: BatchOption = None,
    summaries: SummariesOption = None,
    sentiment_model: SentimentOption = None,
    summarizer_model: SummarizerOption = None,
    ray_address: RayOption = None,
    track: TrackOption = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Score a batch of reviews: sentiment (label + probabilities), summaries, language, on Ray.

    The batch is read in partitions of score.chunk_rows rows, checked and cleaned as for training
    (quarantine with reasons, PII masked, duplicates dropped), then scored by an actor pool.
    Writes <out>/batch=<batch>/part-*.parquet, _quarantine/, _duplicates/ and
    _reports/<batch>.json. A rerun skips the partitions already written; a killed run resumes.
    Input rows = scored + quarantined + deduplicated.
    """
    from reviewops.scoring.score import run_score

    settings = get_settings(ctx)

    def log(message: str) -> None:
        if not as_json:
            err_console.print(f"[dim]-[/] {escape(message)}", highlight=False)

    with progress(f"scoring {path}", enabled=not as_json):
        result = run_score(
            settings,
            path=path,
            out_dir=out,
            columns=columns or None,
            batch=batch,
            summaries=summaries,
            sentiment_model=sentiment_model,
            summarizer_model=summarizer_model,
            ray_address=ray_address,
            track=track,
            log=log,
        )
    data = result.to_dict()
    if as_json:
        emit(data, True)
    else:
        _print_result(data)


def _print_result(data: dict[str, Any]) -> None:
    """The counts (input = scored + quarantined + deduplicated), the summaries mode, where things went."""
    counts, parts = data["counts"], data["partitions"]
    out_console.print(
        f"{counts['input_rows']} input rows = {counts['scored']} scored + {counts['quarantined']} quarantined "
        f"+ {counts['deduplicated']} deduplicated",
        highlight=False,
    )
    out_console.print(f"summaries: {data['summaries']['mode']} ({data['summaries']['count']} written)", highlight=False)
    out_console.print(
        f"partitions: {len(parts['written'])} written, {len(parts['skipped'])} already there; "
        f"scored dataset: {data['outputs']['scored']}; report: {data['outputs']['report']}",
        highlight=False,
    )
    speed = data["throughput"].get("rows_per_s")
    if speed:
        out_console.print(f"throughput: {speed:g} reviews/s over {data['throughput']['scoring_seconds']:g} s on Ray")


def register(app: typer.Typer) -> None:
    """Add the score command to the root app."""
    app.command("score")(score_cmd)
