"""The drift check's JSON summary: every number the decision, the HTML page, the CLI and MLflow read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from reviewops.monitoring.descriptors import NUMERIC_DESCRIPTORS
from reviewops.monitoring.jsonable import to_jsonable
from reviewops.monitoring.report import AllRowsReport, SampleReport
from reviewops.monitoring.sample import Samples
from reviewops.monitoring.trend import TREND_ALL, alerted_rows, trend_coverage

if TYPE_CHECKING:
    from reviewops.config import DriftConfig

EMBEDDING_METHOD = "domain classifier ROC-AUC on MiniLM embeddings (Evidently EmbeddingsDrift)"
DRIFTED_COLUMNS_SOURCE = "Evidently DriftedColumnsCount on all rows"


def drifted_columns_sentence(summary: Mapping[str, Any]) -> str:
    """The one wording of the drifted-column count: the page under the banner, the embedded all-rows
    group title, the workspace snapshot metadata and the MLflow tag ``drift.drifted_columns``.

    Example: ``8 of 10 columns drifted on all rows (share 0.80)``.
    """
    return (
        f"{summary['n_drifted']} of {summary['n_columns']} columns drifted on all rows "
        f"(share {summary['share_drifted']:.2f})"
    )


def _distribution(series: pd.Series) -> dict[str, float]:
    shares = series.value_counts(normalize=True)
    return {str(k): round(float(v), 4) for k, v in shares.items()}


def _sampling(cfg: DriftConfig, samples: Samples) -> dict[str, Any]:
    return {
        "sample_size": cfg.sample_size,
        "seed": cfg.seed,
        "reference_sampled": samples.reference_sampled,
        "current_sampled": samples.current_sampled,
        "note": samples.note,
    }


def _embedding(cfg: DriftConfig, samples: Samples, sample: SampleReport) -> dict[str, Any]:
    return {
        "score": sample.embedding_score,
        "threshold": sample.threshold,
        "configured_threshold": cfg.embedding_threshold,
        "noise_floor": sample.noise_floor,
        "method": EMBEDDING_METHOD,
        "model": str(cfg.embedding_model or "all-MiniLM-L6-v2 (packaged)"),
        "dim": len(samples.emb_cols),
    }


def _data_sections(descriptors: tuple[pd.DataFrame, pd.DataFrame], all_rows: AllRowsReport) -> dict[str, Any]:
    """``descriptors`` (means per side), ``distributions`` (category shares per side), ``new_categories``."""
    ref_desc, cur_desc = descriptors
    ref_tab, cur_tab, cat_cols = all_rows.reference, all_rows.current, all_rows.cat_cols
    return {
        "descriptors": {
            c: {"reference_mean": float(ref_desc[c].mean()), "current_mean": float(cur_desc[c].mean())}
            for c in NUMERIC_DESCRIPTORS
        },
        "distributions": {
            c: {"reference": _distribution(ref_tab[c]), "current": _distribution(cur_tab[c])} for c in cat_cols
        },
        "new_categories": (
            sorted(set(cur_tab["category"]) - set(ref_tab["category"])) if "category" in cat_cols else []
        ),
    }


def _trend_rows(trend: pd.DataFrame, trend_rows: pd.DataFrame, alerts: list) -> dict[str, Any]:
    return {
        "rows_total": len(trend),
        "rows": trend_rows.to_dict(orient="records"),
        "rows_note": f"'{TREND_ALL}' plus the products with alerts",
        "alerts": alerts,
    }


def _trend(
    cfg: DriftConfig,
    current: pd.DataFrame,
    trend: pd.DataFrame,
    trend_rows: pd.DataFrame,
    alerts: list,
    predicted: tuple[pd.DataFrame, list] | None = None,
) -> dict[str, Any]:
    """The trend section: coverage, label ``source``, ``agreement``; ``predicted`` when a batch has both sources."""
    return {
        "freq": "W",
        "threshold": cfg.negative_share_jump,
        "min_count": cfg.min_period_count,
        **trend_coverage(current),
        **_trend_rows(trend, trend_rows, alerts),
        "predicted": None if predicted is None else _trend_rows(predicted[0], alerted_rows(*predicted), predicted[1]),
    }


def build_summary(
    cfg: DriftConfig,
    *,
    name: str,
    created: datetime,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    descriptors: tuple[pd.DataFrame, pd.DataFrame],
    all_rows: AllRowsReport,
    samples: Samples,
    sample: SampleReport,
    trend: tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]],
    predicted_trend: tuple[pd.DataFrame, list[dict[str, Any]]] | None = None,
    predictions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-ready summary of one check (before the decision and the output paths are added).

    Args:
        cfg: the ``drift`` settings.
        name: the report name; created: when the check started.
        frames: the reference and current rows.
        descriptors: their descriptors.
        all_rows: the all-rows report; samples / sample: the samples and their report.
        trend: the whole trend, the rows shown (overall + alerted products) and the alerts.
        predicted_trend: the trend and alerts on the predicted sentiment, when the batch has
            ratings and predictions both (:class:`reviewops.monitoring.trend.Trends`).
        predictions: where each side's predicted sentiment came from (``reference``, ``current``).
    """
    counted = set(all_rows.drifted["columns"])
    columns = {col: {**res, "counted": col in counted} for col, res in {**all_rows.columns, **sample.columns}.items()}
    skipped = sample.text_skipped
    summary: dict[str, Any] = {
        "name": name,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reference": {"rows": len(frames[0])},
        "current": {"rows": len(frames[1])},
        "sampling": _sampling(cfg, samples),
        "columns": columns,
        # One count of drifted columns, Evidently's (all rows); the sample's columns (text,
        # predictions) have their own signals (embedding, prediction_shift) and are not in it.
        "n_columns": len(counted),
        "n_drifted": all_rows.drifted["count"],
        "share_drifted": all_rows.drifted["share"],
        "share_drifted_source": DRIFTED_COLUMNS_SOURCE,
        "embedding": _embedding(cfg, samples, sample),
        "text_drift": {"skipped": skipped} if skipped else {"column": "text", **columns.get("text", {})},
        **_data_sections(descriptors, all_rows),
        "trend": _trend(cfg, frames[1], *trend, predicted=predicted_trend),
        "predictions": predictions or {"reference": None, "current": None},
    }
    return to_jsonable(summary)
