"""Shared CLI plumbing: settings from the root options, JSON/table output, progress bars, quiet libraries.

Each area of the CLI lives in its own ``cli_<area>.py`` with a ``register(app)`` function,
so stages can be added without editing one big file. The flows' entry points use the output
helpers too: :func:`quiet_output` (no progress bars in a log, no library warnings) and
:func:`print_links` (a closing list whose paths and commands survive any terminal width).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
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

# Width of a console that is not a terminal (a log file, a pipe, `make run > log`): wide enough
# that no table cell is cut with "…" and no path is wrapped. $COLUMNS still wins when set.
LOG_WIDTH = 1000


class _Console(Console):
    """A Rich console that sizes to the terminal, and to :data:`LOG_WIDTH` columns when not on one.

    Rich assumes 80 columns off a terminal, which cut the Data Docs path and the serve commands
    in ``make run``'s log.
    """

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(LOG_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


# Progress and human-readable output go to stderr so that ``--json`` stdout stays parseable.
err_console: Console = _Console(stderr=True)
out_console: Console = _Console()

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


def emit(result: Mapping[str, Any], as_json: bool, title: str = "result", console: Console | None = None) -> None:
    """Print a command's result: one JSON object on stdout, or a readable table (never cut in a log)."""
    if as_json:
        sys.stdout.write(json.dumps(result, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in _flatten(result):
        table.add_row(key, str(value))
    (console or out_console).print(table)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def print_links(links: Sequence[tuple[str, str | None]], title: str, console: Console | None = None) -> None:
    """A closing list: each label on a line, its path or command alone on the next one.

    Printed without markup and without Rich's wrapping (``soft_wrap``), so a path or a command is
    one line whatever the terminal's width: it can be copied and pasted as it is. Entries
    whose value is None are left out.
    """
    console = console or out_console
    lines = [title]
    for label, value in links:
        if value:
            lines += [f"{label}:", f"  {value}"]
    console.print("\n".join(lines), soft_wrap=True, markup=False, highlight=False, emoji=False)


def unwrapped_help(doc: str | None) -> str:
    """A docstring as Typer's help: each paragraph's lines joined into one, so Rich wraps it at any width.

    Typer keeps single line breaks after the first paragraph, which, wrapped again at the terminal's
    width, leaves half-empty lines. A line that starts indented (an example) keeps its own line, and
    so does the text after it.

    Typer dedents the text after the first paragraph once more with :func:`inspect.cleandoc`, which
    measures the margin without that text's first line: when the second paragraph is
    ``Examples:`` and every later line is indented, the examples lost their indent. One more blank
    line after the first paragraph makes that first line an empty one, so the margin is measured
    on ``Examples:`` itself (0) and the indent stays; Typer drops that blank line.
    """
    paragraphs = []
    for paragraph in inspect.cleandoc(doc or "").split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and line[:1] not in ("", " ", "\t") and lines[-1][:1] not in ("", " ", "\t"):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    first, *rest = paragraphs
    return "\n\n\n".join([first, "\n\n".join(rest)]) if rest else first


def unwrap_help(app: typer.Typer) -> None:
    """Every command's help in ``app`` and its sub-apps through :func:`unwrapped_help`, docstrings included.

    Called once on the root app after every area has registered its commands, so a new command
    needs no wiring of its own.
    """
    if isinstance(app.info.help, str):
        app.info.help = unwrapped_help(app.info.help)
    for command in app.registered_commands:
        doc = command.help if isinstance(command.help, str) else inspect.getdoc(command.callback)
        command.help = unwrapped_help(doc)
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = unwrapped_help(group.help)
        if group.typer_instance is not None:
            unwrap_help(group.typer_instance)


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


# --------------------------------------------------------------------------- quiet libraries

# Read by tqdm (TQDM_*), huggingface_hub (and through it transformers), datasets and MLflow when
# they are imported: set before the first model is loaded.
PROGRESS_BARS_OFF = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# Libraries already imported read those variables too late: their own switches, by name.
_PROGRESS_SWITCHES = (
    ("transformers", "transformers.utils.logging", "disable_progress_bar"),
    ("huggingface_hub", "huggingface_hub.utils", "disable_progress_bars"),
    ("datasets", "datasets.utils.logging", "disable_progress_bar"),
)


def interactive() -> bool:
    """Whether both stdout and stderr are terminals (a person watching, not a log file)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def disable_progress_bars(environ: MutableMapping[str, str] | None = None) -> None:
    """Progress bars off in tqdm, huggingface_hub, transformers, datasets and MLflow.

    Environment variables the user set win (``setdefault``); Ray workers started afterwards
    inherit them.
    """
    environ = os.environ if environ is None else environ
    for key, value in PROGRESS_BARS_OFF.items():
        environ.setdefault(key, value)
    for package, module, switch in _PROGRESS_SWITCHES:
        if package in sys.modules:
            # An older or newer layout: its environment variable still applies.
            with suppress(ImportError, AttributeError):
                getattr(importlib.import_module(module), switch)()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Heads a classification fine-tune creates on top of a pretrained encoder (transformers' names).
_NEW_HEADS = ("classifier.", "pre_classifier.", "score.")


def _new_head_only(message: str) -> bool:
    """A transformers load report whose only rows are a new classification head (MISSING, by design)."""
    if "LOAD REPORT" not in message:
        return False
    rows = [[cell.strip() for cell in line.split("|")] for line in message.splitlines() if "|" in line]
    keys = [row for row in rows if row[0] and row[0] != "Key"]
    return bool(keys) and all(row[0].startswith(_NEW_HEADS) and row[1] == "MISSING" for row in keys)


def _says(text: str):
    return lambda message: text in message


# Expected notices from libraries, each dropped at its own logger by its own text; anything else
# those loggers say (another missing key, a load report with other rows) still prints.
_QUIET_LOGS = (
    # The summarizers tie lm_head to the input embeddings: checkpoints do not store it.
    ("transformers.trainer", _says("There were missing keys in the checkpoint model loaded: ['lm_head.weight']")),
    # Sentiment fine-tuning starts from a bare encoder: its classifier head is new.
    ("transformers.modeling_utils", _new_head_only),
    # The pyfunc wrappers are logged as Python objects on purpose; the input example is checked silently.
    ("mlflow.pyfunc", _says("Passing a Python object as `python_model`")),
    ("mlflow.pyfunc", _says("Validating input example against model signature")),
    # A local Ray turns token authentication on by default (what scoring wants); the notice says how to opt out.
    ("ray._private.authentication.authentication_token_setup", _says("Token authentication is enabled")),
)


class _DropRecords(logging.Filter):
    """Drops the records of one logger whose message (colour codes removed) passes ``test``."""

    def __init__(self, key: str, test: Any) -> None:
        super().__init__()
        self.key, self.test = key, test

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = _ANSI.sub("", record.getMessage())
        except (TypeError, ValueError):
            return True
        return not self.test(message)


_TYPE_HINTS = "Add type hints to the `predict` method"


def _dropped_warning(message: str, category: type[Warning], filename: str) -> bool:
    """MLflow's type-hint advice, raised by its data-validation module when a pyfunc class is defined."""
    return (
        issubclass(category, UserWarning)
        and _TYPE_HINTS in _ANSI.sub("", message)
        and Path(filename).as_posix().endswith("mlflow/pyfunc/utils/data_validation.py")
    )


def _quiet_showwarning(show: Any) -> Any:
    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' own signature
        if not _dropped_warning(str(message), category, filename):
            show(message, category, filename, lineno, file, line)

    showwarning.reviewops_quiet = True  # type: ignore[attr-defined]
    return showwarning


def quiet_libraries() -> None:
    """Silence the library notices ``make run`` printed that are expected here, each at its source.

    Targeted: one logger and one text per notice (:data:`_QUIET_LOGS`). MLflow's "Add type hints
    to the `predict` method" warning is raised under its own ``simplefilter("once")``, which
    outranks any filter set here: it is dropped where warnings are shown (``warnings.showwarning``,
    and the ``py.warnings`` logger Prefect sends warnings to), by its text and MLflow's module.
    Idempotent.
    """
    quiet = (
        *_QUIET_LOGS,
        ("py.warnings", lambda m: _TYPE_HINTS in m and "mlflow/pyfunc/utils/data_validation.py" in m),
    )
    for index, (name, test) in enumerate(quiet):
        logger = logging.getLogger(name)
        key = f"reviewops-quiet-{index}"
        if not any(isinstance(f, _DropRecords) and f.key == key for f in logger.filters):
            logger.addFilter(_DropRecords(key, test))
    if not getattr(warnings.showwarning, "reviewops_quiet", False):
        warnings.showwarning = _quiet_showwarning(warnings.showwarning)


def quiet_output() -> None:
    """What a flow calls first: the expected library notices off; progress bars off unless on a terminal."""
    quiet_libraries()
    if not interactive():
        disable_progress_bars()
