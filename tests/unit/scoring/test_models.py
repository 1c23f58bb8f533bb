"""Which models score: folders, the trained fallback, registry names, one-line errors naming what exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.scoring.models import folder_fingerprint, resolve_model, resolve_models


def _fake_model(folder: Path, weights: bytes = b"w") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.fixture
def no_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_a_folder_is_used_as_given(no_registry):
    folder = _fake_model(no_registry / "m")
    choice = resolve_model(Settings(), "sentiment", str(folder))
    assert (choice.path, choice.name, choice.version) == (folder, str(folder), None)
    assert choice.fingerprint == folder_fingerprint(folder)
    other = _fake_model(no_registry / "m2", b"other weights")
    assert folder_fingerprint(other) != choice.fingerprint


def test_default_falls_back_to_the_trained_folder(no_registry):
    settings = Settings(paths={"models_dir": str(no_registry / "models")})
    with pytest.raises(ReviewOpsError, match="no sentiment model.*reviewops train"):
        resolve_model(settings, "sentiment")
    trained = _fake_model(no_registry / "models" / "trained" / "sentiment")
    assert resolve_model(settings, "sentiment").path == trained
    models = resolve_models(settings, summaries="none")
    assert models.summarizer is None and models.sentiment.path == trained


def test_registry_names_need_a_registry(no_registry):
    with pytest.raises(ReviewOpsError, match="no registry is configured"):
        resolve_model(Settings(), "sentiment", "review-sentiment@champion")
    assert not (no_registry / "mlflow.db").exists()  # no store created as a side effect


def test_bad_spec_is_one_line(no_registry):
    with pytest.raises(ReviewOpsError, match="not a folder, NAME@ALIAS or NAME/VERSION"):
        resolve_model(Settings(), "summarizer", "no/such/folder")
    with pytest.raises(ReviewOpsError, match="no config.json"):
        resolve_model(Settings(), "summarizer", str(no_registry))


@pytest.fixture
def one_model_registry(tmp_path, monkeypatch):
    """A SQLite registry in the working directory holding only an empty ``review-sentiment``."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    old = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.MlflowClient(registry_uri=uri).create_registered_model("review-sentiment")
    yield tmp_path
    mlflow.set_tracking_uri(old)


def test_unknown_registered_name_is_the_registry_error_listing_what_exists(one_model_registry):
    for spec in ("nosuch/3", "nosuch@champion", "nosuch"):
        with pytest.raises(ReviewOpsError) as exc:
            resolve_model(Settings(), "sentiment", spec)
        assert str(exc.value) == "no such registered model 'nosuch'; known: review-sentiment", spec
    with pytest.raises(ReviewOpsError, match=r"review-sentiment has no @champion version \(versions: none\)"):
        resolve_model(Settings(), "sentiment", "review-sentiment")
    with pytest.raises(ReviewOpsError, match=r"review-sentiment has no version 3 \(versions: none\)"):
        resolve_model(Settings(), "sentiment", "review-sentiment/3")


def test_score_cli_says_no_such_registered_model_in_one_line(one_model_registry):
    batch = one_model_registry / "batch.csv"
    batch.write_text("review_id,product_id,text,summary,rating,timestamp\n1,p1,works well,good,5,1300000000\n")
    exe = Path(sys.executable).with_name("reviewops")
    proc = subprocess.run(
        [exe, "score", str(batch), "--sentiment-model", "nope@champion", "--summaries", "none"],
        cwd=one_model_registry, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no such registered model 'nope'; known: review-sentiment"
