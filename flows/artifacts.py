"""Prefect artifacts of the flows: data counts, test metrics, gate decision and drift summary.

Each has a stable key, so the Prefect UI's Artifacts page keeps one history per kind (the
latest on top, every run's version below). The builders are pure (a flow's result in, table
rows or Markdown out); the ``publish_*`` functions create the artifact in the current flow or
task run and are called by the flows only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

DATA_COUNTS_KEY = "reviewops-data-counts"
TEST_METRICS_KEY = "reviewops-test-metrics"
GATE_DECISION_KEY = "reviewops-gate-decision"
DRIFT_SUMMARY_KEY = "reviewops-drift-summary"

# Columns of the metrics table: where each model's number sits in the evaluation result.
METRIC_COLUMNS = (
    ("fine-tuned", "eval/"),
    ("champion", "champion/eval/"),
    ("untuned base", "baseline/untuned/"),
    ("lead-8", "baseline/lead8/"),
    ("majority class", "baseline/majority/"),
)


def _num(value: Any, digits: int = 4) -> Any:
    """A figure as an operator reads it (4 decimals); anything else as it is."""
    return round(value, digits) if isinstance(value, float) else value


def data_counts_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{"step", "rows", "note"}``: ingested -> valid/quarantined -> deduplicated -> clean -> splits."""
    splits = data.get("splits") or {}
    rows = [
        ("ingested", data.get("ingested"), "rows read from data/raw"),
        ("valid", data.get("valid"), "passed the Great Expectations suite"),
        ("quarantined", data.get("quarantined"), f"kept with their reasons in {data.get('quarantine_path')}"),
        ("deduplicated", data.get("deduplicated"), "exact and normalized duplicates dropped"),
        ("empty after cleaning", data.get("empty_after_cleaning"), "quarantined by the cleaning step"),
        ("clean", data.get("clean"), f"data version {data.get('data_version')}"),
        *((f"split: {name}", count, "") for name, count in splits.items()),
    ]
    return [{"step": step, "rows": count, "note": note} for step, count, note in rows]


def metrics_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per test metric (``eval/<name>``): the fine-tuned model next to the champion and baselines.

    A model that did not report a metric has None in its column (an empty cell in the UI).
    """
    names = sorted(k.removeprefix("eval/") for k in metrics if k.startswith("eval/"))
    rows = []
    for name in names:
        row: dict[str, Any] = {"metric": name}
        row.update({column: _num(metrics.get(prefix + name)) for column, prefix in METRIC_COLUMNS})
        rows.append(row)
    used = [column for column, _ in METRIC_COLUMNS if any(row[column] is not None for row in rows)]
    return [{k: v for k, v in row.items() if k == "metric" or k in used} for row in rows]


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def gate_markdown(decision: Mapping[str, Any]) -> str:
    """The gate's verdict, every check with its numbers, what was registered (or why nothing was)."""
    passed = bool(decision.get("passed"))
    champion = decision.get("champion")
    if passed:
        verdict = "PASSED: the candidates were registered"
    elif champion:
        verdict = "REJECTED: the registry was not changed; the champion stays"
    else:
        verdict = "REJECTED: the registry was not changed; there is no champion yet"
    lines = [f"# Quality gate: {verdict}", ""]
    checks = [
        [
            c["name"],
            "missing" if c.get("value") is None else f"{c['value']:.4f}",
            f"{c.get('comparison', '>=')} {c['threshold']:.4f}",
            "pass" if c["passed"] else "**FAIL**",
            c.get("detail", ""),
        ]
        for c in decision.get("checks", [])
    ]
    lines += _md_table(["check", "value", "threshold", "result", "why"], checks)
    failed = [c["name"] for c in decision.get("checks", []) if not c["passed"]]
    if failed:
        lines += ["", f"Failed: {', '.join(failed)}."]
    registered = decision.get("registered") or {}
    if registered:
        lines += ["", "Registered:"]
        lines += [
            f"- {model}: {e.get('name')} v{e.get('version')} -> {', '.join(e.get('aliases') or [])}"
            for model, e in registered.items()
        ]
    if champion:
        lines += ["", f"Champion's numbers: {champion.get('source', 'registry')}."]
    lines += [f"- note: {note}" for note in decision.get("notes") or []]
    return "\n".join(lines)


def drift_markdown(summary: Mapping[str, Any]) -> str:
    """One monitored batch: drifted or not, each signal against its threshold, the action, the report."""
    drift = summary["drift"]
    lines = [f"# Batch {summary['name']}: {'DRIFTED' if drift['drifted'] else 'no drift'}", ""]
    signals = [
        [
            s["name"],
            "n/a" if s.get("score") is None else f"{s['score']:.3f}",
            f"{s['threshold']:.3f}",
            "**fired**" if s["fired"] else "ok",
            s.get("detail", ""),
        ]
        for s in drift.get("signals", [])
    ]
    lines += _md_table(["signal", "score", "threshold", "result", "what"], signals)
    lines += ["", f"Action: {summary.get('action')}", f"Report: {summary.get('report')}"]
    retrain = summary.get("retrain")
    if retrain:
        gate = retrain.get("gate") or {}
        lines.append(
            f"Re-tune: MLflow run {retrain.get('run_id')}, gate "
            f"{'passed' if gate.get('passed') else 'rejected (champion kept)'}"
        )
    return "\n".join(lines)


def publish_data_counts(data: Mapping[str, Any]) -> None:
    """Table artifact :data:`DATA_COUNTS_KEY` from the data flow's summary."""
    create_table_artifact(
        data_counts_rows(data),
        key=DATA_COUNTS_KEY,
        description=f"Rows through validation, cleaning and the split (data version {data.get('data_version')})",
    )


def publish_test_metrics(metrics: Mapping[str, Any]) -> None:
    """Table artifact :data:`TEST_METRICS_KEY` from the evaluate task's metrics."""
    create_table_artifact(
        metrics_rows(metrics),
        key=TEST_METRICS_KEY,
        description="Test-split metrics: the fine-tuned models next to the champion and the baselines",
    )


def publish_gate_decision(decision: Mapping[str, Any]) -> None:
    """Markdown artifact :data:`GATE_DECISION_KEY` from the gate's decision (passed or rejected)."""
    create_markdown_artifact(
        gate_markdown(decision),
        key=GATE_DECISION_KEY,
        description=f"Quality gate: {'passed' if decision.get('passed') else 'rejected'}",
    )


def publish_drift_summary(summary: Mapping[str, Any]) -> None:
    """Markdown artifact :data:`DRIFT_SUMMARY_KEY` from the monitor flow's summary of one batch."""
    create_markdown_artifact(
        drift_markdown(summary),
        key=DRIFT_SUMMARY_KEY,
        description=f"Drift check of {summary['name']}: {summary.get('action')}",
    )
