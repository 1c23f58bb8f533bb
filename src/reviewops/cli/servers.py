"""CLI for a team: ``reviewops servers start|stop|status``, a shared MLflow (and Prefect) server on PostgreSQL.

The work is :mod:`reviewops.servers.stack`; this module parses options and prints the ``export``
lines a user pastes into the shells that run the flows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from reviewops.cli.common import JSON_OPTION, emit, out_console
from reviewops.servers.stack import export_lines, start_stack, status, stop_stack

FolderOption = Annotated[
    Path,
    typer.Option(
        "--folder",
        metavar="DIR",
        help="State folder: PostgreSQL's data, the MLflow artifact store, logs, state.json (kept between starts).",
    ),
]

servers_app = typer.Typer(
    name="servers",
    help=(
        "Shared servers for many machines: PostgreSQL, an MLflow tracking server on it (runs, registry, "
        "artifacts), and with --prefect the Prefect server on the same PostgreSQL.\n\n"
        "`reviewops servers start` prints the lines to paste into every shell that runs the flows "
        "(export MLFLOW_TRACKING_URI=..., export PREFECT_API_URL=...); `status` tells what answers; "
        "`stop` stops them. Needs Debian's postgresql-15 package (initdb, pg_ctl)."
    ),
    no_args_is_help=True,
)


@servers_app.command("start")
def start_cmd(
    folder: FolderOption = Path(".servers"),
    prefect: Annotated[bool, typer.Option("--prefect", help="Also start the Prefect server on it.")] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address the MLflow and Prefect servers listen on (PostgreSQL: 127.0.0.1).")
    ] = "127.0.0.1",
    mlflow_port: Annotated[int, typer.Option("--mlflow-port", min=1, max=65535, metavar="PORT")] = 5000,
    prefect_port: Annotated[int, typer.Option("--prefect-port", min=1, max=65535, metavar="PORT")] = 4200,
    workers: Annotated[int, typer.Option("--workers", min=1, help="MLflow server worker processes.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each server to answer.")] = 180.0,
    as_json: bool = JSON_OPTION,
) -> None:
    """Start PostgreSQL and the MLflow tracking server on it (with --prefect the Prefect server too) in the background.

    PostgreSQL (a cluster in FOLDER/postgres, created on first start, listening on 127.0.0.1
    only) holds MLflow's runs, metrics, registered models and aliases in database mlflow, and
    with --prefect Prefect's flow runs in database prefect. The MLflow server stores artifacts
    itself in FOLDER/mlartifacts (--serve-artifacts): clients upload and download through HTTP
    and need nothing but MLFLOW_TRACKING_URI. Waits until each answers; what already runs is
    kept. Logs in FOLDER/logs. The data survive `stop`: the next start finds them.

    Prints export lines to paste into each shell that runs the flows (`python -m flows.retrain`,
    workers). With --host 0.0.0.0 the servers are reachable from other machines, without any
    authentication: keep them behind a firewall.

    Examples:
      reviewops servers start
      reviewops servers start --prefect --mlflow-port 5001
      eval "$(reviewops servers start --prefect | grep ^export)"
    """
    result = start_stack(
        folder,
        host=host,
        mlflow_port=mlflow_port,
        prefect=prefect,
        prefect_port=prefect_port,
        workers=workers,
        timeout=timeout,
    )
    _print(result, as_json)


@servers_app.command("status")
def status_cmd(folder: FolderOption = Path(".servers"), as_json: bool = JSON_OPTION) -> None:
    """Which servers of FOLDER run and answer, their URLs and logs, and the export lines for those that do.

    Examples:
      reviewops servers status
      reviewops servers status --json
    """
    _print(status(folder), as_json)


@servers_app.command("stop")
def stop_cmd(folder: FolderOption = Path(".servers"), as_json: bool = JSON_OPTION) -> None:
    """Stop the Prefect and MLflow servers that `servers start` started from FOLDER, then PostgreSQL.

    The data stay in FOLDER (PostgreSQL's cluster, the artifacts): `servers start` brings them back.

    Examples:
      reviewops servers stop
    """
    result = stop_stack(folder)
    if as_json:
        return emit(result, True)
    lines = [f"{name}: {'stopped' if was else 'was not running'}" for name, was in result["stopped"].items()]
    out_console.print("\n".join(lines), soft_wrap=True, markup=False, highlight=False, emoji=False)


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return emit(result, True)
    lines = []
    for name, server in result["servers"].items():
        where = server.get("client_url") or f"127.0.0.1:{server.get('port')}"
        state = "up" if server.get("up") else "down"
        lines.append(f"{name}: {state}  {where}  (log: {server.get('log')})")
    lines = lines or [f"no servers started from {result['folder']}: run `reviewops servers start`"]
    exports = export_lines(result)
    if exports:
        lines += ["", "Paste into each shell that runs the flows:", *exports]
    out_console.print("\n".join(lines), soft_wrap=True, markup=False, highlight=False, emoji=False)


def register(app: typer.Typer) -> None:
    """Add ``servers`` (start, stop, status) to the root CLI."""
    app.add_typer(servers_app, name="servers")
