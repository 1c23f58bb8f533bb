"""The drift decision (pure): each signal against its threshold, and the embedding threshold's noise floor."""

from __future__ import annotations

import pytest

from reviewops.config import DriftConfig
from reviewops.monitoring.decision import auc_noise_floor, decide_drift, embedding_threshold


def _summary(**over):
    base = {
        "share_drifted": 0.1,
        "n_drifted": 1,
        "n_columns": 10,
        "embedding": {"score": 0.52, "noise_floor": 0.53},
        "columns": {"label": {"score": 0.02}, "language": {"score": 0.01}, "category": {"score": 0.03}},
        "trend": {"alerts": []},
    }
    base.update(over)
    return base


def test_decide_drift_clean_batch():
    decision = decide_drift(_summary(), DriftConfig())
    assert not decision.drifted and decision.fired == []
    signals = {s.name: s for s in decision.signals}
    assert signals["share_drifted"].threshold == 0.3 and signals["share_drifted"].score == 0.1
    assert signals["embedding"].threshold == 0.55  # floor 0.53 is below the configured threshold
    assert signals["prediction_shift"].score is None and not signals["prediction_shift"].fired
    assert decision.reason == "no drift signal fired"


def test_decide_drift_fires_each_signal_against_its_threshold():
    summary = _summary(
        share_drifted=0.5,
        embedding={"score": 0.7, "noise_floor": 0.53},
        columns={
            "label": {"score": 0.25},
            "language": {"score": 0.3},
            "category": {"score": 0.05},
            "pred_sentiment": {"score": 0.2},
        },
        trend={"alerts": [{"product_id": "P1"}]},
    )
    decision = decide_drift(summary, DriftConfig())
    assert decision.drifted
    assert decision.fired == ["share_drifted", "embedding", "label_shift", "prediction_shift", "language_shift"]
    assert len(decision.alerts) == 1 and decision.to_dict()["trend_alerts"] == 1
    strict = decide_drift(
        summary,
        DriftConfig(
            share_drifted_threshold=0.6, label_shift_threshold=0.3, segment_shift_threshold=0.5, embedding_threshold=0.8
        ),
    )
    assert not strict.drifted


def test_embedding_threshold_rises_to_chance_level_for_small_samples():
    assert auc_noise_floor(2000, 2000) < 0.55 < auc_noise_floor(200, 200)
    small = decide_drift(_summary(embedding={"score": 0.58, "noise_floor": auc_noise_floor(200, 200)}), DriftConfig())
    assert not small.drifted
    emb = next(s for s in small.signals if s.name == "embedding")
    assert emb.threshold == pytest.approx(auc_noise_floor(200, 200))


def test_embedding_threshold_is_the_configured_one_or_the_noise_floor():
    cfg = DriftConfig(embedding_threshold=0.6)
    assert embedding_threshold(cfg, None) == 0.6
    assert embedding_threshold(cfg, 0.53) == 0.6
    assert embedding_threshold(cfg, 0.7) == 0.7
