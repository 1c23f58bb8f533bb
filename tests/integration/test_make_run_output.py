"""What `make run` prints into a log file, end to end on a tiny project: its two commands with stdout
and stderr redirected (not a terminal), then a retraining the gate rejects.

No progress bars, none of the library notices the flows silence, tables whole, one path or
command per line in the closing list, and a rejection that is a WARNING, not an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_tiny_project

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

NOTICES = (
    "it/s]",  # a tqdm bar
    "s/it]",
    "Loading weights",
    "Writing model shards",
    "LOAD REPORT",
    "missing keys in the checkpoint",
    "Add type hints",
    "CloudPickle",
    "Validating input example",
    "Token authentication is enabled",
    "UserWarning",
    "Traceback",
    "…",  # a cut table cell
)


def _run(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    # stdout and stderr into one file, as `make run > run.log 2>&1` does
    log = project / f"run-{len(list(project.glob('run-*.log')))}.log"
    with log.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", *args], cwd=project, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=1800
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(), "")


def _closing(out: str, title: str) -> tuple[list[str], list[str]]:
    """The closing list's lines (label, then its indented path or command), and the lines after it."""
    lines = out.splitlines()
    rest = lines[lines.index(title) + 1 :]
    pairs: list[str] = []
    while len(rest) >= 2 and not rest[0].startswith(" ") and rest[1].startswith("  "):
        pairs, rest = pairs + rest[:2], rest[2:]
    return pairs, rest


def test_make_run_log_is_quiet_whole_and_ends_with_the_uis(tmp_path):
    project = make_tiny_project(tmp_path / "proj", {"score.summaries": "none"})
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    env.update(
        {
            "PREFECT_HOME": str(project / ".prefect"),
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "BENTOML_HOME": str(project / "bentoml_home"),
            "MLFLOW_TRACKING_URI": "",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",  # a busy machine: 300 s once was too short
        }
    )
    retrain = _run(project, env, "flows.retrain", "--no-links")
    assert retrain.returncode == 0, retrain.stdout[-4000:]
    monitor = _run(project, env, "flows.monitor", "--demo")
    assert monitor.returncode == 0, monitor.stdout[-4000:]
    for out in (retrain.stdout, monitor.stdout):
        assert [n for n in NOTICES if n in out] == [], out[-4000:]
    assert "where to look" not in retrain.stdout  # --no-links: make run prints the list once, at the end
    closing, after = _closing(monitor.stdout, "ReviewOps: where to look (one path or command a line)")
    assert [line for line in after if "| prefect - Stopping temporary server" not in line] == []
    labels, values = closing[0::2], closing[1::2]
    assert [label.split(":")[0] for label in labels] == [
        "Data Docs",
        "MLflow UI",
        "Champion Bento",
        "Prefect UI",
        "Drift report of this batch (open in a browser)",
        "Evidently UI",
        "Scored dataset",
    ]
    assert all(v.startswith("  ") and "  " not in v.strip() for v in values)
    docs, bento, report = values[0].strip(), values[2].strip(), values[4].strip()
    assert docs.startswith("file://") and Path(docs.removeprefix("file://")).is_file()
    assert report.startswith("file://") and Path(report.removeprefix("file://")).is_file()
    assert bento.startswith("BENTOML_HOME=bentoml_home ") and " serve reviewops:" in bento
    assert (project / values[6].strip()).is_dir()

    # The gate rejects the next candidates: a WARNING and a completed run; the champion stays, exit 0.
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["gate"]["min_rougeL"] = 0.99
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rejected = _run(project, env, "flows.retrain")
    assert rejected.returncode == 0, rejected.stdout[-4000:]
    out = rejected.stdout
    assert "WARNING | Task run 'quality-gate" in out and "quality gate rejected the candidates" in out
    assert "ERROR" not in out and "Traceback" not in out
    assert "Finished in state Failed" not in out
    finished = [line.split(" - ")[-1] for line in out.splitlines() if "| Flow run " in line and "Finished" in line]
    assert finished == ["Finished in state Completed()"] * 2  # the data subflow and the retraining flow
    assert "REJECTED (champion kept)" in out
    assert json.loads((project / "reports" / "gate.json").read_text())["passed"] is False
