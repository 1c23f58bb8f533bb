"""The drift decision and every threshold behind it: column rules, the effective embedding threshold, the signals.

This is the one place that turns ``drift.*_threshold`` settings into thresholds: the Evidently
reports take their column rules and embedding threshold from here, and :func:`decide_drift`
compares the summary's scores with the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reviewops.config import DriftConfig


@dataclass(frozen=True)
class Signal:
    """One drift signal: its score, the threshold it is compared with, and whether it fired."""

    name: str
    score: float | None
    threshold: float
    fired: bool
    detail: str = ""


@dataclass(frozen=True)
class DriftDecision:
    """The verdict of :func:`decide_drift` with every number behind it."""

    drifted: bool
    signals: list[Signal]
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fired(self) -> list[str]:
        """Names of the signals that fired."""
        return [s.name for s in self.signals if s.fired]

    @property
    def reason(self) -> str:
        """One line: which signals fired with their scores, or that none did."""
        if not self.drifted:
            return "no drift signal fired"
        return "; ".join(f"{s.name} {s.score:.3f} (threshold {s.threshold:.3g})" for s in self.signals if s.fired)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used in the summary, the CLI and MLflow)."""
        return {
            "drifted": self.drifted,
            "fired": self.fired,
            "reason": self.reason,
            "signals": [s.__dict__.copy() for s in self.signals],
            "trend_alerts": len(self.alerts),
        }


@dataclass(frozen=True)
class ColumnRules:
    """How each column is tested for drift, and what share of drifted columns drifts the batch.

    Column drift uses *distance* tests with fixed thresholds (normed Wasserstein for numbers,
    Jensen-Shannon for categories) instead of Evidently's size-dependent defaults: p-value tests
    flag any trivial difference at 1M rows, and a test that changes with batch size makes
    thresholds meaningless.
    """

    num_method: str
    cat_method: str
    threshold: float  # a column drifted when its distance >= this
    share_drifted: float  # the batch drifted when at least this share of its columns drifted


def column_rules(cfg: DriftConfig) -> ColumnRules:
    """The column tests of ``drift``: methods, column threshold and drifted-share threshold."""
    return ColumnRules(
        num_method=cfg.num_method,
        cat_method=cfg.cat_method,
        threshold=cfg.column_threshold,
        share_drifted=cfg.share_drifted_threshold,
    )


def auc_noise_floor(n_reference: int, n_current: int, z: float = 2.326) -> float:
    """ROC-AUC a domain classifier reaches by chance (one-sided 99%) on a 50/50 test split.

    Under "no drift" the held-out scores are independent of the labels, so the AUC follows the
    Mann-Whitney null: mean 0.5, sd ``sqrt((n1 + n2 + 1) / (12 n1 n2))``. At 2,000 rows per side
    this is ~0.53 (below the 0.55 default); at 200 per side it is ~0.62, and a fixed 0.55 would
    fire on noise. The effective threshold is :func:`embedding_threshold`.
    """
    n1, n2 = max(n_reference // 2, 1), max(n_current // 2, 1)
    return 0.5 + z * math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))


def embedding_threshold(cfg: DriftConfig, noise_floor: float | None) -> float:
    """The effective embedding (and text) AUC threshold: ``max(embedding_threshold, noise_floor)``.

    Args:
        cfg: the ``drift`` settings.
        noise_floor: :func:`auc_noise_floor` of the sample sizes; None keeps the configured threshold.
    """
    if noise_floor is None:
        return cfg.embedding_threshold
    return max(cfg.embedding_threshold, float(noise_floor))


def _column_score(summary: Mapping[str, Any], column: str) -> float | None:
    col = (summary.get("columns") or {}).get(column)
    return None if col is None or col.get("score") is None else float(col["score"])


def _embedding_spec(summary: Mapping[str, Any], cfg: DriftConfig) -> tuple[str, float | None, float, bool, str]:
    emb = summary.get("embedding") or {}
    floor = emb.get("noise_floor")
    detail = "MiniLM domain-classifier ROC-AUC" + (
        f" (threshold raised to the chance level {floor:.3f} of this sample size)"
        if floor is not None and floor > cfg.embedding_threshold
        else ""
    )
    return ("embedding", emb.get("score"), embedding_threshold(cfg, floor), True, detail)


def _signal_specs(summary: Mapping[str, Any], cfg: DriftConfig) -> list[tuple[str, float | None, float, bool, str]]:
    """``(name, score, threshold, strict, detail)`` of each signal; ``strict`` fires on ``>``, else ``>=``."""
    drifted_columns = f"{summary.get('n_drifted', '?')} of {summary.get('n_columns', '?')} columns drifted"
    return [
        ("share_drifted", summary.get("share_drifted"), cfg.share_drifted_threshold, False, drifted_columns),
        _embedding_spec(summary, cfg),
        (
            "label_shift",
            _column_score(summary, "label"),
            cfg.label_shift_threshold,
            False,
            "Jensen-Shannon distance of labels",
        ),
        (
            "prediction_shift",
            _column_score(summary, "pred_sentiment"),
            cfg.label_shift_threshold,
            False,
            "Jensen-Shannon distance of predicted sentiment",
        ),
        (
            "language_shift",
            _column_score(summary, "language"),
            cfg.segment_shift_threshold,
            False,
            "Jensen-Shannon distance of languages",
        ),
        (
            "category_shift",
            _column_score(summary, "category"),
            cfg.segment_shift_threshold,
            False,
            "Jensen-Shannon distance of categories",
        ),
    ]


def decide_drift(summary: Mapping[str, Any], cfg: DriftConfig) -> DriftDecision:
    """Decide whether a batch drifted, from a drift summary and the thresholds.

    Signals (a missing score never fires):

    * ``share_drifted`` — Evidently's share of drifted columns on all rows (the five descriptors,
      language, detected language, category, label, rating; the sample's text and prediction
      columns have their own signals) ``>= share_drifted_threshold``;
    * ``embedding`` — MiniLM domain-classifier ROC-AUC ``> embedding_threshold``, raised to the
      summary's ``embedding.noise_floor`` (chance AUC at that sample size, :func:`auc_noise_floor`);
    * ``label_shift`` — Jensen-Shannon distance of the label distribution
      ``>= label_shift_threshold`` (target drift);
    * ``prediction_shift`` — same on the champion's predicted sentiment;
    * ``language_shift`` / ``category_shift`` — Jensen-Shannon distance ``>= segment_shift_threshold``.

    Sentiment-trend alerts are reported alongside but do not make a batch "drifted": a product
    getting worse reviews is a business alert, not a reason to retrain.

    Args:
        summary: the summary :func:`reviewops.monitoring.drift.run_drift` writes (``columns``,
            ``share_drifted``, ``embedding``, ``trend``…).
        cfg: the ``drift`` settings.
    """
    signals = []
    for name, score, threshold, strict, detail in _signal_specs(summary, cfg):
        if score is None or (isinstance(score, float) and math.isnan(score)):
            signals.append(Signal(name, None, threshold, False, detail + " (not measured)"))
            continue
        fired = score > threshold if strict else score >= threshold
        signals.append(Signal(name, float(score), threshold, bool(fired), detail))
    alerts = list((summary.get("trend") or {}).get("alerts") or [])
    return DriftDecision(drifted=any(s.fired for s in signals), signals=signals, alerts=alerts)
