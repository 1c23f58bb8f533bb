"""The state `make run` leaves, as far as the operator UIs read it (tests of monitoring.uis, ui_servers, cli.ui)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def empty_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with no tracking/Prefect/BentoML server exported."""
    for var in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "BENTOML_HOME"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def made_run(root: Path) -> None:
    """The files `make run` leaves that `reviewops ui` reads (contents as the stages write them)."""
    (root / "mlflow.db").write_bytes(b"")
    (root / ".prefect").mkdir()
    (root / ".prefect" / "prefect.db").write_bytes(b"")
    project = root / "reports" / "evidently_workspace" / "0193-abc"
    project.mkdir(parents=True)
    (project / "metadata.json").write_text(json.dumps({"id": "0193-abc", "name": "reviewops-drift"}))
    site = root / "great_expectations" / "gx" / "uncommitted" / "data_docs" / "local_site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html><body>validations</body></html>")
    (root / "reports" / "validation").mkdir(parents=True)
    (root / "reports" / "validation" / "raw.json").write_text(json.dumps({"data_docs": str(site / "index.html")}))
    bentos = root / "bentoml_home" / "bentos" / "reviewops"
    bentos.mkdir(parents=True)
    (bentos / "latest").write_text("v7abc\n")
