"""The drift check's HTML page: the decision, the column table, both Evidently reports and the sentiment trend."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from reviewops.monitoring.decision import DriftDecision
from reviewops.monitoring.jsonable import as_number
from reviewops.monitoring.trend import TREND_ALL

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:left}th{background:#f3f3f3}.fired{color:#b00020;font-weight:600}.ok{color:#1b5e20}
.banner{font-size:1.3rem;padding:.6rem 1rem;border-radius:6px;display:inline-block}
.drifted{background:#fde7e9}.clean{background:#e8f5e9}"""


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _signals_table(decision: DriftDecision) -> str:
    return _table(
        ["signal", "score", "threshold", "fired", "detail"],
        (
            [
                s.name,
                _fmt(s.score),
                _fmt(s.threshold),
                '<span class="fired">yes</span>' if s.fired else '<span class="ok">no</span>',
                html.escape(s.detail),
            ]
            for s in decision.signals
        ),
    )


def _columns_table(columns: Mapping[str, Mapping[str, Any]]) -> str:
    return _table(
        ["column", "scope", "method", "score", "threshold", "drifted"],
        (
            [
                html.escape(c),
                r["scope"],
                _fmt(r["method"]),
                _fmt(r["score"]),
                _fmt(r["threshold"]),
                "yes" if r["drifted"] else "no",
            ]
            for c, r in columns.items()
        ),
    )


def _alerts_table(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "<p>No alerts.</p>"
    return _table(
        ["product", "period", "count", "negative share", "previous", "change"],
        (
            [
                html.escape(str(a["product_id"])),
                a["period"],
                a["count"],
                _fmt(a["negative_share"]),
                _fmt(a["prev_negative_share"]),
                _fmt(a["change"]),
            ]
            for a in alerts
        ),
    )


def _trend_table(trend_rows: pd.DataFrame) -> str:
    overall = trend_rows[trend_rows["product_id"] == TREND_ALL]
    return _table(
        ["period", "count", "negatives", "negative share", "change"],
        (
            [r.period, r.count, r.negatives, _fmt(float(r.negative_share)), _fmt(as_number(r.change))]
            for r in overall.itertuples()
        ),
    )


_SOURCE_NAMES = {"label": "labels", "rating": "ratings", "predicted": "predicted sentiment (scored dataset)"}


def _trend_source(trend: Mapping[str, Any]) -> str:
    """Where the trend's labels came from and the agreement of ratings and predictions."""
    source = trend.get("source")
    parts = [f"<p>Labels: <b>{html.escape(_SOURCE_NAMES.get(str(source), 'none'))}</b>."]
    if trend.get("source_note"):
        parts.append(f" {html.escape(trend['source_note'])}.")
    agreement = trend.get("agreement")
    if agreement and agreement.get("rate") is not None:
        parts.append(
            f" Ratings and predicted sentiment agree on <b>{_fmt(agreement['rate'])}</b> of "
            f"{agreement['rows']} reviews (a monitoring signal: it falls when the model or the reviews change)."
        )
    parts.append("</p>")
    return "".join(parts)


def _predicted_alerts(trend: Mapping[str, Any]) -> str:
    """The alerts of the predicted-sentiment trend, shown when the batch also has ratings."""
    predicted = trend.get("predicted")
    return f"<h3>Alerts on the predicted sentiment</h3>{_alerts_table(predicted['alerts'])}" if predicted else ""


def _predictions_line(summary: Mapping[str, Any]) -> str:
    sources = summary.get("predictions") or {}
    if not sources.get("current"):
        return ""
    return (
        f"<p>Predicted sentiment: reference side by the {html.escape(str(sources.get('reference')))}, "
        f"current side from the {html.escape(str(sources['current']))}.</p>"
    )


def render_html(
    summary: Mapping[str, Any],
    decision: DriftDecision,
    full: Any,
    sample: Any,
    trend_rows: pd.DataFrame,
    alerts: list[dict[str, Any]],
) -> str:
    """One page: decision table, the two Evidently reports (iframes), the sentiment trend.

    Args:
        summary: the drift summary; decision: its decision.
        full: the all-rows Evidently snapshot; sample: the sample snapshot.
        trend_rows: the trend rows shown; alerts: the trend alerts.
    """
    banner = (
        "drifted" if decision.drifted else "clean",
        f"DRIFTED: {html.escape(decision.reason)}" if decision.drifted else "No drift",
    )
    sampling = html.escape(summary["sampling"]["note"])
    skipped = summary.get("text_drift", {}).get("skipped")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>ReviewOps drift: {html.escape(summary["name"])}</title><style>{_CSS}</style></head><body>
<h1>Drift check {html.escape(summary["name"])}</h1>
<p>{summary["created_at"]} — reference {summary["reference"]["rows"]} rows,
current {summary["current"]["rows"]} rows.</p>
<p class="banner {banner[0]}">{banner[1]}</p>
<h2>Decision</h2>{_signals_table(decision)}
<p><b>{sampling}</b>.</p>
<h2>Columns</h2>{_columns_table(summary["columns"])}
{f"<p>{html.escape(skipped)}</p>" if skipped else ""}
<h2>All rows: text descriptors, language, category, target (Evidently)</h2>
{full.get_html_str(as_iframe=True)}
<h2>Sample: MiniLM embeddings, text domain classifier, predictions (Evidently)</h2>
<p>{sampling}.</p>{_predictions_line(summary)}
{sample.get_html_str(as_iframe=True)}
<h2>Sentiment trend (negative share per product per week)</h2>
<p>Alert when the negative share rises by more than {summary["trend"]["threshold"]} vs the previous week,
both weeks with at least {summary["trend"]["min_count"]} reviews.</p>
{f"<p><b>{html.escape(summary['trend']['note'])}</b></p>" if summary["trend"].get("note") else ""}
{_trend_source(summary["trend"])}
<h3>Alerts</h3>{_alerts_table(alerts)}
<h3>All products</h3>{_trend_table(trend_rows)}
{_predicted_alerts(summary["trend"])}
</body></html>"""
