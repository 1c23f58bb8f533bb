"""The drift check's HTML page: the decision, the column table, the batch's Evidently snapshot and the trend.

Size: Evidently's own ``get_html_str`` embeds its 3.5 MB viewer (React + Plotly) in every report,
HTML-escaped inside an iframe; two reports made an 8.8 MB page of which the data was ~0.3 MB.
Here the viewer is embedded once, gzip-compressed and base64-encoded (~1.4 MB), and unpacked by
the browser (``DecompressionStream``): the page stays one self-contained, offline file of ~2 MB
(:func:`evidently_block`). Evidently's payload (widgets and plots) is unchanged and already
bounded (histograms, not raw points; the embedding plot has ``drift.embedding_plot_rows`` points).
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.monitoring.decision import DriftDecision
from reviewops.monitoring.jsonable import as_number
from reviewops.monitoring.summary import drifted_columns_sentence
from reviewops.monitoring.trend import TREND_ALL

VIEWER_NOTE = (
    "Evidently's viewer is embedded once, gzip-compressed; it unpacks in any current browser "
    "(DecompressionStream: Chrome 80+, Firefox 113+, Safari 16.4+). "
    "The tables above hold every number without it."
)

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
        ["column", "scope", "method", "score", "threshold", "drifted", "in the drifted-column count"],
        (
            [
                html.escape(c),
                r["scope"],
                _fmt(r["method"]),
                _fmt(r["score"]),
                _fmt(r["threshold"]),
                "yes" if r["drifted"] else "no",
                "yes" if r.get("counted") else "no",
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


@functools.cache
def _viewer_b64() -> str:
    """Evidently's viewer bundle, gzip-compressed (mtime 0: the same bytes every run) and base64-encoded."""
    from evidently.legacy.utils.dashboard import STATIC_PATH

    raw = (Path(STATIC_PATH) / "index.js").read_bytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


@functools.cache
def _font_b64() -> str:
    from evidently.legacy.utils.dashboard import STATIC_PATH

    return base64.b64encode((Path(STATIC_PATH) / "material-ui-icons.woff2").read_bytes()).decode("ascii")


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``</`` (a review text could close the tag)."""
    from evidently.legacy.utils import NumpyEncoder

    return json.dumps(value, cls=NumpyEncoder).replace("</", "<\\/")


def _payload(widgets: list[Any]) -> tuple[str, str]:
    """Evidently's dashboard JSON and its additional graphs, as ``render_widgets`` builds them."""
    from evidently.legacy.model.dashboard import DashboardInfo
    from evidently.legacy.model.widget import AdditionalGraphInfo, BaseWidgetInfo

    graphs: dict[str, Any] = {}
    for widget in widgets:
        for graph in widget.get_additional_graphs():
            info = graph.params if isinstance(graph, AdditionalGraphInfo) else graph
            graphs[str(graph.id)] = info.dict() if isinstance(info, BaseWidgetInfo) else info
    info = DashboardInfo(name="Report", widgets=widgets).dict()
    for widget in info["widgets"]:
        widget.pop("additionalGraphs", None)
    return _script_json(info), _script_json(graphs)


_LOADER = """<script>var global = globalThis;</script>
<script>(async () => {
  const out = document.getElementById("evidently-status");
  try {
    const b64 = document.getElementById("evidently-viewer").textContent.trim();
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const code = await new Response(stream).text();
    const lib = document.createElement("script");
    lib.textContent = code;
    document.head.appendChild(lib);
    window.drawDashboard(evidentlyDashboard, new Map(Object.entries(evidentlyGraphs)), "evidently-root");
    out.remove();
  } catch (err) {
    out.textContent = "The Evidently viewer did not load (" + err + "). The tables above hold every number.";
  }
})();</script>"""


def evidently_block(snapshot: Any) -> str:
    """The batch's Evidently snapshot (a ``SnapshotModel``) drawn by one embedded, compressed viewer."""
    dashboard, graphs = _payload([*snapshot.widgets, *snapshot.tests_widgets])
    return f"""<style>@font-face{{font-family:'Material Icons';font-style:normal;font-weight:400;
src:url(data:font/woff2;base64,{_font_b64()}) format('woff2')}}
.material-icons{{font-family:'Material Icons';font-weight:normal;font-style:normal;font-size:24px;line-height:1;
letter-spacing:normal;text-transform:none;display:inline-block;white-space:nowrap;direction:ltr}}</style>
<p id="evidently-status">Loading the Evidently viewer…</p><div id="evidently-root"></div>
<script>var evidentlyDashboard = {dashboard};
var evidentlyGraphs = {graphs};</script>
<script id="evidently-viewer" type="application/octet-stream">{_viewer_b64()}</script>
{_LOADER}"""


def render_html(
    summary: Mapping[str, Any],
    decision: DriftDecision,
    snapshot: Any,
    trend_rows: pd.DataFrame,
    alerts: list[dict[str, Any]],
) -> str:
    """One page: decision, drifted-column count, column table, the batch's Evidently snapshot, the trend.

    The drifted-column count is stated once, by :func:`reviewops.monitoring.summary.drifted_columns_sentence`,
    under the banner and in the title of the snapshot's all-rows group (Evidently's own
    ``Count of Drifted Columns`` in that group is the number it reads).

    Args:
        summary: the drift summary; decision: its decision.
        snapshot: the batch's Evidently ``SnapshotModel`` (:func:`reviewops.monitoring.outputs.merged_snapshot`).
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
<p id="drifted-columns"><b>{html.escape(drifted_columns_sentence(summary))}</b>: Evidently's Count of Drifted
Columns in the all-rows group below, the share_drifted signal. The sample's columns (text, predictions)
are not counted there: the embedding and prediction_shift signals cover them.</p>
<h2>Decision</h2>{_signals_table(decision)}
<p><b>{sampling}</b>.</p>
<h2>Columns</h2>{_columns_table(summary["columns"])}
{f"<p>{html.escape(skipped)}</p>" if skipped else ""}
<h2>Evidently: all rows (descriptors, language, category, target) and the sample (embeddings, text,
predictions)</h2>
<p>{sampling}.</p>{_predictions_line(summary)}
<p><small>{html.escape(VIEWER_NOTE)}</small></p>
{evidently_block(snapshot)}
<h2>Sentiment trend (negative share per product per week)</h2>
<p>Alert when the negative share rises by more than {summary["trend"]["threshold"]} vs the previous week,
both weeks with at least {summary["trend"]["min_count"]} reviews.</p>
{f"<p><b>{html.escape(summary['trend']['note'])}</b></p>" if summary["trend"].get("note") else ""}
{_trend_source(summary["trend"])}
<h3>Alerts</h3>{_alerts_table(alerts)}
<h3>All products</h3>{_trend_table(trend_rows)}
{_predicted_alerts(summary["trend"])}
</body></html>"""
