"""The MLflow step logger: logs into an active run, and never imports MLflow when none can be active."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_step_logger_without_mlflow_imported_logs_nothing_and_imports_nothing():
    """Training outside an MLflow run (benchmarks, a GPU machine without MLflow) must not import MLflow."""
    code = textwrap.dedent(
        """
        import sys
        from types import SimpleNamespace
        from reviewops.training.callbacks import step_logger
        state = SimpleNamespace(is_world_process_zero=True, global_step=3)
        step_logger().on_log(None, state, None, logs={"loss": 0.5})
        print("mlflow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_step_logger_logs_namespaced_metrics_into_the_active_run(tmp_path):
    import mlflow

    from reviewops.training.callbacks import step_logger

    old_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    state = type("State", (), {"is_world_process_zero": True, "global_step": 7})()
    try:
        experiment = mlflow.create_experiment("callbacks")  # not the experiment an earlier test made active
        with mlflow.start_run(experiment_id=experiment) as run:
            step_logger().on_log(None, state, None, logs={"loss": 0.5, "eval_macro_f1": 0.7, "note": "x"})
        metrics = mlflow.get_run(run.info.run_id).data.metrics
    finally:
        mlflow.set_tracking_uri(old_uri)
    assert metrics == {"train/loss": 0.5, "eval/macro_f1": 0.7}
