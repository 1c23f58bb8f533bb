"""Drift check of a new review batch against the champion's training data: Evidently reports + one decision.

What runs on which rows (so the check scales to millions of reviews):

* **All rows** — our own text descriptors (:mod:`reviewops.monitoring.descriptors`: length,
  CJK-aware word count, non-ASCII share, detected language, OOV rate vs the training vocabulary,
  PII-mask rate) and categorical drift (language, category, label, rating) in an Evidently report
  (:func:`reviewops.monitoring.report.all_rows_report`). Column drift uses *distance* tests with
  fixed thresholds (:func:`reviewops.monitoring.decision.column_rules`).
* **A fixed-seed sample** of ``drift.sample_size`` rows per side (:mod:`reviewops.monitoring.sample`)
  — MiniLM sentence embeddings (Evidently ``EmbeddingsDrift``, domain-classifier ROC-AUC),
  Evidently's text domain classifier, and the champion's predictions (sentiment, summary length)
  when callables are given. A batch already scored (``reviewops score``, the monitor flow's
  scoring step) brings its predicted sentiment: the current side reads it instead of predicting
  again (:func:`reviewops.monitoring.predictors.attach_scored`); the reference side is predicted
  by the champion as before.
* **The sentiment trend** (:mod:`reviewops.monitoring.trend`) on the current batch: ratings,
  else the predicted sentiment; both and their agreement rate when the batch has both.

:func:`reviewops.monitoring.decision.decide_drift` turns the JSON summary into one decision;
:func:`run_drift` is the stage: it runs the steps and writes the outputs (HTML + JSON under
``reports/drift/``, one Evidently workspace snapshot per batch tagged ``drifted`` / ``not-drifted``
with the project's dashboard panels (:mod:`reviewops.monitoring.dashboard`), MLflow logging).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from reviewops.config import DriftConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.common import Log, noop
from reviewops.monitoring.decision import DriftDecision, decide_drift
from reviewops.monitoring.descriptors import compute_descriptors, reference_descriptors
from reviewops.monitoring.outputs import (
    WORKSPACE_PROJECT,
    add_to_workspace,
    log_to_mlflow,
    merged_snapshot,
    tracking_configured,
)
from reviewops.monitoring.predictors import attach_scored, champion_predictors
from reviewops.monitoring.reference import champion_reference, load_batch, require_text
from reviewops.monitoring.render import render_html
from reviewops.monitoring.report import all_rows_report, sample_report
from reviewops.monitoring.sample import Predictor, draw_samples
from reviewops.monitoring.summary import build_summary
from reviewops.monitoring.trend import alerted_rows, sentiment_trends
from reviewops.reports import write_json


@dataclass
class DriftResult:
    """Everything one drift check produced."""

    summary: dict[str, Any]
    decision: DriftDecision
    html_path: Path | None = None
    json_path: Path | None = None
    snapshots: dict[str, Any] = field(default_factory=dict)
    workspace_runs: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None
    trend: pd.DataFrame | None = None

    @property
    def drifted(self) -> bool:
        """Whether the decision says the batch drifted."""
        return self.decision.drifted

    def to_dict(self) -> dict[str, Any]:
        """The CLI/flow result: decision, paths and the headline numbers."""
        return {
            "name": self.summary["name"],
            "drifted": self.decision.drifted,
            "fired": self.decision.fired,
            "reason": self.decision.reason,
            "share_drifted": self.summary.get("share_drifted"),
            "embedding_score": (self.summary.get("embedding") or {}).get("score"),
            "sampling": self.summary["sampling"]["note"],
            "trend_alerts": len(self.decision.alerts),
            "trend_source": self.summary["trend"].get("source"),
            "sentiment_agreement": (self.summary["trend"].get("agreement") or {}).get("rate"),
            "html": str(self.html_path) if self.html_path else None,
            "json": str(self.json_path) if self.json_path else None,
            "workspace_runs": self.workspace_runs,
            "mlflow_run_id": self.mlflow_run_id,
        }


def _prediction_sources(predict_fn: Predictor | None, current_labels: str | None, current: pd.DataFrame) -> dict:
    """Where each side's predicted sentiment comes from: ``champion``, ``scored dataset`` or None."""
    champion = "champion" if predict_fn is not None else None
    scored = predict_fn is not None and current_labels is not None and current_labels in current.columns
    return {"reference": champion, "current": "scored dataset" if scored else champion}


def _measure(
    cfg: DriftConfig,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    *,
    name: str,
    created: datetime,
    cache_dir: Path,
    predictors: tuple[Predictor | None, Predictor | None],
    current_labels: str | None,
    say: Log,
) -> tuple[DriftResult, tuple[pd.DataFrame, list[dict[str, Any]]]]:
    """Steps 1-4 of the check and the decision; the result (no outputs yet) and the trend rows and alerts shown."""
    # 1. descriptors on all rows (reference OOV is leave-one-out, see reference_descriptors)
    say(f"descriptors on {len(frames[0])} + {len(frames[1])} rows")
    ref_desc, vocab = reference_descriptors(frames[0])
    descriptors = (ref_desc, compute_descriptors(frames[1], vocab))
    # 2. Evidently report on all rows: numeric descriptors + categorical + target drift
    all_rows = all_rows_report(*frames, descriptors, cfg, name=name, created=created, say=say)
    # 3. fixed-seed samples: embeddings, text domain classifier, predictions
    predict_fn, summarize_len_fn = predictors
    samples = draw_samples(
        *frames,
        cfg,
        cache_dir=cache_dir,
        predict_fn=predict_fn,
        summarize_len_fn=summarize_len_fn,
        say=say,
        current_labels=current_labels,
    )
    sample = sample_report(samples, cfg, name=name, created=created, say=say)
    # 4. trend on the current batch (ratings, else predictions; both + agreement when both exist)
    trends = sentiment_trends(frames[1], "W", cfg.negative_share_jump, cfg.min_period_count)
    trend, alerts = trends.trend, trends.alerts
    trend_rows = alerted_rows(trend, alerts)
    summary = build_summary(
        cfg,
        name=name,
        created=created,
        frames=frames,
        descriptors=descriptors,
        all_rows=all_rows,
        samples=samples,
        sample=sample,
        trend=(trend, trend_rows, alerts),
        predicted_trend=trends.predicted,
        predictions=_prediction_sources(predict_fn, current_labels, frames[1]),
    )
    decision = decide_drift(summary, cfg)
    summary["decision"] = decision.to_dict()
    snapshots = {"all_rows": all_rows.snapshot, "sample": sample.snapshot}
    return DriftResult(summary=summary, decision=decision, snapshots=snapshots, trend=trend), (trend_rows, alerts)


def _write_outputs(
    settings: Settings,
    result: DriftResult,
    *,
    out: Path,
    trend: tuple[pd.DataFrame, list[dict[str, Any]]],
    workspace_dir: Path | str | Literal[False] | None,
    track: bool | None,
    say: Log,
) -> None:
    """HTML + JSON under ``out``, the Evidently workspace, MLflow; fills the result's paths and ids."""
    summary, name = result.summary, result.summary["name"]
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / f"{name}.html", out / f"{name}.json"
    result.html_path, result.json_path = html_path, json_path
    summary["report_html"] = str(html_path)
    # one snapshot per batch (all rows + sample), tagged with the decision: the page embeds it,
    # the workspace keeps it
    batch = merged_snapshot(summary, result.snapshots["all_rows"], result.snapshots["sample"])
    result.snapshots["batch"] = batch
    html_path.write_text(render_html(summary, result.decision, batch, *trend), encoding="utf-8")
    say(f"wrote {html_path}")

    if workspace_dir is not False:
        ws_path = Path(workspace_dir) if workspace_dir else Path(settings.paths.reports_dir) / "evidently_workspace"
        result.workspace_runs = add_to_workspace(ws_path, batch)
        summary["workspace"] = {"path": str(ws_path), "project": WORKSPACE_PROJECT, "runs": result.workspace_runs}
    if track or (track is None and tracking_configured()):
        result.mlflow_run_id = log_to_mlflow(summary, html_path, settings)
        summary["mlflow_run_id"] = result.mlflow_run_id
    write_json(json_path, summary)


def run_drift(
    settings: Settings,
    *,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    predict_fn: Predictor | None = None,
    summarize_len_fn: Predictor | None = None,
    current_labels: str | None = None,
    out_dir: Path | str | None = None,
    name: str | None = None,
    workspace_dir: Path | str | Literal[False] | None = None,
    track: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> DriftResult:
    """Compare a new batch with the reference, write the reports and decide.

    Args:
        settings: ReviewOps settings (``drift`` thresholds, ``paths.reports_dir``).
        reference: the champion's training data (processed columns).
        current: the new batch (processed columns; ``label`` may be absent when ``rating`` is there).
        predict_fn: ``texts -> labels`` (or ``[n, 3]`` probabilities in ``schema.LABELS`` order)
            from the champion sentiment model; run on the samples only.
        summarize_len_fn: ``texts -> summary lengths`` (or the summaries) from the champion
            summarizer; run on the samples only.
        current_labels: a column of ``current`` holding predicted labels (the scored
            dataset's ``sentiment``): the current side's predicted sentiment is read from it
            instead of calling ``predict_fn`` (which still predicts the reference side).
        out_dir: where ``<name>.html`` / ``<name>.json`` go (default ``<reports_dir>/drift``).
        name: report name (default ``drift-<UTC timestamp>``).
        workspace_dir: Evidently workspace (default ``<reports_dir>/evidently_workspace``);
            ``False`` skips it.
        track: log to MLflow; ``None`` logs when ``$MLFLOW_TRACKING_URI`` is set or a local
            ``mlflow.db`` exists.
        log: progress callback (one line per step).
    """
    say = log or noop
    require_text(reference, "reference")
    require_text(current, "current")
    created = datetime.now(UTC)
    name = name or f"drift-{created:%Y%m%dT%H%M%SZ}"
    frames = (reference.reset_index(drop=True), current.reset_index(drop=True))
    out = Path(out_dir) if out_dir else Path(settings.paths.reports_dir) / "drift"
    result, shown = _measure(
        settings.drift,
        frames,
        name=name,
        created=created,
        cache_dir=out / ".embedding_cache",
        predictors=(predict_fn, summarize_len_fn),
        current_labels=current_labels,
        say=say,
    )
    # 5. outputs: HTML + JSON, Evidently workspace, MLflow
    _write_outputs(settings, result, out=out, trend=shown, workspace_dir=workspace_dir, track=track, say=say)
    return result


def check_batch_drift(
    settings: Settings,
    current: Path | str,
    name: str,
    reference: Path | str | None = None,
    log: Log = noop,
    scored: Path | str | None = None,
    scored_batch: str | None = None,
) -> dict[str, Any]:
    """Drift of a prepared batch vs the reference (default: the champion's training split, see
    :func:`reviewops.monitoring.reference.champion_reference`), with the champion's predictions.

    ``scored`` is the scored dataset's folder (``settings.score.out_dir``) holding this batch
    as ``batch=<scored_batch>`` (default ``name``): its predicted sentiment joins the current
    rows by ``review_id``, the prediction drift reads it for the current side, and the trend
    reports it next to the ratings. Without it the champion predicts both sides.

    Writes ``<reports_dir>/drift/<name>.html|.json``, adds the run to the Evidently workspace
    and logs a ``drift <name>`` MLflow run. Returns :meth:`DriftResult.to_dict` plus the
    signals, the reference/current info, which champion models predicted and where the
    current side's predictions came from (``predictions``).
    """
    lineage: dict[str, Any] = {"source": "argument", "path": str(reference)}
    if reference is None:
        reference, lineage = champion_reference(settings)
        log(f"reference: {lineage['path']} ({lineage['source']}{'; ' + lineage['note'] if 'note' in lineage else ''})")
    reference = Path(reference)
    if not reference.exists():
        raise ReviewOpsError(
            f"reference {reference} not found; run the retraining flow first "
            "(`python -m flows.retrain`) or pass a reference batch"
        )
    ref_df, ref_info = load_batch(reference, settings)
    cur_df, cur_info = load_batch(current, settings)
    scored_info: dict[str, Any] = {"source": "champion"}
    if scored is not None:
        cur_df, scored_info = attach_scored(cur_df, scored, scored_batch or name, log)
    predict_fn, summarize_len_fn, champion = champion_predictors(settings, log)
    result = run_drift(
        settings,
        reference=ref_df,
        current=cur_df,
        predict_fn=predict_fn,
        summarize_len_fn=summarize_len_fn,
        current_labels=scored_info.get("column"),
        name=name,
        track=True,
        log=log,
    )
    return {
        **result.to_dict(),
        "signals": result.summary["decision"]["signals"],
        "reference": {**ref_info, "path": str(reference), "lineage": lineage},
        "current": cur_info,
        "champion": champion,
        "predictions": {**result.summary["predictions"], "scored": scored_info},
    }
