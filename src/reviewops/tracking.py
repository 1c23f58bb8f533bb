"""One place that decides where MLflow tracks runs and stores the registry.

``$MLFLOW_TRACKING_URI`` wins; otherwise runs go to ``sqlite:///<project>/mlflow.db`` with
artifacts under ``<project>/mlartifacts``, so a fresh checkout needs no server. Nothing here
runs at import time: stages call :func:`configure_mlflow` inside their functions.
"""

from __future__ import annotations

import os
from pathlib import Path

from reviewops.config import Settings

ENV_VAR = "MLFLOW_TRACKING_URI"
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"


def project_root() -> Path:
    """The project root: params paths are relative to the working directory, so is MLflow's."""
    return Path.cwd().resolve()


def tracking_uri(settings: Settings | None = None) -> str:
    """The tracking (and registry) URI: ``$MLFLOW_TRACKING_URI`` or the project's SQLite file."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    return f"sqlite:///{project_root() / DB_NAME}"


def artifact_location(experiment: str) -> str:
    """Where a new experiment keeps artifacts when tracking to the local SQLite default."""
    return (project_root() / ARTIFACTS_DIR / experiment).as_uri()


def configure_mlflow(settings: Settings | None = None, experiment: str | None = None) -> str:
    """Point MLflow (tracking + registry) at :func:`tracking_uri` and select the experiment.

    The experiment (``train.experiment`` unless given) is created when missing; with a local
    ``sqlite:`` URI its artifacts go to ``<project>/mlartifacts/<experiment>`` instead of
    MLflow's default ``./mlruns``.

    Returns:
        The tracking URI in use.
    """
    import mlflow

    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = experiment or (settings.train.experiment if settings is not None else "reviewops")
    client = mlflow.MlflowClient(uri, uri)
    if client.get_experiment_by_name(name) is None:
        location = artifact_location(name) if uri.startswith("sqlite:") else None
        client.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return uri
