"""One registry shared by the tests of `models list`, the gate's marks and the experiment's view."""

from __future__ import annotations

import mlflow
import pytest

from reviewops.registry.tracking import configure_mlflow
from tests.unit.registry.helpers import build_store, gate_settings


@pytest.fixture(scope="package")
def built_store(tmp_path_factory: pytest.TempPathFactory):
    """The shared store, built once: see :func:`tests.unit.registry.helpers.build_store`."""
    yield from build_store(tmp_path_factory.mktemp("registry-store"))


@pytest.fixture
def store(built_store, monkeypatch: pytest.MonkeyPatch):
    """``(root, first train run id, second run id)``, with MLflow pointed at the shared store for this test
    (other modules' fixtures move the tracking URI in between)."""
    root = built_store[0]
    old_uri = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
    monkeypatch.chdir(root)
    configure_mlflow(gate_settings(root, True))
    yield built_store
    mlflow.set_tracking_uri(old_uri)
