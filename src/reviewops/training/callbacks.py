"""Trainer callbacks: per-step metrics into the active MLflow run, progress lines on stderr, early stopping.

Under torchrun only rank 0 logs and prints, and every rank stops when rank 0 does (:func:`agreed_stop`).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from reviewops.config import Settings
from reviewops.training import distributed


def _metric_name(key: str) -> str:
    """The namespaced MLflow name of one Trainer log key (``eval_loss`` -> ``eval/loss``)."""
    if key.startswith("eval_"):
        return f"eval/{key[5:]}"
    if key == "train_loss":  # the end-of-training average
        return "train/avg_loss"
    if key.startswith("train_"):
        return f"train/{key[6:]}"
    return f"train/{key}"


def step_logger() -> Any:
    """A Trainer callback that logs every Trainer log line into the *active* MLflow run.

    Own callback instead of transformers' MLflowCallback: it never starts or ends runs, and it
    namespaces metric names (``train/loss``, ``eval/loss``).
    """
    from transformers import TrainerCallback

    class MlflowStepLogger(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not state.is_world_process_zero:  # under torchrun only rank 0 touches MLflow
                return
            mlflow = sys.modules.get("mlflow")  # never imported in this process: no run can be active
            if mlflow is None or mlflow.active_run() is None:
                return
            metrics: dict[str, float] = {}
            for key, value in (logs or {}).items():
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    continue
                metrics[_metric_name(key)] = float(value)
            if metrics:
                mlflow.log_metrics(metrics, step=int(state.global_step))

    return MlflowStepLogger()


def _stderr_printer() -> Any:
    """Replaces the Trainer's stdout printer: ``--json`` keeps stdout for the one result object."""
    from transformers import TrainerCallback

    class StderrPrinter(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not state.is_world_process_zero or not logs:
                return
            shown = {
                k: (float(f"{v:.4g}") if isinstance(v, float) else v)
                for k, v in logs.items()
                if k in ("loss", "learning_rate", "eval_loss", "eval_macro_f1", "train_runtime")
            }
            if shown:
                print(f"[train] step {state.global_step}/{state.max_steps} {shown}", file=sys.stderr, flush=True)

    return StderrPrinter()


def quiet_stdout(trainer: Any) -> Any:
    """Swap the Trainer's stdout progress (printer, tqdm) for one stderr line per log."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_stderr_printer())
    return trainer


def agreed_stop() -> Any:
    """A Trainer callback that makes every torchrun rank follow rank 0's decision to stop after an evaluation.

    The evaluation metrics early stopping reads are computed from predictions gathered from all
    ranks, so the ranks agree already; should they ever differ, a rank that stopped alone would
    leave the others waiting in the next gradient all-reduce forever. Runs after early stopping.
    """
    from transformers import TrainerCallback

    class AgreedStop(TrainerCallback):
        def on_evaluate(self, args, state, control, **kwargs):  # noqa: ANN001
            decision = bool(control.should_training_stop)
            control.should_training_stop = distributed.on_main(lambda: decision)

    return AgreedStop()


def trainer_callbacks(
    settings: Settings, has_eval: bool, patience: int | None = None, early_stopping: bool = True
) -> list[Any]:
    """The MLflow step logger, plus early stopping when there is an eval set (agreed by all ranks under torchrun).

    ``early_stopping=False``: evaluations are logged but never stop training (train every step).
    """
    from transformers import EarlyStoppingCallback

    callbacks: list[Any] = [step_logger()]
    if has_eval and early_stopping:
        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=patience or settings.train.early_stopping_patience)
        )
        if distributed.is_distributed():
            callbacks.append(agreed_stop())
    return callbacks
