"""The drift page's embedded Evidently section: one compressed viewer, safe JSON, and it draws in a real browser."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from reviewops.monitoring.render import _script_json, evidently_block


def _snapshot_model():
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 5, "lang": ["en"] * 20})
    cur = pd.DataFrame({"x": [3.0, 4.0, 5.0, 6.0] * 5, "lang": ["zh</script>"] * 20})
    definition = DataDefinition(numerical_columns=["x"], categorical_columns=["lang"])
    report = Report([DriftedColumnsCount(columns=["x", "lang"]), ValueDrift(column="x")], include_tests=True)
    snap = report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
        timestamp=datetime(2026, 1, 1),
    )
    return snap.to_snapshot_model()


@pytest.fixture(scope="module")
def block() -> str:
    return evidently_block(_snapshot_model())


def test_viewer_is_embedded_once_compressed_and_identical(block):
    from evidently.legacy.utils.dashboard import STATIC_PATH

    payloads = re.findall(r'<script id="evidently-viewer" type="application/octet-stream">([^<]*)</script>', block)
    assert len(payloads) == 1
    bundle = (Path(STATIC_PATH) / "index.js").read_bytes()
    assert gzip.decompress(base64.b64decode(payloads[0])) == bundle
    assert len(payloads[0]) < 0.45 * len(bundle)  # 3.5 MB of JavaScript in ~1.4 MB
    assert len(block.encode()) < 2_000_000


def test_script_json_cannot_close_the_script_tag(block):
    assert _script_json({"t": "a</script><b>"}) == '{"t": "a<\\/script><b>"}'
    data = block.split("var evidentlyDashboard = ", 1)[1].split(";\nvar evidentlyGraphs", 1)[0]
    titles = [w["title"] for w in json.loads(data)["widgets"]]
    assert titles[:2] == ["Count of Drifted Columns: count", "Count of Drifted Columns: share"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_the_viewer_draws_the_snapshot_in_chromium(block, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body>{block}</body></html>')
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", "--dump-dom"]
    dom = subprocess.run([*cmd, page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    assert '<p id="evidently-status"' not in dom  # the loader removes it once the dashboard is drawn
    root = dom.split('id="evidently-root">', 1)[1]
    assert root.startswith("<div") and "Count of Drifted Columns: count" in root
