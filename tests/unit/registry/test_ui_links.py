"""The experiment opens on MLflow's machine-learning view: the tag, the links, and the UI code they rely on."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow

from reviewops.registry.ui_links import (
    EXPERIMENT_KIND_TAG,
    ML_KIND,
    experiment_url,
    mark_ml_experiment,
    model_url,
    run_url,
)


def test_the_project_experiment_is_tagged_machine_learning_and_a_set_kind_is_kept(store) -> None:
    client = mlflow.MlflowClient()
    assert mlflow.get_experiment_by_name("reviewops").tags[EXPERIMENT_KIND_TAG] == ML_KIND == "custom_model_development"
    other = client.create_experiment("chosen-genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    mark_ml_experiment(client, client.get_experiment(other))
    assert client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_links_ask_for_the_machine_learning_view() -> None:
    assert experiment_url("3") == "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"
    assert run_url("3", "abc", base="http://h:5001/") == (
        "http://h:5001/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    assert model_url("review summarizer", 2) == (
        "http://127.0.0.1:5000/#/models/review%20summarizer/versions/2?workflowType=machine_learning"
    )


def test_the_installed_mlflow_ui_reads_the_switch_and_the_tag_we_set() -> None:
    """Guards the reading of mlflow's bundled UI (ui_links' docstring) against an upgrade that changes it."""
    js = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    main = next(js.glob("main.*.js")).read_text(encoding="utf-8")
    # A failure here means mlflow's UI changed how it picks an experiment's view: re-read it, update ui_links.
    assert 'key:"mlflow.workflowType"' in main and 'MACHINE_LEARNING="machine_learning"' in main
    assert 'e.get("workflowType")' in main  # the query parameter wins over the saved switch
    assert f'CUSTOM_MODEL_DEVELOPMENT="{ML_KIND}"' in main and f'"{EXPERIMENT_KIND_TAG}"===e.key' in main
    assert re.search(
        r"let \w+=\w+\.fM\.Runs;\w+===\w+\.Gk\.GENAI_DEVELOPMENT&&\(\w+=.{0,80}fM\.Overview:\w+\.fM\.Traces\)",
        " ".join(p.read_text(encoding="utf-8") for p in js.glob("*.js") if "experimentPage" in p.name),
    )
