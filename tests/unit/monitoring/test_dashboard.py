"""The drift project's Evidently dashboard: panels added once, and the live ``evidently ui`` serving them with data."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reviewops.config import Settings
from reviewops.monitoring.dashboard import DASHBOARD_TAB, drift_panels, ensure_panels

TITLES = [
    "Share of drifted columns (all rows)",
    "Predicted negative share (sample)",
    "Text length (mean characters, all rows)",
    "Language mix (detected language, all rows)",
]


def test_ensure_panels_adds_them_once_and_keeps_other_panels(tmp_path):
    from evidently.sdk.panels import text_panel
    from evidently.ui.workspace import Workspace

    ws = Workspace.create(str(tmp_path / "ws"))
    project = ws.create_project("p")
    project.dashboard.add_panel(text_panel(title="an operator's own note"))
    assert ensure_panels(ws, project.id) == TITLES
    assert ensure_panels(ws, project.id) == []  # a second check adds nothing
    reopened = Workspace(str(tmp_path / "ws"))  # persisted in the local workspace
    model = reopened.get_dashboard(project.id)
    assert [p.title for p in model.panels] == ["an operator's own note", *TITLES]
    drift_tab = next(t for t in model.tabs if t.title == DASHBOARD_TAB)
    assert len(drift_tab.panels) == 4 and len(set(drift_tab.panels)) == 4


def test_panels_read_the_metrics_the_reports_compute():
    panels = {p.title: p for p in drift_panels()}
    share = panels["Share of drifted columns (all rows)"].values[0]
    assert share.metric == "evidently:metric_v2:DriftedColumnsCount" and share.metric_labels == {"value_type": "share"}
    negative = panels["Predicted negative share (sample)"].values[0]
    assert negative.metric_labels == {"column": "pred_sentiment", "label": "negative", "value_type": "share"}
    langs = panels["Language mix (detected language, all rows)"]
    assert [v.legend for v in langs.values] == ["en", "zh"] and langs.plot_params["is_stacked"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, data: dict | None = None) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"evidently ui exited with {proc.returncode}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"evidently ui did not answer {url} in {timeout} s")


def _two_batches(root: Path, tiny_encoder: Path) -> Path:
    from reviewops.data.clean import preprocess
    from reviewops.data.generate import generate_reviews
    from reviewops.monitoring.drift import run_drift

    def rows(n: int, seed: int, scenario: str = "base") -> pd.DataFrame:
        raw = generate_reviews(n, seed, scenario)
        raw = raw[raw["rating"].between(1, 5) & raw["language"].isin(["en", "zh"])]
        return preprocess(raw, Settings().preprocess).clean

    settings = Settings.model_validate(
        {"paths": {"reports_dir": str(root)}, "drift": {"sample_size": 100, "embedding_model": str(tiny_encoder)}}
    )
    ref = rows(200, 1)

    def predict(texts: list[str]) -> list[str]:
        return ["negative" if any(w in t for w in ("差", "失望", "terrible")) else "positive" for t in texts]

    for name, seed, scenario in [("b1", 2, "base"), ("b2", 3, "language_sentiment_shift")]:
        cur = rows(200, seed, scenario)
        if name == "b2":  # an unrated batch: fewer columns, yet one series per panel
            cur = cur.drop(columns=["rating", "label", "label_id"], errors="ignore")
        run_drift(settings, reference=ref, current=cur, name=name, predict_fn=predict, track=False)
    return root / "evidently_workspace"


@pytest.mark.integration
@pytest.mark.slow
def test_evidently_ui_serves_the_dashboard_with_a_point_per_batch(tmp_path, tiny_encoder):
    ws_dir = _two_batches(tmp_path / "reports", tiny_encoder)
    port = _free_port()
    exe = str(Path(sys.executable).with_name("evidently"))
    cmd = [exe, "ui", "--workspace", str(ws_dir), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api"
    try:
        _wait(f"{base}/projects", proc)
        project = next(p for p in _get(f"{base}/projects") if p["name"] == "reviewops-drift")
        dashboard = _get(f"{base}/v2/dashboards/{project['id']}")
        assert [p["title"] for p in dashboard["panels"]] == TITLES
        snapshots = _get(f"{base}/projects/{project['id']}/snapshots")
        assert sorted(tuple(s["tags"]) for s in snapshots) == [
            ("reviewops", "drifted", "batch:b2"),
            ("reviewops", "not-drifted", "batch:b1"),
        ]
        # the snapshot page: both halves of the check, as two titled groups
        drifted = next(s for s in snapshots if "drifted" in s["tags"])
        page = _get(f"{base}/projects/{project['id']}/{drifted['id']}/data")
        page = json.loads(page) if isinstance(page, str) else page
        titles = [w["title"] for w in page["widgets"]]
        assert titles[0].startswith("All rows (") and titles[1].startswith("Sample: sampled ")
        for panel in dashboard["panels"]:
            filters = [
                {
                    "tags": v["tags"],
                    "metadata": v["metadata"],
                    "metric": v["metric"],
                    "metric_labels": v["metric_labels"],
                }
                for v in panel["values"]
            ]
            series = _get(f"{base}/v2/snapshots/{project['id']}/data_series_batch", {"series_filter": filters})
            assert len(series["sources"]) == 2, panel["title"]
            assert all(v is not None for s in series["series"] for v in s["values"]), panel["title"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
