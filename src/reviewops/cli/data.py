"""CLI for the data half: generate, ingest, validate, preprocess, split."""

from __future__ import annotations

from pathlib import Path

import typer

from reviewops.cli.common import JSON_OPTION, emit, err_console, get_settings, progress

COLUMNS_OPTION = typer.Option(
    None,
    "--columns",
    "-c",
    help="Map canonical columns to your file's columns, e.g. "
    "'review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time'. "
    "Canonical names: review_id, product_id, text, summary, rating, timestamp, language, category. "
    "Columns already named canonically need no mapping.",
)

ENCODING_OPTION = typer.Option(
    None,
    "--encoding",
    "-e",
    help="Text encoding of CSV/TSV/JSONL files (default: ingest.encoding = auto: a byte-order mark, "
    "else UTF-8, UTF-16 or GB18030/GBK, each checked over the whole file). Any Python codec name, "
    "e.g. gb18030, utf-16, latin-1, cp1252.",
)

data_app = typer.Typer(
    help="Synthetic data: generate the embedded default data set and drifted batches.", no_args_is_help=True
)


@data_app.command("generate")
def generate_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: paths.raw_dir)."),
    rows: int = typer.Option(None, "--rows", "-n", help="Number of reviews (default: generate.rows)."),
    seed: int = typer.Option(None, "--seed", help="Random seed; same seed => byte-identical file."),
    scenario: str = typer.Option(
        None, "--scenario", help="base | new_category | language_sentiment_shift (see --list)."
    ),
    list_scenarios: bool = typer.Option(False, "--list", help="List the scenarios and exit."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a seeded, deterministic CSV of realistic (and realistically messy) reviews.

    English and Chinese reviews over several product categories, with HTML, PII,
    duplicates, empty bodies and out-of-range ratings mixed in at small rates, so every
    downstream stage has something to catch. Drifted scenarios simulate new batches.
    """
    from reviewops.data.generate import SCENARIOS, write_generated

    if list_scenarios:
        emit(dict(SCENARIOS), as_json, "scenarios")
        return
    cfg = get_settings(ctx).generate
    out = out or get_settings(ctx).paths.raw_dir
    with progress("generating reviews", enabled=not as_json):
        path = write_generated(
            out, rows or cfg.rows, cfg.seed if seed is None else seed, scenario or cfg.scenario, cfg.zh_share
        )
    emit(
        {
            "path": str(path),
            "rows": rows or cfg.rows,
            "seed": cfg.seed if seed is None else seed,
            "scenario": scenario or cfg.scenario,
        },
        as_json,
        "generated",
    )


def _columns(spec: str | None) -> dict[str, str] | None:
    from reviewops.data.ingest import parse_column_map

    return parse_column_map(spec) if spec else None


def ingest_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A CSV/TSV, JSONL or Parquet file, or a folder of them."),
    columns: str = COLUMNS_OPTION,
    out: Path = typer.Option(None, "--out", "-o", help="Write the canonical batch as Parquet here."),
    encoding: str = ENCODING_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Read review files and map their columns onto the canonical schema.

    Emails, phone numbers and URLs are masked on the way in (preprocess.mask_pii). The result
    says which encoding each file was read with and how many records did not fit the header.

    Example (the real Amazon sample):

      reviewops ingest ../shared/data/amazon_fine_food_1k.csv --columns
      review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time
    """
    from reviewops.data.stages import run_ingest

    settings = get_settings(ctx)
    with progress("ingesting", enabled=not as_json):
        info = run_ingest(
            settings, path=path, columns=_columns(columns or settings.ingest.columns), out=out, encoding=encoding
        )
    emit(info, as_json, "ingested")


def validate_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Raw batch: a file or a folder of CSV/JSONL/Parquet files."),
    columns: str = COLUMNS_OPTION,
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Valid rows as Parquet (default: the batch folder's valid.parquet; with --stage, interim/valid.parquet).",
    ),
    batch: str = typer.Option(
        None, "--batch", help="Batch name: letters, digits, '.', '_', '-' (default: the file or folder name)."
    ),
    encoding: str = ENCODING_OPTION,
    stage: bool = typer.Option(
        False,
        "--stage",
        help="Write the DVC validate stage's outputs "
        "(interim/valid.parquet, quarantine/<batch>.parquet, reports/validation/"
        "<batch>.json). Only dvc.yaml's stage command uses it.",
    ),
    no_docs: bool = typer.Option(False, "--no-docs", help="Skip building Data Docs (faster)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate a batch with Great Expectations and quarantine the rows that fail.

    Every input row ends up valid, quarantined (with the rules it broke in
    `quarantine_reason`; rows whose field count differs from the header too) or repeated
    (the exporter repeated it: same id, same content): valid + quarantined + repeated =
    ingested. PII is masked before anything is written.

    Files go to the batch's own folder, data/interim/batches/<batch>/ (valid.parquet,
    quarantine.parquet, repeats.parquet, report.json), so a try-out never touches the
    pipeline's DVC outputs. Fails (exit 2) when the share of failing rows exceeds
    validation.max_failure_rate, naming the top failing rules; the quarantine and report are
    written first and --json still prints the report, with the error in it.
    """
    from reviewops.data.stages import run_validate
    from reviewops.data.validation import BatchFailedError

    settings = get_settings(ctx)
    try:
        with progress("validating", enabled=not as_json):
            report = run_validate(
                settings,
                path=path,
                columns=_columns(columns or settings.ingest.columns),
                out=out,
                batch=batch,
                build_docs=not no_docs,
                encoding=encoding,
                stage=stage,
            )
    except BatchFailedError as exc:
        if exc.report is not None:
            emit(exc.report, as_json, "validation (rejected)")
        raise
    emit(report, as_json, "validation")
    if not as_json and report.get("data_docs"):
        err_console.print(f"Data Docs: file://{Path(report['data_docs']).resolve()}")


def _stage_input(path: Path | None, stage: bool, default: Path, what: str, example: str) -> Path:
    if path is not None:
        return path
    if stage:
        return default
    from reviewops.errors import ReviewOpsError

    raise ReviewOpsError(
        f"name the {what} to read, e.g. {example} (what `reviewops validate FILE` wrote), "
        f"or pass --stage for the DVC stage's {default}"
    )


STAGE_HELP = "Read and write the DVC stage's files (what dvc.yaml runs); without it, a batch folder's."


def preprocess_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(
        None, help="Valid rows, e.g. data/interim/batches/<batch>/valid.parquet (with --stage: interim/valid.parquet)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Clean rows (default: clean.parquet beside the input; with --stage: interim/clean.parquet).",
    ),
    stage: bool = typer.Option(False, "--stage", help=STAGE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Strip HTML, normalize Unicode, mask PII, drop duplicates and map ratings to labels.

    Duplicates are not lost: they are written to duplicates.parquet beside the output with
    the id of the row they duplicate; rows left empty by cleaning go to rejected.parquet in
    the same folder (with --stage: quarantine/preprocess.parquet). Without --stage nothing is
    written into the DVC pipeline's folders, so a try-out never dirties `dvc status`.
    """
    from reviewops.data.stages import run_preprocess

    settings = get_settings(ctx)
    path = _stage_input(
        path,
        stage,
        settings.paths.interim_dir / "valid.parquet",
        "valid rows",
        f"{settings.paths.interim_dir}/batches/<batch>/valid.parquet",
    )
    with progress("preprocessing", enabled=not as_json):
        report = run_preprocess(settings, path=path, out=out, stage=stage)
    emit(report, as_json, "preprocess")


def split_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(
        None, help="Clean rows, e.g. data/interim/batches/<batch>/clean.parquet (with --stage: interim/clean.parquet)."
    ),
    out_dir: Path = typer.Option(
        None,
        "--out-dir",
        "-o",
        help="Folder for train/val/test.parquet (default: split/ beside the input; with --stage: paths.processed_dir).",
    ),
    stage: bool = typer.Option(False, "--stage", help=STAGE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Split into train/val/test, stratified by sentiment and grouped by product.

    No product's reviews appear in two splits. Sizes come from split.val_size/test_size.
    """
    from reviewops.data.stages import run_split

    settings = get_settings(ctx)
    path = _stage_input(
        path,
        stage,
        settings.paths.interim_dir / "clean.parquet",
        "clean rows",
        f"{settings.paths.interim_dir}/batches/<batch>/clean.parquet",
    )
    with progress("splitting", enabled=not as_json):
        report = run_split(settings, path=path, out_dir=out_dir, stage=stage)
    emit(report, as_json, "split")


def register(app: typer.Typer) -> None:
    """Add the data commands to the root app."""
    app.add_typer(data_app, name="data")
    app.command("ingest")(ingest_cmd)
    app.command("validate")(validate_cmd)
    app.command("preprocess")(preprocess_cmd)
    app.command("split")(split_cmd)
