"""CLI for monitoring: ``reviewops drift`` compares a new batch with the champion's training data.

With ``--scored DIR`` (a scored dataset, ``reviewops score --out DIR``) the batch's stored predictions
are its side of the prediction drift and the trend's labels where it has no ratings; the champion
then predicts only the reference side (:func:`reviewops.monitoring.predictors.attach_scored`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from reviewops.cli.common import JSON_OPTION, emit, err_console, get_settings, out_console, progress
from reviewops.config import Settings

if TYPE_CHECKING:
    import pandas as pd

    from reviewops.monitoring.common import Log
    from reviewops.monitoring.drift import DriftResult

EXIT_DRIFTED = 3

# Options of ``reviewops drift``, named once so the command's signature stays short.
CurrentOption = Annotated[
    Path,
    typer.Option(
        "--current",
        "-c",
        help="New batch: processed .parquet, or raw CSV/JSONL (or a folder) that "
        "is ingested, validated and preprocessed first.",
    ),
]
ReferenceOption = Annotated[
    Path | None,
    typer.Option(
        "--reference",
        "-r",
        help="Reference batch (default: the champion's training split, found through "
        "its MLflow run's lineage and checked by sha256; else "
        "<processed_dir>/train.parquet).",
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option("--name", "-n", help="Report name: reports/drift/<name>.html|.json (default: drift-<UTC time>)."),
]
FailOnDriftOption = Annotated[
    bool, typer.Option("--fail-on-drift", help=f"Exit with status {EXIT_DRIFTED} when drift is detected.")
]
ScoredOption = Annotated[
    Path | None,
    typer.Option(
        "--scored",
        help="Scored dataset holding the current batch (`reviewops score PATH --out DIR`): its predicted "
        "sentiment, joined by review_id, is the current side of the prediction drift and the trend's "
        "labels where there are no ratings; the champion (drift.champion_predictions) then predicts "
        "only the reference side.",
    ),
]
ScoredBatchOption = Annotated[
    str | None,
    typer.Option(
        "--scored-batch",
        help="The current batch's name in --scored (default: the name `reviewops score` gives --current: "
        "its file stem or folder name).",
    ),
]
TrackOption = Annotated[
    bool | None,
    typer.Option(
        "--track/--no-track",
        help="Log to MLflow (default: when MLFLOW_TRACKING_URI is set or ./mlflow.db exists).",
    ),
]


def drift_cmd(
    ctx: typer.Context,
    current: CurrentOption,
    reference: ReferenceOption = None,
    name: NameOption = None,
    fail_on_drift: FailOnDriftOption = False,
    scored: ScoredOption = None,
    scored_batch: ScoredBatchOption = None,
    track: TrackOption = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a new batch for drift: text descriptors, language/category/label mix, MiniLM embeddings.

    Descriptors and categorical drift use every row; embeddings and Evidently's text classifier
    use a fixed-seed sample of drift.sample_size rows per side. With --scored, the predicted
    sentiment comes from the scored dataset for the current batch and from the champion for the
    reference side. Writes an HTML report and a JSON summary under reports/drift/, adds the run
    to the Evidently workspace (`evidently ui --workspace reports/evidently_workspace`) and
    prints the decision. Exits 0 whether or not drift was found, unless --fail-on-drift.
    """
    scoring = (scored, scored_batch) if scored is not None else None
    result, out = _check_drift(
        get_settings(ctx), current, reference, name=name, track=track, as_json=as_json, scored=scoring
    )
    if as_json:
        emit(out, True)
    else:
        _print_decision(result)
    if fail_on_drift and result.drifted:
        raise typer.Exit(EXIT_DRIFTED)


def _scored_predictions(
    settings: Settings, cur_df: pd.DataFrame, current: Path, scored: tuple[Path, str | None], log: Log
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The current rows with the scored ``sentiment`` joined, and the predictors and their sources for run_drift.

    Raises:
        ReviewOpsError: the scored dataset has no row of this batch to join (named, with the command).
    """
    from reviewops.data.stages import batch_name_for
    from reviewops.monitoring.predictors import attach_scored, champion_predictors

    folder, batch = scored
    joined, scored_info = attach_scored(cur_df, folder, batch or batch_name_for(current), log, strict=True)
    predict_fn, summarize_len_fn, champion = champion_predictors(settings, log)
    if predict_fn is None:
        scored_info["note"] = (
            "no champion sentiment model (registry @champion or models/trained/sentiment) to predict the "
            "reference side: no prediction drift; the trend still reads the scored predictions"
        )
        log(scored_info["note"])
    return joined, {
        "predict_fn": predict_fn,
        "summarize_len_fn": summarize_len_fn,
        "current_labels": scored_info["column"],
        "champion": champion,
        "scored": scored_info,
    }


def _check_drift(
    settings: Settings,
    current: Path,
    reference: Path | None,
    *,
    name: str | None,
    track: bool | None,
    as_json: bool,
    scored: tuple[Path, str | None] | None = None,
) -> tuple[DriftResult, dict[str, Any]]:
    """Load both batches (the reference defaults to the champion's), run the check; the result and its JSON.

    ``scored``: (scored dataset, batch name or None) whose predictions are the current side's.
    """
    from reviewops.errors import ReviewOpsError
    from reviewops.monitoring.drift import run_drift
    from reviewops.monitoring.reference import champion_reference, load_batch

    lineage: dict = {"source": "--reference", "path": str(reference)}
    if reference is None:
        reference, lineage = champion_reference(settings)
    if not reference.exists():
        raise ReviewOpsError(
            f"reference {reference} not found; run the data stages (`dvc repro split`) or pass --reference"
        )
    with progress("loading batches", enabled=not as_json):
        ref_df, ref_info = load_batch(reference, settings)
        cur_df, cur_info = load_batch(current, settings)

    def log(message: str) -> None:
        if not as_json:
            err_console.print(f"[dim]-[/] {message}", highlight=False)

    found: dict[str, Any] = {}
    if scored is not None:
        cur_df, found = _scored_predictions(settings, cur_df, current, scored, log)
    result = run_drift(
        settings,
        reference=ref_df,
        current=cur_df,
        predict_fn=found.get("predict_fn"),
        summarize_len_fn=found.get("summarize_len_fn"),
        current_labels=found.get("current_labels"),
        name=name,
        track=track,
        log=log,
    )
    out = {
        **result.to_dict(),
        "reference": {**ref_info, "lineage": lineage},
        "current": cur_info,
        "signals": result.summary["decision"]["signals"],
        "predictions": {**result.summary["predictions"], "scored": found.get("scored")},
        "champion": found.get("champion"),
    }
    return result, out


def _print_decision(result: DriftResult) -> None:
    decision = result.decision
    table = Table(title=f"drift check {result.summary['name']}", title_justify="left")
    for col in ("signal", "score", "threshold", "fired", "detail"):
        table.add_column(col)
    for s in decision.signals:
        score = "n/a" if s.score is None else f"{s.score:.3f}"
        fired = "[bold red]yes[/]" if s.fired else "[green]no[/]"
        table.add_row(s.name, score, f"{s.threshold:.3g}", fired, s.detail)
    out_console.print(table)
    verdict = "[bold red]DRIFTED[/]" if decision.drifted else "[bold green]no drift[/]"
    out_console.print(f"{verdict}: {decision.reason}", highlight=False)
    out_console.print(result.summary["sampling"]["note"], highlight=False)
    sources = result.summary["predictions"]
    if sources.get("current"):
        out_console.print(
            f"predicted sentiment: reference side {sources['reference']}, current side {sources['current']}",
            highlight=False,
        )
    if result.summary["trend"].get("note"):
        out_console.print(f"sentiment trend: {result.summary['trend']['note']}", highlight=False)
    trend = result.summary["trend"]
    agreement = (trend.get("agreement") or {}).get("rate")
    out_console.print(
        f"sentiment trend labels: {trend.get('source') or 'none'}"
        + (f"; ratings and predicted sentiment agree on {agreement:.3f}" if agreement is not None else ""),
        highlight=False,
    )
    if decision.alerts:
        out_console.print(
            f"{len(decision.alerts)} sentiment-trend alert(s): "
            + ", ".join(f"{a['product_id']} {a['period']} (+{a['change']:.2f})" for a in decision.alerts[:5]),
            highlight=False,
        )
    out_console.print(f"report: {result.html_path}\nsummary: {result.json_path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the drift command to the root app."""
    app.command("drift")(drift_cmd)
