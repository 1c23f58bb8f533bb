"""Helpers for the registry tests: a training-like run, evaluation numbers, gate settings, a shared store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow

from reviewops.config import GateConfig, PathsConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.gate import decide_and_register
from reviewops.registry.tracking import configure_mlflow

MD5 = "0123456789abcdef0123456789abcdef.dir"
NAMES = ["--set", "gate.summarizer_name=l-sum", "--set", "gate.sentiment_name=l-sent"]


class _Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # noqa: ANN001
        return model_input


def train_run(name: str) -> dict[str, str]:
    """A run like training's: the lineage param, two pyfunc models; returns the gate's ``model_uris``."""
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"data/dvc_md5": MD5})
        mlflow.log_metric("eval/rougeL", 0.123456789)  # evaluation logs to the training run
        uris = {
            f"{kind}_uri": mlflow.pyfunc.log_model(name=kind, python_model=_Echo(), pip_requirements=[]).model_uri
            for kind in ("summarizer", "sentiment")
        }
    return {**uris, "run_id": run.info.run_id}


def eval_result(rouge: float, f1: float) -> dict:
    return {
        "eval/rougeL": rouge,
        "eval/rouge1": 0.2,
        "eval/sentiment_macro_f1": f1,
        "eval/sentiment_accuracy": 0.8765432,
        "eval/contradiction_rate_macro": 0.1,
        "meta": {"test_fingerprint": "fp"},
    }


def error_of(result) -> str:  # noqa: ANN001
    """The one-line error a command raised (``reviewops``'s entry point prints it and exits 2)."""
    assert isinstance(result.exception, ReviewOpsError), result.output
    return " ".join(str(result.exception).split())


def gate_settings(root: Path, auto_promote: bool) -> Settings:
    gate = GateConfig(
        min_rougeL=0.1,
        min_macro_f1=0.5,
        max_regression=0.02,
        auto_promote=auto_promote,
        summarizer_name="l-sum",
        sentiment_name="l-sent",
    )
    return Settings(paths=PathsConfig(reports_dir=root / "reports", models_dir=root / "models"), gate=gate)


def build_store(root: Path) -> Iterator[tuple[Path, str, str]]:
    """One SQLite store: ``empty.db`` (a copy before anything is registered) and ``mlflow.db`` with
    l-sum/l-sent v1 (champion, from run ``train``) and v2 (challenger, from run ``retune batch-7``)."""
    old_env, old_cwd, old_uri = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd(), mlflow.get_tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    os.chdir(root)
    configure_mlflow(gate_settings(root, True))
    shutil.copyfile(root / "mlflow.db", root / "empty.db")
    first = train_run("train")
    decide_and_register(gate_settings(root, True), eval_result(0.123456789, 0.81), first)
    second = train_run("retune batch-7")
    decide_and_register(gate_settings(root, False), eval_result(0.13, 0.82), second)
    yield root, first["run_id"], second["run_id"]
    os.chdir(old_cwd)
    if old_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old_env
    mlflow.set_tracking_uri(old_uri)
