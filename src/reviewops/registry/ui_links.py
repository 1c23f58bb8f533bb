"""Where the MLflow UI shows this project's runs and models, and the tag that marks the experiment as ML.

MLflow 3's UI has two views of an experiment: "GenAI apps & agents" (an overview of traces,
empty here: "No data") and "Machine learning" (runs, logged models, the model registry). In
the UI of mlflow 3.17 the view follows a *browser-wide* switch, not the experiment: the
``workflowType`` query parameter (``genai`` | ``machine_learning``), else the switch at the
top of the sidebar (saved in the browser's localStorage as ``mlflow.workflowType``), else
``genai``. Landing on ``#/experiments/<id>`` with ``machine_learning`` opens the Runs tab;
with ``genai`` the overview (and the sidebar hides "Model registry"). So the links printed
for people carry ``?workflowType=machine_learning`` (:func:`experiment_url`).

The experiment also gets the tag ``mlflow.experimentKind = custom_model_development``
(:func:`mark_ml_experiment`): the same UI reads that tag instead of the switch when its
workflow switch is turned off (MLflow's earlier 3.x releases), and without it those ask on
first visit which kind the experiment is; the value is the UI's own ("Machine learning").
"""

from __future__ import annotations

import urllib.parse
from typing import Any

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
ML_KIND = "custom_model_development"
ML_VIEW = "workflowType=machine_learning"
DEFAULT_UI = "http://127.0.0.1:5000"


def mark_ml_experiment(client: Any, experiment: Any) -> None:
    """Tag ``experiment`` as a machine-learning experiment unless it already has a kind."""
    if not (experiment.tags or {}).get(EXPERIMENT_KIND_TAG):
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, ML_KIND)


def experiment_url(experiment_id: str, base: str = DEFAULT_UI, tab: str = "runs") -> str:
    """The experiment's ``tab`` (runs, models, datasets) in the machine-learning view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/{tab}?{ML_VIEW}"


def run_url(experiment_id: str, run_id: str, base: str = DEFAULT_UI) -> str:
    """One run's page (overview, inputs, description) in the machine-learning view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"


def model_url(name: str, version: str | int | None = None, base: str = DEFAULT_UI) -> str:
    """A registered model's page, or one version's page (aliases, tags, description)."""
    path = f"/#/models/{urllib.parse.quote(name, safe='')}"
    if version is not None:
        path += f"/versions/{version}"
    return f"{base.rstrip('/')}{path}?{ML_VIEW}"
