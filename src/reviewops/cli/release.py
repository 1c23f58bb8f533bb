"""CLI for the model half after training: evaluate, gate, promote, rollback, summarize-product."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reviewops.cli.common import JSON_OPTION, emit, err_console, get_settings, out_console, progress

if TYPE_CHECKING:
    import pandas as pd

    from reviewops.config import Settings


# Options of ``reviewops evaluate``, named once so the command's signature stays short.
ProcessedDirOption = Annotated[
    Path | None,
    typer.Option("--processed-dir", help="Folder with test.parquet (default: paths.processed_dir)."),
]
SummarizerOption = Annotated[
    Path | None,
    typer.Option(
        "--summarizer",
        help="Trained summarizer directory (default: from reports/train.json, else models/trained/summarizer).",
    ),
]
SentimentOption = Annotated[
    Path | None,
    typer.Option(
        "--sentiment",
        help="Trained sentiment directory (default: from reports/train.json, else models/trained/sentiment).",
    ),
]
BaseSummarizerOption = Annotated[
    Path | None,
    typer.Option(
        "--base-summarizer",
        help="Untuned summarizer for the baseline (default: summarizer.model resolved under models/).",
    ),
]
EvalOutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Result JSON (default: <reports_dir>/eval.json).")
]
TrainReportOption = Annotated[
    Path | None,
    typer.Option("--train-report", help="Training report with run_id/model dirs (default: <reports_dir>/train.json)."),
]
LogOption = Annotated[bool, typer.Option("--log/--no-log", help="Log metrics and the predictions table to MLflow.")]
CompareChampionOption = Annotated[
    bool | None,
    typer.Option(
        "--compare-champion/--no-compare-champion",
        help="Re-score the registry champion on the same rows (default: evaluate.compare_champion).",
    ),
]
# What ``reviewops evaluate`` prints of the result's meta (the JSON on disk holds everything).
_EVAL_META_KEYS = (
    "test_rows",
    "summarization_rows",
    "summarization_sampled",
    "sample_seed",
    "out",
    "mlflow_run_id",
    "notes",
)


def evaluate_cmd(
    ctx: typer.Context,
    processed_dir: ProcessedDirOption = None,
    summarizer: SummarizerOption = None,
    sentiment: SentimentOption = None,
    base_summarizer: BaseSummarizerOption = None,
    out: EvalOutOption = None,
    train_report: TrainReportOption = None,
    log_mlflow: LogOption = True,
    compare_champion: CompareChampionOption = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Score the trained models on the test split, next to baselines and behaviour checks.

    Reports ROUGE-1/2/L (F-measure 0-1, Chinese per character) and sentiment accuracy /
    macro-F1, per language and category slices, the lead-8 and untuned-model baselines, and
    behaviour pass rates (invariance to product names and PII masks, negation flips, sane
    summaries). Generation runs on a fixed-seed sample of train.profiles.<profile>.max_eval_samples
    rows; the JSON's meta section says how many. Next: `reviewops gate`.

    Example: reviewops --set train.profile=quick evaluate --no-log
    """
    from reviewops.evaluation.evaluate import run_evaluate
    from reviewops.evaluation.scorecard import metrics_of
    from reviewops.registry.tracking import tracking_errors

    settings = get_settings(ctx)
    with tracking_errors(), progress("evaluating", enabled=not as_json) as advance:

        def log(msg: str) -> None:
            if not as_json:
                err_console.log(msg)
            advance()

        result = run_evaluate(
            settings,
            processed_dir=processed_dir,
            summarizer_path=summarizer,
            sentiment_path=sentiment,
            base_summarizer_path=base_summarizer,
            out_json=out,
            train_report=train_report,
            log_mlflow=log_mlflow,
            compare_champion=compare_champion,
            log=log,
        )
    # The headline numbers: every metric but the slices, of which only rougeL and macro-F1.
    summary = {
        k: round(v, 4)
        for k, v in metrics_of(result).items()
        if not k.startswith("slice/") or k.endswith(("/rougeL", "/sentiment_macro_f1"))
    }
    meta = {k: result["meta"].get(k) for k in _EVAL_META_KEYS}
    emit({**summary, "meta": meta}, as_json, "evaluation")


def gate_cmd(
    ctx: typer.Context,
    eval_json: Path = typer.Option(None, "--eval", help="Evaluation JSON (default: <reports_dir>/eval.json)."),
    train_report: Path = typer.Option(
        None,
        "--train-report",
        help="JSON with summarizer_uri, sentiment_uri, run_id "
        "(default: <reports_dir>/train.json, written by `reviewops train`).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Decision JSON (default: <reports_dir>/gate.json)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pass or block the trained models: absolute floors, and no regression vs the champion.

    Checks eval/rougeL >= gate.min_rougeL and eval/sentiment_macro_f1 >= gate.min_macro_f1,
    and, when a champion exists, that neither metric drops more than gate.max_regression
    below it. On a pass both models are registered (gate.summarizer_name,
    gate.sentiment_name), aliased `challenger`, and promoted to `champion` when
    gate.auto_promote. On a fail the registry is untouched and the exit code is 1.

    Example: reviewops --set gate.min_rougeL=0.1 gate
    """
    from reviewops.evaluation.gate import GateFailedError, run_gate
    from reviewops.registry.tracking import tracking_errors

    settings = get_settings(ctx)
    try:
        with tracking_errors():
            decision = run_gate(settings, eval_json=eval_json, train_report=train_report, out_json=out)
    except GateFailedError as exc:
        if as_json:
            emit(exc.decision.to_dict(), True)
        else:
            out_console.print(exc.decision.rich_table())
            for note in exc.decision.notes:
                err_console.print(f"note: {note}", highlight=False)
            err_console.print("[bold red]gate failed[/]: the registry was not changed.")
        raise typer.Exit(1) from None
    if as_json:
        emit(decision.to_dict(), True)
        return
    out_console.print(decision.rich_table())
    for note in decision.notes:
        err_console.print(f"note: {note}", highlight=False)
    for model, entry in decision.registered.items():
        out_console.print(f"{model}: {entry['name']} v{entry['version']} -> {', '.join(entry['aliases'])}")


def promote_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name, e.g. review-summarizer."),
    version: str = typer.Option(None, "--version", "-v", help="Version to promote (default: the challenger)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a version the `champion` (the one serving loads as models:/NAME@champion).

    The old champion keeps the `previous_champion` alias, so `reviewops rollback NAME`
    can undo this. Example: reviewops promote review-sentiment --version 3
    """
    from reviewops.registry import registry
    from reviewops.registry.tracking import configure_mlflow, tracking_errors

    with tracking_errors():
        configure_mlflow(get_settings(ctx))
        result = registry.promote(name, version)
    emit(result, as_json, "promoted")


def rollback_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name, e.g. review-summarizer."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Point `champion` back at the previous champion (and tag the demoted version `rolled_back`).

    Repeatable: each rollback steps one promotion further back. Serving picks the change up
    on its next load of models:/NAME@champion.
    """
    from reviewops.registry import registry
    from reviewops.registry.tracking import configure_mlflow, tracking_errors

    with tracking_errors():
        configure_mlflow(get_settings(ctx))
        result = registry.rollback(name)
    emit(result, as_json, "rolled back")


def _read_reviews(path: Path) -> pd.DataFrame:
    import pandas as pd

    from reviewops.errors import ReviewOpsError

    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise ReviewOpsError(
                f"{path} has no .parquet files; run the data stages (`dvc repro split`) or pass --data FILE"
            )
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if not path.is_file():
        raise ReviewOpsError(f"{path} not found; pass --data with a processed parquet/CSV/JSONL file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=suffix == ".jsonl")
    return pd.read_csv(path)


def _load_product_models(settings: Settings, summarizer: Path | None, sentiment: Path | None) -> tuple[Any, Any]:
    """The (summarizer, sentiment classifier) that ``summarize-product`` uses; None where not given."""
    summ = sent = None
    if summarizer is not None:
        from reviewops.models.summarizer import Summarizer

        summ = Summarizer.load(summarizer, settings.summarizer)
    if sentiment is not None:
        from reviewops.models.sentiment import SentimentClassifier

        sent = SentimentClassifier.load(sentiment, settings.sentiment)
    return summ, sent


def _product_rows(settings: Settings, product_id: str, data: Path | None, scored: Path | None) -> pd.DataFrame:
    """The product's rows: from the scored dataset (``--scored``), else the processed data (``--data``).

    Raises:
        ReviewOpsError: no product_id column, or no row of that product (names a few known ids).
    """
    from reviewops.errors import ReviewOpsError

    if scored is not None:
        return _scored_product_rows(scored, product_id)
    df = _read_reviews(Path(data or settings.paths.processed_dir))
    if "product_id" not in df.columns:
        raise ReviewOpsError("the data has no product_id column")
    rows = df[df["product_id"].astype(str) == product_id]
    if rows.empty:
        sample = ", ".join(map(str, df["product_id"].dropna().astype(str).unique()[:5]))
        raise ReviewOpsError(f"no reviews for product {product_id!r}; known ids include: {sample}")
    return rows


def _scored_product_rows(scored: Path, product_id: str) -> pd.DataFrame:
    """One product's scored rows, filtered while reading; an unknown id names a few known ones."""
    from reviewops.errors import ReviewOpsError
    from reviewops.scoring.dataset import read_scored
    from reviewops.scoring.sources import read_scored_rows

    rows = read_scored(scored, product_id=product_id)
    if len(rows):
        return rows
    ids = read_scored_rows(scored, columns=["product_id"])["product_id"].dropna().astype(str).unique()[:5]
    raise ReviewOpsError(f"no reviews for product {product_id!r}; known ids include: {', '.join(ids)}")


def _product_table(result: dict[str, Any]) -> dict[str, Any]:
    """What ``summarize-product`` prints beside the paragraph (the JSON has everything)."""
    table = {k: result[k] for k in ("product_id", "n_reviews", "language", "sentiment_counts", "average_rating")}
    table["sentiment source"] = result["label_source"]
    if result.get("agreement"):
        table["predicted sentiment"] = result["predicted_sentiment"]["counts"]
        table["rating/prediction agreement"] = f"{result['agreement']['rate']} ({result['agreement']['rows']} reviews)"
    return table | {
        "pros": ", ".join(p["phrase"] for p in result["pros"]),
        "cons": ", ".join(c["phrase"] for c in result["cons"]),
    }


def summarize_product_cmd(
    ctx: typer.Context,
    product_id: str = typer.Argument(..., help="The product_id whose reviews to summarize."),
    data: Path = typer.Option(
        None,
        "--data",
        "-d",
        help="Processed parquet (or CSV/JSONL with canonical columns), or a folder of parquet files "
        "(default: paths.processed_dir, all splits).",
    ),
    scored: Path = typer.Option(
        None,
        "--scored",
        help="A scored dataset (`reviewops score --out DIR`): its predicted sentiment and summaries, no model run.",
    ),
    summarizer: Path = typer.Option(
        None, "--summarizer", help="Summarize each review with this model dir (default: use the summary column)."
    ),
    sentiment: Path = typer.Option(
        None, "--sentiment", help="Classify each review with this model dir (default: label, else rating)."
    ),
    top_k: int = typer.Option(5, "--top-k", help="How many pros and cons to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One product's reviews in a paragraph: sentiment mix, rating, recurring pros and cons.

    Pros/cons are phrases that recur in positive (negative) reviews more than in the others;
    Chinese uses character bigrams. Without model options it runs on the data alone. With
    --scored it reads the scored dataset: the predicted sentiment where reviews have no rating,
    the ratings and the predictions side by side (with their agreement rate) where they have
    both, and the scored summaries (the first sentences where a review was not summarized).

    Example: reviewops summarize-product P0042 --sentiment models/trained/sentiment

    Example: reviewops summarize-product P0042 --scored data/scored
    """
    from reviewops.errors import ReviewOpsError
    from reviewops.scoring.product import summarize_product

    settings = get_settings(ctx)
    if scored is not None and (data is not None or summarizer is not None or sentiment is not None):
        raise ReviewOpsError("--scored already holds predictions and summaries; drop --data/--summarizer/--sentiment")
    rows = _product_rows(settings, product_id, data, scored)
    summ, sent = _load_product_models(settings, summarizer, sentiment)
    with progress(f"summarizing {len(rows)} reviews", enabled=not as_json):
        result = summarize_product(rows, summ, sent, top_k=top_k)
    if as_json:
        emit(result, True)
        return
    out_console.print(result["summary"], highlight=False)
    emit(_product_table(result), False, "product")


def register(app: typer.Typer) -> None:
    """Add the evaluation, gate, registry and product commands to the root app."""
    for name, fn in (
        ("evaluate", evaluate_cmd),
        ("gate", gate_cmd),
        ("promote", promote_cmd),
        ("rollback", rollback_cmd),
        ("summarize-product", summarize_product_cmd),
    ):
        app.command(name)(fn)
