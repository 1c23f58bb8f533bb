"""One place that decides where MLflow tracks runs and stores the registry.

``$MLFLOW_TRACKING_URI`` wins; otherwise runs go to ``sqlite:///<project>/mlflow.db`` with
artifacts under ``<project>/mlartifacts``, so a fresh checkout needs no server. Nothing here
runs at import time: stages call :func:`configure_mlflow` inside their functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reviewops.config import Settings

ENV_VAR = "MLFLOW_TRACKING_URI"
DB_NAME = "mlflow.db"


def project_root() -> Path:
    """The project root: params paths are relative to the working directory, so is MLflow's."""
    return Path.cwd().resolve()


def tracking_uri(settings: Settings | None = None) -> str:
    """The tracking (and registry) URI: ``$MLFLOW_TRACKING_URI`` or the project's SQLite file."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    return f"sqlite:///{project_root() / DB_NAME}"


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow tracking *and* registry at :func:`tracking_uri` and select the experiment.

    Experiment creation (artifacts in ``mlartifacts/`` beside a local SQLite database) is
    :func:`reviewops.train.setup_mlflow`'s, reused here so training, evaluation, the gate and
    the registry always talk to the same store.

    Returns:
        The tracking URI in use.
    """
    import mlflow

    from reviewops.train import setup_mlflow

    uri = setup_mlflow(settings)
    mlflow.set_registry_uri(uri)
    return uri


@contextmanager
def use_run(run_id: str | None = None, run_name: str = "run",
            tags: dict[str, str] | None = None) -> Iterator[str]:
    """Yield a run id to log to: ``run_id`` as given, else the active run, else a new run.

    Callers log with explicit ``run_id=`` arguments, so an already finished run (e.g. the
    training run named in ``reports/train.json``) can receive evaluation numbers without
    being reopened. Only a run started here is ended here.
    """
    import mlflow

    if run_id:
        yield run_id
        return
    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        yield run.info.run_id
