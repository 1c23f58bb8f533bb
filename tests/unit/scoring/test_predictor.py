"""The predictor Ray's actors run, called in process: columns, probabilities, the summary sample, no state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewops.config import Settings
from reviewops.schema import LABELS
from reviewops.scoring.models import resolve_models
from reviewops.scoring.predictor import (
    PROBA_COLUMNS,
    SCORED_COLUMNS,
    ReviewPredictor,
    SampleCut,
    SummaryPlan,
    parse_summaries,
)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder

    root = tmp_path_factory.mktemp("tiny-score")
    return {"sentiment": build_tiny_encoder(root / "enc"), "summarizer": build_tiny_causal_lm(root / "lm")}


def _predictor(tiny_models, plan: SummaryPlan | None = None) -> ReviewPredictor:
    settings = Settings()
    models = resolve_models(
        settings, sentiment=tiny_models["sentiment"], summarizer=tiny_models["summarizer"], summaries="all"
    )
    return ReviewPredictor(settings=settings, models=models, plan=plan, keep=("_row",))


@pytest.fixture(scope="module")
def predictor(tiny_models) -> ReviewPredictor:
    return _predictor(tiny_models)


def _batch() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review_id": ["r1", "r2", "r3", "r4"],
            "product_id": ["p1", "p1", "p2", None],
            "batch": "b",
            "timestamp": ["2024-01-02T03:04:05Z", None, "2024-02-01T00:00:00Z", None],
            "rating": [5.0, None, 1.0, 3.0],
            "text": ["Great mouse, works well.", "电池很差，用了两天就坏了。", "Broke after a week.", "It is fine."],
            "language": ["en", None, "", "en"],
            "_row": [0, 1, 2, 3],
        }
    )


def test_parse_summaries():
    assert parse_summaries("none") == ("none", None)
    assert parse_summaries("all") == ("all", None)
    assert parse_summaries("sample:50") == ("sample", 50)


def test_sample_cut_picks_the_same_rows_however_the_batch_is_split():
    ids = pd.Series([f"R-{i:05d}" for i in range(1000)])
    whole = SampleCut("sample:25")
    whole.add(ids)
    pieces = SampleCut("sample:25")
    for chunk in (ids[700:], ids[:13], ids[13:700]):  # other sizes, other order
        pieces.add(chunk)
    assert whole.plan() == pieces.plan()
    chosen = whole.plan().select(ids)
    assert chosen.sum() == 25
    # independent of the rows a block holds: selecting block by block gives the same rows
    by_block = np.concatenate([whole.plan().select(ids[i : i + 97]) for i in range(0, 1000, 97)])
    assert (by_block == chosen).all()
    assert not (chosen[:25].all())  # spread over the batch, not the first 25


def test_plan_modes():
    ids = pd.Series(["a", "b", "c"])
    assert SummaryPlan("none").select(ids).tolist() == [False] * 3
    assert SummaryPlan("all").select(ids).tolist() == [True] * 3
    small = SampleCut("sample:5")
    small.add(ids)  # fewer rows than N: every row
    assert small.plan().cut is None and small.plan().select(ids).tolist() == [True] * 3
    assert SampleCut("none").plan().select(ids).tolist() == [False] * 3


def test_predictor_adds_every_prediction_column(predictor):
    out = predictor(_batch())
    assert list(out.columns) == [*SCORED_COLUMNS, "_row"]
    proba = out[PROBA_COLUMNS].to_numpy()
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert out["sentiment"].tolist() == [LABELS[i] for i in proba.argmax(axis=1)]
    # the given language is kept; a missing one is detected from the text
    assert out["language"].tolist() == ["en", "zh", "en", "en"]
    assert "UTC" in str(out["timestamp"].dtype)
    assert out["timestamp"].isna().tolist() == [False, True, False, True]
    assert out["sentiment_model"].nunique() == 1 and out["sentiment_version"].isna().all()
    assert out["_row"].tolist() == [0, 1, 2, 3]


def test_predictor_summarizes_only_the_sampled_rows(predictor, tiny_models):
    batch = _batch()
    assert predictor(batch)["summary"].notna().all()  # no plan: every row
    cut = SampleCut("sample:2")
    cut.add(batch["review_id"])
    sampled = _predictor(tiny_models, cut.plan())
    out2 = sampled(batch)
    assert out2["summary"].notna().sum() == 2
    assert out2["summary"].notna().tolist() == cut.plan().select(batch["review_id"]).tolist()
    assert all(isinstance(s, str) and s for s in out2["summary"].dropna())
    # a `summarize` column overrides the plan row by row
    forced = sampled(batch.assign(summarize=[False, False, False, True]))
    assert forced["summary"].notna().tolist() == [False, False, False, True]


def test_predictor_keeps_no_state_between_calls(predictor):
    batch = _batch()
    first = predictor(batch).drop(columns=["scored_at"])
    predictor(batch.iloc[2:].assign(text="Completely different text here."))
    again = predictor(batch).drop(columns=["scored_at"])
    pd.testing.assert_frame_equal(first, again)
    # one row alone gets the same prediction as in a batch (padding does not leak)
    alone = predictor(batch.iloc[[2]]).drop(columns=["scored_at"]).reset_index(drop=True)
    np.testing.assert_allclose(alone[PROBA_COLUMNS].to_numpy(), first.iloc[[2]][PROBA_COLUMNS].to_numpy(), atol=1e-5)


def test_predictor_without_a_summarizer(tiny_models):
    settings = Settings()
    models = resolve_models(settings, sentiment=tiny_models["sentiment"], summaries="none")
    assert models.summarizer is None
    out = ReviewPredictor(settings=settings, models=models)(_batch().drop(columns=["_row"]))
    assert out["summary"].isna().all() and out["summarizer_model"].isna().all()
    empty = ReviewPredictor(settings=settings, models=models)(_batch().iloc[0:0])
    assert list(empty.columns) == SCORED_COLUMNS and len(empty) == 0


def test_predictor_flags_summaries_that_contradict_the_review(predictor, tiny_models):
    from reviewops.evaluation.faithfulness import contradiction_flags

    out = predictor(_batch())
    read = predictor.classifier.predict(out["summary"].tolist())
    assert out["summary_contradicts"].tolist() == contradiction_flags(out["sentiment"].tolist(), read)
    forced = predictor(_batch().assign(summarize=[True, False, False, True]))
    assert forced["summary_contradicts"].isna().tolist() == [False, True, True, False]  # no summary, no flag
