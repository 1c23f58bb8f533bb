"""Drift check end to end (small): clean vs drifted batches, the HTML/JSON/workspace outputs, MLflow and the CLI."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from reviewops.config import Settings
from reviewops.monitoring.drift import run_drift
from reviewops.monitoring.outputs import log_to_mlflow
from reviewops.monitoring.summary import drifted_columns_sentence


def _processed(rows: int, seed: int, scenario: str = "base") -> pd.DataFrame:
    from reviewops.data.clean import preprocess
    from reviewops.data.generate import generate_reviews

    raw = generate_reviews(rows, seed, scenario)
    raw = raw[raw["rating"].between(1, 5) & raw["language"].isin(["en", "zh"])]
    return preprocess(raw, Settings().preprocess).clean


@pytest.fixture(scope="module")
def drift_runs(tmp_path_factory, tiny_encoder):
    root = tmp_path_factory.mktemp("drift")
    settings = Settings.model_validate(
        {
            "paths": {"reports_dir": str(root / "reports")},
            "drift": {"sample_size": 150, "embedding_model": str(tiny_encoder)},
        }
    )
    ref = _processed(320, 1)
    base = _processed(320, 2)
    shifted = _processed(320, 3, "language_sentiment_shift")

    def predict(texts):  # a stand-in champion: the shift shows up in its predictions too
        return ["negative" if any(w in t for w in ("差", "失望", "terrible", "broke")) else "positive" for t in texts]

    runs = {
        "base": run_drift(settings, reference=ref, current=base, name="base", track=False),
        "shifted": run_drift(
            settings,
            reference=ref,
            current=shifted,
            name="shifted",
            track=False,
            predict_fn=predict,
            summarize_len_fn=lambda texts: [t[:20] for t in texts],
        ),
    }
    return root, settings, runs, (ref, shifted)


def test_run_drift_base_vs_base_is_not_drifted(drift_runs):
    _, _, runs, _ = drift_runs
    result = runs["base"]
    assert not result.drifted, result.decision.reason
    assert result.summary["share_drifted"] < 0.3
    assert result.summary["columns"]["language"]["score"] < 0.1


def test_run_drift_shifted_batch_is_drifted(drift_runs):
    _, _, runs, _ = drift_runs
    s = runs["shifted"].summary
    assert runs["shifted"].drifted
    assert {"share_drifted", "language_shift", "label_shift"} <= set(runs["shifted"].decision.fired)
    assert s["distributions"]["language"]["current"]["zh"] > s["distributions"]["language"]["reference"]["zh"]
    assert s["descriptors"]["non_ascii_share"]["current_mean"] > s["descriptors"]["non_ascii_share"]["reference_mean"]
    # predictions ran on the sample and entered the report
    assert {"pred_sentiment", "pred_summary_len"} <= set(s["columns"])
    assert s["columns"]["pred_summary_len"]["scope"] == "sample"
    assert s["embedding"]["score"] is not None and s["embedding"]["dim"] == 32
    # the threshold Evidently used is the one the decision compared with (decided once)
    emb = next(sig for sig in runs["shifted"].decision.signals if sig.name == "embedding")
    assert emb.threshold == s["embedding"]["threshold"] == s["columns"]["text"]["threshold"]


def test_run_drift_writes_html_json_and_workspace(drift_runs):
    from evidently.ui.workspace import Workspace

    root, _, runs, _ = drift_runs
    result = runs["shifted"]
    assert result.html_path == root / "reports" / "drift" / "shifted.html"
    page = result.html_path.read_text(encoding="utf-8")
    assert "sampled 150 of" in page and "with seed 42" in page and "Sentiment trend" in page
    saved = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert saved["decision"]["drifted"] is True
    assert saved["sampling"]["note"].startswith("sampled 150 of")
    assert saved["trend"]["rows"] and all(
        not (isinstance(v, float) and math.isnan(v)) for row in saved["trend"]["rows"] for v in row.values()
    )
    ws = Workspace(str(root / "reports" / "evidently_workspace"))
    projects = ws.search_project("reviewops-drift")
    assert len(projects) == 1  # created once, reused by the second run
    assert len(ws.list_runs(projects[0].id)) == 2  # one snapshot per batch (all rows + sample)


def test_workspace_snapshots_are_tagged_and_named_per_batch(drift_runs):
    from evidently.ui.workspace import Workspace

    root, _, runs, (ref, shifted) = drift_runs
    ws = Workspace(str(root / "reports" / "evidently_workspace"))
    project = ws.search_project("reviewops-drift")[0]
    snaps = {s.name: s for s in (ws.get_run(project.id, i) for i in ws.list_runs(project.id))}
    assert set(snaps) == {"base", "shifted"}
    assert snaps["base"].tags == ["reviewops", "not-drifted", "batch:base"]
    assert snaps["shifted"].tags == ["reviewops", "drifted", "batch:shifted"]
    meta = snaps["shifted"].metadata
    assert meta["decision"] == "drifted" and meta["batch"] == "shifted"
    assert meta["drifted_columns"] == drifted_columns_sentence(runs["shifted"].summary)
    assert meta["fired"] == ", ".join(runs["shifted"].decision.fired)
    # both halves of the check are in the one snapshot, as two titled groups
    titles = [w.title for w in snaps["shifted"].widgets]
    sentence = drifted_columns_sentence(runs["shifted"].summary)
    assert titles == [
        f"All rows ({len(ref)} reference and {len(shifted)} current rows): {sentence}",
        f"Sample: {runs['shifted'].summary['sampling']['note']}",
    ]
    added = runs["base"].workspace_runs + runs["shifted"].workspace_runs
    assert sorted(str(i) for i in ws.list_runs(project.id)) == sorted(added)


def test_dashboard_panels_after_two_batches(drift_runs):
    from evidently.ui.workspace import Workspace

    from reviewops.monitoring.dashboard import DASHBOARD_TAB, drift_panels

    root, _, _, _ = drift_runs
    ws = Workspace(str(root / "reports" / "evidently_workspace"))
    project = ws.search_project("reviewops-drift")[0]
    model = ws.get_dashboard(project.id)
    assert [p.title for p in model.panels] == [p.title for p in drift_panels()]
    assert len(model.panels) == 4  # added by the first batch, not again by the second
    assert [t.title for t in model.tabs] == [DASHBOARD_TAB]
    assert model.tabs[0].panels == [p.id for p in model.panels]


def _counter(page: str, title: str) -> float:
    """The value of an Evidently counter widget in the page's embedded dashboard JSON."""
    data = json.loads(re.search(r"var evidentlyDashboard = (.*);\nvar evidentlyGraphs", page).group(1))
    stack = list(data["widgets"])
    while stack:
        w = stack.pop()
        stack.extend(w.get("widgets") or [])
        if w.get("title") == title:
            return float(w["params"]["counters"][0]["value"])
    raise AssertionError(f"no counter {title!r}")


def test_page_states_one_drifted_column_count(drift_runs):
    _, _, runs, _ = drift_runs
    for result in runs.values():
        s, page = result.summary, result.html_path.read_text(encoding="utf-8")
        sentence = drifted_columns_sentence(s)
        banner = re.search(r'<p id="drifted-columns"><b>([^<]*)</b>', page).group(1)
        assert banner == sentence  # under the banner
        assert f"current rows): {sentence}" in page  # the embedded all-rows group's title
        # Evidently's own counter in that group is the same count and share
        assert _counter(page, "Count of Drifted Columns: count") == s["n_drifted"]
        assert _counter(page, "Count of Drifted Columns: share") == pytest.approx(s["share_drifted"], abs=0.005)
        counted = [c for c, r in s["columns"].items() if r["counted"]]
        assert s["n_columns"] == len(counted) == 10
        assert s["n_drifted"] == sum(s["columns"][c]["drifted"] for c in counted)
        signal = next(sig for sig in result.decision.signals if sig.name == "share_drifted")
        assert signal.score == s["share_drifted"] and signal.detail.startswith(f"{s['n_drifted']} of 10 ")


def test_page_is_small_and_embeds_the_viewer_once(drift_runs):
    _, _, runs, _ = drift_runs
    page = runs["shifted"].html_path.read_text(encoding="utf-8")
    size = runs["shifted"].html_path.stat().st_size
    assert size <= 3_000_000, size
    assert page.count('id="evidently-viewer"') == 1 and "<iframe" not in page
    assert "gzip-compressed" in page


def test_log_to_mlflow_namespaces_metrics(drift_runs, tmp_path, monkeypatch):
    import mlflow

    _, settings, runs, _ = drift_runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = runs["shifted"]
    run_id = log_to_mlflow(result.summary, result.html_path, settings)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.metrics["drift/drifted"] == 1.0
    assert run.data.metrics["drift/share_drifted"] == pytest.approx(result.summary["share_drifted"])
    assert "drift/column/language" in run.data.metrics
    assert run.data.tags["drift.sampling"].startswith("sampled 150 of")
    assert run.data.tags["drift.drifted_columns"] == drifted_columns_sentence(result.summary)
    names = [a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "drift")]
    assert "drift/shifted.html" in names


def test_cli_drift_fail_on_drift_exit_code(drift_runs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    _, _, _, (ref, shifted) = drift_runs
    ref.to_parquet(tmp_path / "ref.parquet")
    shifted.to_parquet(tmp_path / "cur.parquet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = [
        "--set",
        f"drift.embedding_model={drift_runs[1].drift.embedding_model}",
        "--set",
        "drift.sample_size=100",
        "drift",
        "--current",
        "cur.parquet",
        "--reference",
        "ref.parquet",
        "--name",
        "cli",
        "--json",
    ]
    res = CliRunner().invoke(app, [*args, "--fail-on-drift"])
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["drifted"] is True and out["html"].endswith("cli.html")
    assert (tmp_path / "reports" / "drift" / "cli.json").exists()
    assert CliRunner().invoke(app, args).exit_code == 0


def test_run_drift_reads_scored_predictions_for_an_unrated_batch(drift_runs):
    root, settings, _, (ref, shifted) = drift_runs
    calls: list[int] = []

    def champion(texts):  # predicts the reference side only: the current side is already scored
        calls.append(len(texts))
        return ["positive"] * len(texts)

    scored = shifted.drop(columns=["rating", "label", "label_id"], errors="ignore")
    scored["sentiment"] = ["negative" if i % 2 else "neutral" for i in range(len(scored))]
    result = run_drift(
        settings,
        reference=ref,
        current=scored,
        predict_fn=champion,
        current_labels="sentiment",
        name="scored",
        workspace_dir=False,
        track=False,
    )
    s = result.summary
    assert calls == [s["sampling"]["reference_sampled"]]
    assert s["predictions"] == {"reference": "champion", "current": "scored dataset"}
    # all-positive reference vs negative/neutral current predictions: the prediction drift fires
    assert "prediction_shift" in result.decision.fired
    assert s["trend"]["source"] == "predicted" and s["trend"]["agreement"] is None
    assert result.to_dict()["trend_source"] == "predicted" and result.to_dict()["sentiment_agreement"] is None
    assert s["trend"]["rows_total"] > 0 and s["trend"]["predicted"] is None
    page = result.html_path.read_text(encoding="utf-8")
    assert "predicted sentiment (scored dataset)" in page and "current side from the scored dataset" in page
    assert json.loads(result.json_path.read_text(encoding="utf-8"))["trend"]["source"] == "predicted"


def test_run_drift_reports_rating_and_prediction_agreement(drift_runs):
    _, settings, _, (ref, shifted) = drift_runs
    both = shifted.copy()
    both["sentiment"] = both["label"]  # a perfect model
    both.loc[both.index[:10], "sentiment"] = "neutral"
    result = run_drift(settings, reference=ref, current=both, name="both", workspace_dir=False, track=False)
    trend = result.summary["trend"]
    assert trend["source"] == "label"
    assert trend["agreement"]["rows"] == len(both)
    assert trend["agreement"]["agree"] == len(both) - int((both["label"].iloc[:10] != "neutral").sum())
    assert trend["predicted"]["rows_total"] > 0 and "alerts" in trend["predicted"]
    assert result.to_dict()["sentiment_agreement"] == trend["agreement"]["rate"] < 1.0
    assert result.summary["predictions"] == {"reference": None, "current": None}  # no champion given
    assert "agree on" in result.html_path.read_text(encoding="utf-8")
