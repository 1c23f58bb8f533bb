"""Every ``reviewops ... --help`` at 80 and 120 columns: no half-empty lines, no line wider than the terminal,
indented examples on their own lines, whole where they fit. The commands are walked from the app, not listed.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reviewops.cli.app import app
from reviewops.cli.common import unwrapped_help

BOX = ("│", "╭", "╰")


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))
PATHS = [path for path, _ in COMMANDS]


def help_text(path: tuple[str, ...], columns: int) -> str:
    """``reviewops PATH --help`` as a terminal of ``columns`` columns shows it."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def is_example(line: str) -> bool:
    """A docstring line indented past the prose (Typer pads prose by one space, examples keep two more)."""
    return line.startswith("   ") and not line.lstrip().startswith(BOX)


def half_empty_lines(output: str, columns: int) -> list[str]:
    """Problems in a help screen: a line wider than the terminal, or a prose line ended early.

    Rich fills a wrapped paragraph's lines: a prose line followed by more prose is cut only where
    the next word would not fit (``columns`` less one space of padding on each side). A shorter
    one is the half-empty line a docstring's own line break leaves.
    """
    lines = [line.rstrip() for line in output.splitlines()]
    problems = [f"wider than {columns}: {line!r}" for line in lines if len(line) > columns]
    prose = [line if line.startswith(" ") and not line.lstrip().startswith(BOX) else "" for line in lines]
    for line, after in zip(prose, prose[1:], strict=False):
        if not line.strip() or not after.strip() or is_example(line) or is_example(after):
            continue
        if len(line.strip()) + 1 + len(after.split()[0]) <= columns - 2:
            problems.append(f"ends early: {line.strip()!r} then {after.strip()!r}")
    return problems


def test_the_walk_finds_every_command_and_sub_command():
    names = {" ".join(path) for path in PATHS}
    assert {"", "score", "ui", "drift", "data", "data generate", "models", "models pull", "models list"} <= names
    assert len(names) == len(PATHS) > 15
    assert {"ui", "models pull", "models list", "train", "serve", "ingest"} <= {" ".join(p) for p in WITH_EXAMPLES}


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(path) or "reviewops")
def test_help_has_no_half_empty_lines(path, columns):
    output = help_text(path, columns)
    assert "Usage: reviewops" in output
    assert half_empty_lines(output, columns) == []


WITH_EXAMPLES = [path for path, cmd in COMMANDS if any(line.startswith(" ") for line in (cmd.help or "").splitlines())]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=" ".join)
def test_indented_examples_stay_whole_on_their_own_lines(path, columns):
    command = dict(COMMANDS)[path]
    examples = [line for line in command.help.splitlines() if line.startswith(" ")]
    fitting = [line for line in examples if len(line) + 2 <= columns]
    lines = [line.rstrip() for line in help_text(path, columns).splitlines()]
    for example in fitting:
        assert f" {example}" in lines, (example, lines)


def test_ui_and_models_pull_examples_keep_their_indent():
    """Two cases Typer handles apart: examples after prose (ui), and examples right after the first paragraph."""
    ui = [line.rstrip() for line in help_text(("ui",), 80).splitlines()]
    start = ui.index(" Examples:")
    assert ui[start + 1 : start + 5] == [
        "   reviewops ui",
        "   reviewops ui --start all",
        "   reviewops ui --stop",
        "   reviewops ui --json",
    ]
    pull = [line.rstrip() for line in help_text(("models", "pull"), 80).splitlines()]
    assert "   reviewops models pull --name gemma3-270m" in pull


def test_unwrapped_help_joins_each_paragraph_and_keeps_indented_examples():
    doc = """First line
    over two.

    A paragraph
    over two lines.

    Examples:
      reviewops ui
      reviewops ui --stop
    and prose after them
    on two lines.
    """
    assert unwrapped_help(doc) == (
        "First line over two.\n\n\nA paragraph over two lines.\n\nExamples:\n  reviewops ui\n  reviewops ui --stop\n"
        "and prose after them on two lines."
    )
    assert unwrapped_help("One line.") == "One line."
    assert unwrapped_help(None) == ""


def test_a_docstring_that_was_not_unwrapped_is_caught():
    """The check itself: Typer's rendering of a raw docstring leaves the half-empty lines it looks for."""
    doc = """Summary.

    A first line that the docstring breaks early
    and a second line that continues the same sentence for a while, long enough to wrap again at 80.
    """
    raw, unwrapped = typer.Typer(), typer.Typer()
    raw.command(help=doc)(lambda: None)
    unwrapped.command(help=unwrapped_help(doc))(lambda: None)
    outputs = [CliRunner().invoke(t, ["--help"], env={"COLUMNS": "80"}).output for t in (raw, unwrapped)]
    assert half_empty_lines(outputs[0], 80) == [
        "ends early: 'A first line that the docstring breaks early' then "
        "'and a second line that continues the same sentence for a while, long enough to'"
    ]
    assert half_empty_lines(outputs[1], 80) == []
