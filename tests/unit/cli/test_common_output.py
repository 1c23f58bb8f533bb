"""Output helpers for make run and the CLI: nothing cut in a log, copyable closing lines, quiet libraries."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from reviewops.cli import common

LONG_PATH = "file:///work/main/great_expectations/gx/uncommitted/data_docs/local_site/index.html" + "/x" * 40


def _log_console() -> tuple[common.Console, io.StringIO]:
    """The console make run gets when stdout is a file: not a terminal."""
    buf = io.StringIO()
    return common._Console(file=buf), buf


def test_tables_in_a_log_are_not_cut(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    console, buf = _log_console()
    assert not console.is_terminal and console.width == common.LOG_WIDTH
    common.emit({"data_docs": LONG_PATH, "clean": 2614}, as_json=False, title="data", console=console)
    out = buf.getvalue()
    assert LONG_PATH in out and "…" not in out
    assert max(len(line) for line in out.splitlines()) < common.LOG_WIDTH


def test_columns_still_wins_off_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    console, _ = _log_console()
    assert console.width == 60


def test_links_keep_each_path_and_command_whole_on_its_own_line():
    buf = io.StringIO()
    narrow = common.Console(file=buf, width=40)  # a narrow terminal: Rich would wrap at 40
    command = ".venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000"
    common.print_links(
        [("Data Docs", LONG_PATH), ("MLflow UI", command), ("Bento", None), ("[bold]x[/]", "a [b] c")],
        "where to look",
        console=narrow,
    )
    assert buf.getvalue().splitlines() == [
        "where to look",
        "Data Docs:",
        f"  {LONG_PATH}",
        "MLflow UI:",
        f"  {command}",
        "[bold]x[/]:",  # no markup: printed as written
        "  a [b] c",
    ]


def test_progress_bar_variables_respect_the_user():
    env = {"TQDM_DISABLE": "0"}
    common.disable_progress_bars(env)
    assert env == {
        "TQDM_DISABLE": "0",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


BARS = """
import sys
from reviewops.cli.common import disable_progress_bars
if sys.argv[1] == "off":
    disable_progress_bars()
from tqdm.auto import tqdm
from transformers.utils import logging
for _ in tqdm(range(3), desc="plain-tqdm"):
    pass
for _ in logging.tqdm(range(3), desc="transformers-bar"):
    pass
"""


@pytest.mark.slow
def test_progress_bars_off_in_tqdm_and_transformers(monkeypatch):
    for key in common.PROGRESS_BARS_OFF:
        monkeypatch.delenv(key, raising=False)

    def bars(mode: str) -> str:
        proc = subprocess.run([sys.executable, "-c", BARS, mode], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    on = bars("on")
    assert "plain-tqdm" in on and "transformers-bar" in on
    off = bars("off")
    assert "plain-tqdm" not in off and "transformers-bar" not in off


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _said(name: str, *messages: str) -> list[str]:
    """What reaches a handler on logger ``name`` (after its filters) when it logs ``messages``."""
    logger, handler = logging.getLogger(name), _Collect()
    logger.addHandler(handler)
    try:
        for message in messages:
            logger.warning(message)
    finally:
        logger.removeHandler(handler)
    return handler.messages


def test_expected_library_notices_are_dropped_and_others_kept():
    common.quiet_libraries()
    common.quiet_libraries()  # idempotent: one filter per notice
    assert len([f for f in logging.getLogger("mlflow.pyfunc").filters if isinstance(f, common._DropRecords)]) == 2
    other = "There were missing keys in the checkpoint model loaded: ['model.embed_tokens.weight']."
    assert _said(
        "transformers.trainer", "There were missing keys in the checkpoint model loaded: ['lm_head.weight'].", other
    ) == [other]
    assert _said(
        "mlflow.pyfunc",
        "Passing a Python object as `python_model` causes it to be serialized using CloudPickle, ...",
        "Validating input example against model signature",
        "Failed to log the model",
    ) == ["Failed to log the model"]
    token = "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out."
    assert _said("ray._private.authentication.authentication_token_setup", token) == []


PYFUNC = """
import logging, sys, warnings
from reviewops.cli.common import quiet_libraries
if sys.argv[1] != "plain":
    quiet_libraries()
if sys.argv[1] == "prefect":  # Prefect sends warnings to the py.warnings logger
    logging.captureWarnings(True)
    logging.basicConfig(format="LOGGED %(name)s %(message)s")
import mlflow
class NoHints(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input
warnings.warn("a warning of our own")
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "quiet", "prefect"])
def test_mlflow_type_hint_warning_is_dropped_and_other_warnings_kept(mode):
    proc = subprocess.run([sys.executable, "-c", PYFUNC, mode], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("Add type hints to the `predict` method" in proc.stderr) is (mode == "plain")
    assert "a warning of our own" in proc.stderr
    assert ("LOGGED py.warnings" in proc.stderr) is (mode == "prefect")


@pytest.mark.slow
def test_a_load_report_of_a_new_classifier_head_is_dropped(tmp_path):
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(tmp_path / "bare")
    BertForMaskedLM(config).save_pretrained(tmp_path / "mlm")
    common.quiet_libraries()
    logger, handler = logging.getLogger("transformers.modeling_utils"), _Collect()
    logger.addHandler(handler)
    try:
        BertForSequenceClassification.from_pretrained(tmp_path / "bare")  # only classifier.* MISSING
        assert handler.messages == []
        BertForSequenceClassification.from_pretrained(tmp_path / "mlm")  # + UNEXPECTED cls.* rows
    finally:
        logger.removeHandler(handler)
    assert len(handler.messages) == 1 and "LOAD REPORT" in handler.messages[0]
    assert "UNEXPECTED" in handler.messages[0]
