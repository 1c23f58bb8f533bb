"""``run_package`` refuses to build a Bento without its bentofile or without the models in the store."""

from __future__ import annotations

import pytest

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.serving.loading import SENTIMENT_DIR_ENV, SUMMARIZER_DIR_ENV
from reviewops.serving.packaging import run_package


def test_a_missing_bentofile_names_the_command(tmp_path):
    with pytest.raises(ReviewOpsError, match="not found; run `reviewops package` from the project root"):
        run_package(Settings(), bentofile=tmp_path / "bentofile.yaml")


def test_models_missing_from_the_store_are_named(tmp_path, monkeypatch):
    import bentoml
    from bentoml.exceptions import NotFound

    def not_in_store(tag):
        raise NotFound(f"{tag} not found")

    # BentoML resolves its home once per process: the store lookup is stubbed, not pointed elsewhere.
    monkeypatch.setattr(bentoml.models, "get", not_in_store)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml_home"))
    monkeypatch.setenv(SUMMARIZER_DIR_ENV, "/somewhere")
    monkeypatch.setenv(SENTIMENT_DIR_ENV, "/elsewhere")
    bentofile = tmp_path / "bentofile.yaml"
    bentofile.write_text("service: reviewops.serving.service:ReviewAnalyzer\n")
    with pytest.raises(ReviewOpsError) as exc:
        run_package(Settings(), bentofile=bentofile, version="test")
    assert "review-summarizer:latest is not in the model store" in str(exc.value)
    assert str(tmp_path / "bentoml_home") in str(exc.value)
    # A Bento always bundles store models: the override directories are dropped first.
    import os

    assert SUMMARIZER_DIR_ENV not in os.environ and SENTIMENT_DIR_ENV not in os.environ


def test_only_settings_is_positional():
    with pytest.raises(TypeError):
        run_package(Settings(), "bentofile.yaml")  # type: ignore[misc]


def test_an_unknown_model_name_is_the_registry_error(tmp_path, monkeypatch):
    import mlflow

    from reviewops.serving.packaging import import_champion

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    old, old_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # an earlier test in the process may have set another registry
    try:
        mlflow.MlflowClient(registry_uri=uri).create_registered_model("review-sentiment")
        with pytest.raises(ReviewOpsError) as exc:
            import_champion("review-sentimnt")
        assert str(exc.value) == "no such registered model 'review-sentimnt'; known: review-sentiment"
        # a known model without the alias: the command that makes one
        with pytest.raises(ReviewOpsError, match="'review-sentiment' has no @champion version; run `reviewops gate`"):
            import_champion("review-sentiment")
    finally:
        mlflow.set_tracking_uri(old)
        mlflow.set_registry_uri(old_registry)
