"""The retraining flow's printed summary and closing links, its exit status, and evaluate's progress lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

from flows import monitor, retrain

from reviewops.cli import common
from reviewops.config import PathsConfig, Settings
from reviewops.evaluation.evaluate import PhaseLog

DOCS = "great_expectations/gx/uncommitted/data_docs/local_site/index.html"
RESULT = {
    "data": {
        "ingested": 3000,
        "valid": 2847,
        "quarantined": 153,
        "deduplicated": 233,
        "empty_after_cleaning": 0,
        "clean": 2614,
        "splits": {"train": 1961, "val": 278, "test": 375},
        "quarantine_path": "data/quarantine/raw.parquet",
        "data_version": "c5b81ea8e1a86244b0456829170c999e.dir",
        "data_docs": DOCS,
    },
    "eval": {"eval/rougeL": 0.11805699855699857, "baseline/lead8/rougeL": 0.0985, "champion/eval/rougeL": 0.2},
    "gate": {
        "passed": False,
        "checks": [
            {"name": "floor/rougeL", "value": 0.11805699855699857, "threshold": 0.05, "passed": True},
            {"name": "regression/rougeL", "value": 0.11805699855699857, "threshold": 0.18, "passed": False},
        ],
        "champion": {"eval/rougeL": 0.2, "source": "registry"},
        "registered": {},
    },
}


def _project(tmp_path: Path, monkeypatch) -> Settings:
    """A project folder with the validation report make run leaves, as the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml_home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    (tmp_path / "reports" / "validation").mkdir(parents=True)
    (tmp_path / "reports" / "validation" / "raw.json").write_text(json.dumps({"data_docs": DOCS}))
    return Settings(paths=PathsConfig(reports_dir=tmp_path / "reports"))


def test_summary_and_links_in_a_log_are_whole(tmp_path, monkeypatch):
    settings = _project(tmp_path, monkeypatch)
    buf = io.StringIO()
    console = common._Console(file=buf)  # stdout redirected to a file, as in `make run > log`
    retrain.print_summary(RESULT, console)
    common.print_links(retrain.ui_links(settings, "reviewops:fr2kl6xn5s6scax4"), "where to look", console)
    out = buf.getvalue()
    lines = out.splitlines()
    assert "…" not in out
    assert any("regression/rougeL (0.1181 vs 0.18)" in line and "FAIL" in line for line in lines)
    assert any("REJECTED (champion kept)" in line for line in lines)
    links = lines[lines.index("where to look") + 1 :]
    mlflow, bentoml, prefect = (retrain.bin_path(name) for name in ("mlflow", "bentoml", "prefect"))
    assert links == [
        "Data Docs: validation of data/raw and its quarantine (open in a browser):",
        f"  {(tmp_path / DOCS).resolve().as_uri()}",
        "MLflow UI: runs, registry, aliases (serves http://127.0.0.1:5000):",
        f"  {mlflow} ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000",
        "Champion Bento: the HTTP API (serves http://127.0.0.1:3000):",
        f"  BENTOML_HOME=bentoml_home {bentoml} serve reviewops:fr2kl6xn5s6scax4 --host 127.0.0.1 --port 3000",
        "Prefect UI: flow runs and their artifacts (serves http://127.0.0.1:4200):",
        f"  PREFECT_HOME=.prefect {prefect} server start --host 127.0.0.1 --port 4200 --ui",
    ]


def test_links_fall_back_to_the_latest_bento_and_skip_what_is_missing(tmp_path, monkeypatch):
    settings = _project(tmp_path, monkeypatch)
    (tmp_path / "reports" / "validation" / "raw.json").unlink()
    labels = dict(retrain.ui_links(settings))
    assert labels["Data Docs: validation of data/raw and its quarantine (open in a browser)"] is None
    assert labels["Champion Bento: the HTTP API (serves http://127.0.0.1:3000)"] is None  # no Bento built yet
    store = tmp_path / "bentoml_home" / "bentos" / "reviewops"
    store.mkdir(parents=True)
    (store / "latest").write_text("dd2rb2xn5wjqkax4")
    assert retrain.latest_bento() == "reviewops:dd2rb2xn5wjqkax4"


def test_monitor_links_add_the_drift_report_evidently_and_the_scored_batch(tmp_path, monkeypatch):
    settings = _project(tmp_path, monkeypatch)
    summary = {
        "name": "batch-1",
        "report": "reports/drift/batch-1.html",
        "scoring": {"ok": True, "out_dir": "data/scored"},
        "bento": "reviewops:new",
    }
    links = dict(monitor.monitor_links(settings, summary))
    assert links["Drift report of this batch (open in a browser)"] == (tmp_path / summary["report"]).as_uri()
    evidently = retrain.bin_path("evidently")
    assert links["Evidently UI: drift history (serves http://127.0.0.1:8000)"] == (
        f"{evidently} ui --workspace {tmp_path / 'reports' / 'evidently_workspace'} --host 127.0.0.1 --port 8000"
    )
    assert links["Scored dataset: this batch, Parquet"] == "data/scored/batch=batch-1"
    assert "reviewops:new --host" in links["Champion Bento: the HTTP API (serves http://127.0.0.1:3000)"]
    failed = dict(monitor.monitor_links(settings, {**summary, "scoring": {"ok": False}}))
    assert failed["Scored dataset: this batch, Parquet"] is None


def test_main_exits_1_only_when_a_rejection_leaves_no_champion(tmp_path, monkeypatch, capsys):
    settings = _project(tmp_path, monkeypatch)
    monkeypatch.setattr(retrain, "load_settings", lambda: settings)
    monkeypatch.setattr(retrain, "retrain_flow", lambda s: RESULT)
    assert retrain.main(["--no-links"]) == 0  # rejected, the champion stays
    captured = capsys.readouterr()
    assert "REJECTED (champion kept)" in captured.out and "where to look" not in captured.out
    no_champion = {**RESULT, "gate": {**RESULT["gate"], "champion": None}}
    monkeypatch.setattr(retrain, "retrain_flow", lambda s: no_champion)
    assert retrain.main([]) == 1
    captured = capsys.readouterr()
    assert "where to look" in captured.out
    assert "no champion to serve or monitor" in captured.err and "gate.json" in captured.err


def test_evaluate_progress_lines_name_each_phase_and_its_seconds():
    ticks = iter([0.0, 0.0, 2.0, 2.0, 50.5, 50.5, 51.0, 51.0])
    lines: list[str] = []
    phases = PhaseLog(lines.append, clock=lambda: next(ticks))
    phases("loading models")
    phases.note("120 test rows; models: fine-tuned, untuned base")
    phases("summarizing 120 rows")
    phases("logging to MLflow")
    phases.done()
    assert lines == [
        "evaluate: loading models...",
        "evaluate: 120 test rows; models: fine-tuned, untuned base",
        "evaluate: summarizing 120 rows...",
        "evaluate: logging to MLflow...",
        "evaluate: done in 51 s (loading models 2 s, summarizing 120 rows 48.5 s, logging to MLflow 0.5 s)",
    ]
    assert phases.timings == {"loading models": 2.0, "summarizing 120 rows": 48.5, "logging to MLflow": 0.5}
