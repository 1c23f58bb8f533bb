"""Shared CLI plumbing: settings from the root options, JSON/table output, progress bars.

Each area of the CLI lives in its own ``cli_<area>.py`` with a ``register(app)`` function,
so stages can be added without editing one big file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from reviewops.config import Settings, load_settings

# Progress and human-readable output go to stderr so that ``--json`` stdout stays parseable.
err_console = Console(stderr=True)
out_console = Console()

JSON_OPTION = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


@dataclass
class State:
    """Root options shared by every command."""

    params: Path | None = None
    overrides: list[str] = field(default_factory=list)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.params, self.overrides)
        return self._settings


def get_settings(ctx: typer.Context, extra: list[str] | None = None) -> Settings:
    """Settings from ``--params``/``--set`` on the root command plus command-level overrides."""
    state: State = ctx.obj if isinstance(ctx.obj, State) else State()
    if extra:
        return load_settings(state.params, [*state.overrides, *extra])
    return state.settings


def emit(result: Mapping[str, Any], as_json: bool, title: str = "result") -> None:
    """Print a command's result: one JSON object on stdout, or a readable table."""
    if as_json:
        sys.stdout.write(json.dumps(result, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in _flatten(result):
        table.add_row(key, str(value))
    out_console.print(table)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


@contextmanager
def progress(description: str, total: int | None = None, enabled: bool = True):
    """A Rich progress bar on stderr; yields ``advance(n=1)``."""
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    # Spinners for open-ended work vanish when done; real bars stay as a record.
    with Progress(*columns, console=err_console, transient=total is None, disable=not enabled) as prog:
        task = prog.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            prog.advance(task, n)

        yield advance
        if total is not None:
            prog.update(task, completed=total)
