"""The flows' Prefect artifacts, as built from recorded results: rows and Markdown with their values."""

from __future__ import annotations

from flows import artifacts

DATA = {
    "ingested": 3000,
    "valid": 2847,
    "quarantined": 153,
    "quarantine_path": "data/quarantine/raw.parquet",
    "deduplicated": 233,
    "empty_after_cleaning": 0,
    "clean": 2614,
    "splits": {"train": 1961, "val": 278, "test": 375},
    "data_version": "c5b81ea8e1a86244b0456829170c999e.dir",
}

CHECKS = [
    {"name": "floor/rougeL", "value": 0.0118, "threshold": 0.05, "passed": False, "detail": "gate.min_rougeL"},
    {"name": "floor/sentiment_macro_f1", "value": 0.788, "threshold": 0.4, "passed": True, "detail": "min_f1"},
    {
        "name": "ceiling/contradiction_rate_macro",
        "value": None,
        "threshold": 0.25,
        "passed": False,
        "detail": "no number",
        "comparison": "<=",
    },
]


def test_data_counts_rows_follow_the_pipeline():
    rows = artifacts.data_counts_rows(DATA)
    assert [(r["step"], r["rows"]) for r in rows] == [
        ("ingested", 3000),
        ("valid", 2847),
        ("quarantined", 153),
        ("deduplicated", 233),
        ("empty after cleaning", 0),
        ("clean", 2614),
        ("split: train", 1961),
        ("split: val", 278),
        ("split: test", 375),
    ]
    assert "data/quarantine/raw.parquet" in rows[2]["note"]
    assert "c5b81ea8e1a86244b0456829170c999e.dir" in rows[5]["note"]


def test_metrics_rows_put_each_model_in_a_column():
    metrics = {
        "eval/rougeL": 0.11805699855699857,
        "baseline/lead8/rougeL": 0.0985,
        "baseline/untuned/rougeL": 0.0831,
        "eval/sentiment_macro_f1": 0.7880023900107306,
        "baseline/majority/sentiment_macro_f1": 0.2785,
        "slice/language_zh/rougeL": 0.5,  # slices stay in eval.json and MLflow
    }
    rows = artifacts.metrics_rows(metrics)
    assert rows == [
        {"metric": "rougeL", "fine-tuned": 0.1181, "untuned base": 0.0831, "lead-8": 0.0985, "majority class": None},
        {
            "metric": "sentiment_macro_f1",
            "fine-tuned": 0.788,
            "untuned base": None,
            "lead-8": None,
            "majority class": 0.2785,
        },
    ]  # no champion column: none was re-scored


def test_gate_markdown_says_why_it_rejected():
    text = artifacts.gate_markdown({"passed": False, "checks": CHECKS, "champion": None, "registered": {}})
    lines = text.splitlines()
    assert lines[0] == "# Quality gate: REJECTED: the registry was not changed; there is no champion yet"
    assert "| floor/rougeL | 0.0118 | >= 0.0500 | **FAIL** | gate.min_rougeL |" in lines
    assert "| floor/sentiment_macro_f1 | 0.7880 | >= 0.4000 | pass | min_f1 |" in lines
    assert "| ceiling/contradiction_rate_macro | missing | <= 0.2500 | **FAIL** | no number |" in lines
    assert "Failed: floor/rougeL, ceiling/contradiction_rate_macro." in lines
    kept = artifacts.gate_markdown({"passed": False, "checks": CHECKS, "champion": {"source": "registry"}})
    assert kept.startswith("# Quality gate: REJECTED: the registry was not changed; the champion stays")


def test_gate_markdown_lists_what_was_registered():
    registered = {"summarizer": {"name": "review-summarizer", "version": "3", "aliases": ["champion"]}}
    text = artifacts.gate_markdown({"passed": True, "checks": CHECKS[1:2], "registered": registered})
    assert text.splitlines()[0] == "# Quality gate: PASSED: the candidates were registered"
    assert "- summarizer: review-summarizer v3 -> champion" in text.splitlines()


def test_drift_markdown_has_each_signal_and_the_action():
    summary = {
        "name": "batch-1",
        "action": "retrained",
        "report": "reports/drift/batch-1.html",
        "drift": {
            "drifted": True,
            "signals": [
                {"name": "embedding", "score": 0.8285, "threshold": 0.55, "fired": True, "detail": "ROC-AUC"},
                {"name": "category_shift", "score": None, "threshold": 0.1, "fired": False, "detail": ""},
            ],
        },
        "retrain": {"run_id": "abc", "gate": {"passed": False}},
    }
    lines = artifacts.drift_markdown(summary).splitlines()
    assert lines[0] == "# Batch batch-1: DRIFTED"
    assert "| embedding | 0.829 | 0.550 | **fired** | ROC-AUC |" in lines
    assert "| category_shift | n/a | 0.100 | ok |  |" in lines
    assert "Action: retrained" in lines and "Report: reports/drift/batch-1.html" in lines
    assert "Re-tune: MLflow run abc, gate rejected (champion kept)" in lines
