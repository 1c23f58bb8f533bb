"""Fixtures shared by the training tests: tiny random-weight models and an isolated project folder."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder
from tests.unit.training.helpers import synthetic_processed


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny causal LM (summarizer) and a tiny encoder (sentiment), built once per session."""
    root = tmp_path_factory.mktemp("tiny-train")
    return {"causal": build_tiny_causal_lm(root / "causal"), "encoder": build_tiny_encoder(root / "encoder")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An isolated project dir: processed splits, a data.dvc, its own SQLite MLflow store."""
    old_uri = mlflow.get_tracking_uri()
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)  # a URI set by an earlier test would win over the environment
    processed = tmp_path / "processed"
    processed.mkdir()
    df = synthetic_processed(40)
    df.iloc[:32].to_parquet(processed / "train.parquet", index=False)
    df.iloc[32:].to_parquet(processed / "val.parquet", index=False)
    (tmp_path / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n")
    yield tmp_path
    mlflow.set_tracking_uri(old_uri)
