"""The ``reviewops`` command line: one command per pipeline stage.

Every command accepts ``--json`` to print its result (counts, paths, metrics) as one JSON
object on stdout; progress goes to stderr. Expected failures print one ``error:`` line
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

from reviewops.cli import data, models, monitor, release, scoring, serve, servers, ui
from reviewops.cli.common import State, err_console, unwrap_help
from reviewops.config import ConfigError
from reviewops.errors import ReviewOpsError

app = typer.Typer(
    name="reviewops",
    help=(
        "ReviewOps: validate, version, train, gate, serve and monitor review summarization "
        "and sentiment models.\n\n"
        "Typical order: data generate -> ingest -> validate -> preprocess -> split -> "
        "models pull -> train -> evaluate -> gate -> package -> drift.\n\n"
        "Settings come from params.yaml; override any key with --set key.sub=value."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    params: Path = typer.Option(
        None, "--params", "-p", help="Params file (default: ./params.yaml or $REVIEWOPS_PARAMS)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Override a params key, e.g. --set validation.max_failure_rate=0.3 (repeatable)."
    ),
) -> None:
    ctx.obj = State(params=params, overrides=list(set_))


# Each area's module registers its commands (reviewops/cli/<area>.py: register(app)).
for _area in (data, models, release, serve, monitor, scoring, ui, servers):
    _area.register(app)
# Docstrings as help that Rich re-wraps cleanly at any width (no half-empty lines).
unwrap_help(app)


def main() -> None:
    """Console-script entry point with one-line errors."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except (ReviewOpsError, ConfigError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
