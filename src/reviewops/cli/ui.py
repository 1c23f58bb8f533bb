"""CLI for operators: ``reviewops ui`` lists, starts and stops the five UIs of a project on 127.0.0.1.

The catalogue (commands, URLs, what is missing, up or down) is :mod:`reviewops.monitoring.uis`;
starting and stopping them is :mod:`reviewops.monitoring.ui_servers`. This module only parses the
options and prints.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from reviewops.cli.common import JSON_OPTION, emit, get_settings, out_console
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.ui_servers import start_all, stop_started
from reviewops.monitoring.uis import DEFAULT_PORTS, NAMES, describe, probe, render

StartOption = Annotated[
    str | None,
    typer.Option(
        "--start",
        metavar="NAME|all",
        help=f"Start these in the background and wait until each answers: {', '.join(NAMES)} (comma-separated) "
        "or all. Logs and pid files go to reports/ui/.",
    ),
]
StopOption = Annotated[
    bool, typer.Option("--stop", help="Stop every UI that --start started (pid files in reports/ui/).")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each started UI to answer.")]


def _port(name: str) -> Any:
    return typer.Option(
        DEFAULT_PORTS[name], f"--{name}-port", min=1, max=65535, metavar="PORT", help=f"Port of the {name} UI."
    )


def ui_cmd(
    ctx: typer.Context,
    start_: StartOption = None,
    stop: StopOption = False,
    timeout: TimeoutOption = 180.0,
    mlflow_port: int = _port("mlflow"),
    prefect_port: int = _port("prefect"),
    evidently_port: int = _port("evidently"),
    docs_port: int = _port("docs"),
    bento_port: int = _port("bento"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Where to look after `make run`: the five operator UIs, which are up, and how to start them.

    The MLflow UI (runs, registry, aliases; port 5000), the Prefect UI (make run's flow runs: the
    same PREFECT_HOME, the UI on; 4200), the Evidently UI (drift dashboard; 8000), the Great
    Expectations Data Docs (a file, or served on 8080) and the champion Bento's Swagger page (3000),
    all on 127.0.0.1.

    Without options: one ready-to-paste command per UI, each on its own line, whether something
    already answers on its port, and what make run has not produced yet. Exits 0.

    --start all (or e.g. --start mlflow,prefect) starts them in the background, each in its own
    process group with its log in reports/ui/NAME.log, waits until each answers and prints its URL;
    exits 2 if one could not start (the others stay up). --stop stops those, and only those.

    Examples:
      reviewops ui
      reviewops ui --start all
      reviewops ui --stop
      reviewops ui --json
    """
    settings = get_settings(ctx)
    root = Path.cwd().resolve()
    folder = root / settings.paths.reports_dir / "ui"  # logs and pid files of what --start started
    if stop:
        stopped = stop_started(folder)
        lines = [f"{s['name']}: {'stopped' if s['stopped'] else 'was gone'} (pid {s['pid']})" for s in stopped]
        return _print({"stopped": stopped}, as_json, "\n".join(lines) or "nothing that `ui --start` started is running")
    ports = dict(zip(NAMES, (mlflow_port, prefect_port, evidently_port, docs_port, bento_port), strict=True))
    uis = describe(settings, ports, root)
    started, errors = start_all(uis, _chosen(start_), folder, timeout) if start_ else ([], [])
    for ui in uis:
        probe(ui)
    result = {"uis": [{**asdict(ui), "shell": ui.shell()} for ui in uis], "started": started, "errors": errors}
    _print(result, as_json, render(uis, started))
    if errors:
        raise ReviewOpsError("; ".join(errors))


def _chosen(start: str) -> list[str]:
    names = list(NAMES) if start.strip() == "all" else [n.strip() for n in start.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        raise ReviewOpsError(f"--start {start!r}: choose among {', '.join(NAMES)} or all (comma-separated)")
    return names


def _print(result: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        return emit(result, True)
    out_console.print(text, soft_wrap=True, markup=False, highlight=False, emoji=False)


def register(app: typer.Typer) -> None:
    """Add ``ui`` to the root CLI."""
    app.command("ui")(ui_cmd)
