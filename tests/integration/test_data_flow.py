"""The data half of the retraining flow under Prefect's test harness, with real DVC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_data_flow_counts_and_dvc_lineage(tmp_path, monkeypatch, prefect_server):
    from flows.retrain import data_flow

    from reviewops.config import load_settings
    from reviewops.data import versioning

    project = make_project(tmp_path / "proj", {"generate.rows": 600})
    monkeypatch.chdir(project)
    versioning.ensure_repo()
    summary = data_flow(load_settings("params.yaml"))

    # Every ingested row is valid, quarantined or a repeat; every valid row is clean,
    # a recorded duplicate or quarantined as empty after cleaning; splits add up.
    assert summary["ingested"] == 600
    assert summary["valid"] + summary["quarantined"] + summary["repeated"] == summary["ingested"]
    assert summary["quarantined"] > 0 and summary["deduplicated"] > 0
    assert summary["clean"] + summary["deduplicated"] + summary["empty_after_cleaning"] == summary["valid"]
    assert sum(summary["splits"].values()) == summary["clean"]
    assert Path(summary["data_docs"]).exists()
    assert summary["data_version"] and summary["data_version"].endswith(".dir")
    assert yaml.safe_load(Path("data.dvc").read_text())["outs"][0]["path"] == "data/raw"

    # Nothing changed -> DVC has nothing to do.
    assert "up to date" in versioning.status()
    # An ad-hoc validation, even one rejected with exit 2, leaves the stage outputs alone.
    valid_before = Path("data/interim/valid.parquet").read_bytes()
    bad = Path("tryout.csv")
    bad.write_text("review_id,text,rating\n" + "".join(f"{i},only two fields {i}\n" for i in range(5)))
    proc = subprocess.run(
        [sys.executable, "-m", "reviewops", "validate", str(bad), "--json", "--no-docs"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout)["failures"] == {"field_count_mismatch": 5}
    assert Path("data/interim/valid.parquet").read_bytes() == valid_before
    assert Path("data/interim/batches/tryout/quarantine.parquet").exists()
    assert "up to date" in versioning.status()
    # One param of the split stage changed -> only `split` reruns.
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["split"]["test_size"] = 0.2
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    out = versioning.repro()
    assert "Running stage 'split'" in out
    assert "Running stage 'validate'" not in out and "Running stage 'preprocess'" not in out
    assert "up to date" in versioning.status()
    split_report = json.loads(Path("reports/split.json").read_text())
    assert sum(split_report[k]["rows"] for k in ("train", "val", "test")) == summary["clean"]
