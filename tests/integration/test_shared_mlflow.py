"""The main job against shared servers: `reviewops servers start --prefect` (PostgreSQL, MLflow, Prefect on 127.0.0.1).

A throwaway PostgreSQL cluster in tmp_path holds MLflow's store and Prefect's; the MLflow server keeps
the artifacts in its own folder. `python -m flows.retrain` runs in a tiny project that knows only
MLFLOW_TRACKING_URI and PREFECT_API_URL; then the runs, the aliases, the artifacts, the drift
reference (with the local split deleted) and the packaged Bento are checked, and the servers stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reviewops.servers.postgres import PostgresCluster, free_port
from tests.conftest import make_tiny_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(*args: str, cwd: Path, timeout: float = 300) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "reviewops", "servers", *args, "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _retrain(project: Path, exports: dict[str, str], home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    env.update(exports)
    env.update({"PREFECT_HOME": str(home), "BENTOML_HOME": str(project / "bentoml_home"), "DO_NOT_TRACK": "1"})
    log = project.parent / "retrain.log"
    with log.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "flows.retrain", "--no-links"],
            cwd=project,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    text = log.read_text()
    assert proc.returncode == 0, text[-4000:]
    return text


def _check_store(pg: PostgresCluster, artifacts: Path, project: Path) -> str:
    """Runs and aliases in PostgreSQL, artifacts under the server's folder; the training run's id."""
    runs = pg.sql("SELECT run_uuid, name, artifact_uri FROM runs WHERE name = 'train'", "mlflow").split()
    assert len(runs) == 1, runs
    run_id, _, artifact_uri = runs[0].split("|")
    assert artifact_uri.startswith("mlflow-artifacts:/"), artifact_uri
    aliases = pg.sql("SELECT name, alias, version FROM registered_model_aliases ORDER BY name, alias", "mlflow")
    assert "review-sentiment|champion|1" in aliases.split() and "review-summarizer|champion|1" in aliases.split()
    assert int(pg.sql("SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'", "prefect")) >= 2
    run_dir = next(artifacts.glob(f"*/{run_id}/artifacts"))
    assert (run_dir / "data" / "train.parquet").is_file()  # uploaded at registration, for the drift reference
    assert len(list(artifacts.rglob("MLmodel"))) >= 2  # both models, stored by the server
    assert not (project / "mlartifacts").exists() and not (project / "mlflow.db").exists()
    return run_id


def _check_reference(project: Path, run_id: str, uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With data/processed/train.parquet gone, the drift reference comes from the champion run's artifact."""
    from reviewops.config import load_settings
    from reviewops.monitoring.reference import champion_reference

    split = project / "data" / "processed" / "train.parquet"
    original = pd.read_parquet(split)
    split.unlink()
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    path, info = champion_reference(load_settings(project / "params.yaml"))
    assert info["source"] == "champion run artifact" and info["champion_run_id"] == run_id, info
    pd.testing.assert_frame_equal(pd.read_parquet(path), original)


def test_main_job_on_shared_postgres_mlflow_and_prefect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    old_uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    folder = tmp_path / "servers"
    mlflow_port, prefect_port = free_port(), free_port()
    ports = ["--mlflow-port", str(mlflow_port), "--prefect-port", str(prefect_port)]
    try:
        started = _cli("start", "--folder", str(folder), "--prefect", "--workers", "1", *ports, cwd=tmp_path)
        exports = started["exports"]
        assert exports == {
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        }
        assert all(server["up"] for server in started["servers"].values())
        project = make_tiny_project(tmp_path / "proj")
        log = _retrain(project, exports, tmp_path / "prefect_home")
        assert "Task run 'package-bento" in log and "Finished in state Completed()" in log
        pg = PostgresCluster(folder / "postgres", port=started["servers"]["postgres"]["port"])
        run_id = _check_store(pg, folder / "mlartifacts", project)
        _check_reference(project, run_id, exports["MLFLOW_TRACKING_URI"], monkeypatch)
        bentos = list((project / "bentoml_home" / "bentos" / "reviewops").glob("*/bento.yaml"))
        assert len(bentos) == 1  # packaged from the champions the server's registry handed out
        assert {p.name for p in (project / "models" / "registry").iterdir()} >= {
            "review-summarizer-v1",
            "review-sentiment-v1",
        }
    finally:
        stopped = _cli("stop", "--folder", str(folder), cwd=tmp_path)
        mlflow.set_tracking_uri(old_uris[0])
        mlflow.set_registry_uri(old_uris[1])
    assert stopped["stopped"] == {"prefect": True, "mlflow": True, "postgres": True}
    after = _cli("status", "--folder", str(folder), cwd=tmp_path)
    assert after["exports"] == {} and not any(server["up"] for server in after["servers"].values())
