"""The operator UIs in a real browser: `make run` on a tiny project, `reviewops ui --start all`, headless Chromium.

The state is what `make run` leaves (``python -m flows.retrain`` then ``python -m flows.monitor --demo``,
tiny random-weight models, quick profile, Prefect's state in the project's ``.prefect``). Each UI is
then opened as an operator would and checked for what they need on the page: the champion alias on
the MLflow model page, a validation in the Data Docs index, a drawn Evidently dashboard, the
retraining run in the Prefect UI and the Bento's Swagger page. Screenshots go to
``reports/ui_screenshots/`` of this checkout, for people.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reviewops.testing.browser import dump_dom, find_chromium, screenshot
from reviewops.testing.server import free_port
from tests.conftest import make_tiny_project


def _skip_reason() -> str | None:
    """Why this module does not run here, or None: it runs wherever headless Chromium is found.

    ``REVIEWOPS_UI_BROWSER_TEST=0`` switches it off (it builds a whole make-run state: ~20 min on 2
    cores); ``=1`` runs it even without Chromium found, so a missing browser fails instead of skipping.
    """
    switch = os.environ.get("REVIEWOPS_UI_BROWSER_TEST", "").strip()
    if switch == "0":
        return "switched off by REVIEWOPS_UI_BROWSER_TEST=0"
    if switch != "1" and find_chromium() is None:
        return "no headless Chromium on PATH: apt-get install chromium (or set $CHROMIUM)"
    return None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "ui_screenshots"
EXE = str(Path(sys.executable).with_name("reviewops"))


def _env(project: Path) -> dict[str, str]:
    """The environment `make run` exports (Makefile), with nothing pointing outside the project."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
    return {
        **env,
        "PREFECT_HOME": str(project / ".prefect"),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # make run's temporary Prefect server gets 20 s to answer by default: too short on a busy CI machine
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
        "BENTOML_HOME": str(project / "bentoml_home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "GX_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A tiny project after `make run`'s two commands."""
    project = make_tiny_project(tmp_path_factory.mktemp("ui") / "proj")
    env = _env(project)
    for args in (["-m", "flows.retrain", "--no-links"], ["-m", "flows.monitor", "--demo"]):
        proc = subprocess.run(
            [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=1800
        )
        assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return project, env


@pytest.fixture(scope="module")
def uis(made_run: tuple[Path, dict[str, str]]) -> Iterator[dict[str, dict]]:
    """`reviewops ui --start all` on free ports: {name: its entry in --json}; `reviewops ui --stop` after."""
    project, env = made_run
    ports = [
        arg
        for name in ("mlflow", "prefect", "evidently", "docs", "bento")
        for arg in (f"--{name}-port", str(free_port()))
    ]
    try:
        proc = subprocess.run(
            [EXE, "ui", "--start", "all", "--timeout", "600", "--json", *ports],
            cwd=project, env=env, capture_output=True, text=True, timeout=3000,
        )  # fmt: skip
        result = json.loads(proc.stdout)
        assert proc.returncode == 0 and result["errors"] == [], (proc.stderr, result["errors"])
        yield {entry["name"]: entry for entry in result["uis"]}
    finally:
        stop = subprocess.run([EXE, "ui", "--stop", "--json"], cwd=project, env=env, capture_output=True, text=True)
        assert stop.returncode == 0, stop.stderr


def _get(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def _text(dom: str) -> list[str]:
    """The page's visible text, one element's text a line (scripts, styles and SVG dropped)."""
    dom = re.sub(r"<(script|style|svg)\b.*?</\1>", "", dom, flags=re.S)
    return [line.strip().replace("&nbsp;", " ") for line in re.sub(r"<[^>]+>", "\n", dom).splitlines() if line.strip()]


def _look(name: str, url: str, budget_ms: int = 30000) -> str:
    """The page's DOM as Chromium draws it, and its screenshot in reports/ui_screenshots/<name>.png."""
    shot = screenshot(url, SHOTS / f"{name}.png", budget_ms=budget_ms)
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
    return dump_dom(url, budget_ms=budget_ms)


def test_every_ui_is_up_with_nothing_missing(uis):
    assert list(uis) == ["mlflow", "prefect", "evidently", "docs", "bento"]
    assert {name: (u["state"], u["missing"]) for name, u in uis.items()} == dict.fromkeys(uis, ("up", None))


def test_mlflow_model_page_shows_the_champion_alias_on_its_version(uis):
    base = uis["mlflow"]["url"].split("/#/")[0]
    model = _get(f"{base}/api/2.0/mlflow/registered-models/get?name=review-sentiment")["registered_model"]  # type: ignore[index]
    champion = {a["alias"]: a["version"] for a in model["aliases"]}["champion"]
    lines = _text(_look("mlflow-model", f"{base}/#/models/review-sentiment?workflowType=machine_learning"))

    assert "review-sentiment" in lines
    row = lines[lines.index(f"Version {champion}") :]
    later = [i for i, line in enumerate(row[1:], 1) if re.fullmatch(r"Version \d+", line)]
    assert "@ champion" in row[: later[0] if later else None], row[:60]


def test_data_docs_index_lists_the_validation(uis):
    dom = _look("data-docs", uis["docs"]["url"], budget_ms=10000)

    # bootstrap-table draws the index's rows from JSON: they exist only once its scripts ran
    rows = dict(re.findall(r'<tr class="clickable-row" data-href="([^"]+)"[^>]*>(.*?)</tr>', dom, re.S))
    raw = [href for href, cells in rows.items() if "/raw/" in href and re.search(r"<td[^>]*>raw</td>", cells)]
    assert raw, _text(dom)[:80]  # make run's validation of data/raw, its batch name in the Run Name column
    page = uis["docs"]["url"].rsplit("/", 1)[0] + "/" + raw[0]
    assert "Quarantine" in _text(dump_dom(page, budget_ms=10000))


def test_evidently_dashboard_is_drawn_with_the_drift_panels(uis):
    from reviewops.monitoring.dashboard import drift_panels

    lines = _text(_look("evidently-dashboard", uis["evidently"]["url"]))

    assert "This dashboard is currently empty. Please add a monitoring panel to start." not in lines
    assert "reviewops-drift" in lines
    assert [p.title for p in drift_panels() if p.title not in lines] == []


def test_prefect_ui_shows_the_retraining_run(uis):
    base = uis["prefect"]["url"].rsplit("/runs", 1)[0]
    flows = {f["id"]: f["name"] for f in _get(f"{base}/api/flows/filter", {"limit": 50})}  # type: ignore[union-attr]
    runs = [
        r for r in _get(f"{base}/api/flow_runs/filter", {"limit": 50}) if flows[r["flow_id"]] == "reviewops-retrain"
    ]  # type: ignore[union-attr]
    assert runs and all(r["state_type"] == "COMPLETED" for r in runs), runs
    lines = _text(_look("prefect-flow-run", f"{base}/runs/flow-run/{runs[0]['id']}"))

    assert runs[0]["name"] in lines and "reviewops-retrain" in lines and "Completed" in lines
    assert "Artifacts" in lines


def test_bento_swagger_page_lists_the_endpoints(uis):
    dom = _look("bento-swagger", uis["bento"]["url"], budget_ms=15000)
    paths = set(re.findall(r'data-path="([^"]+)"', dom))  # Swagger UI's operation rows
    assert {"/analyze", "/summarize", "/sentiment"} <= paths, _text(dom)[:80]
