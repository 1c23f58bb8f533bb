"""The drift check's predictions: the scored dataset's sentiment joined to a batch, and read back on the sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reviewops.monitoring.predictors import attach_scored
from reviewops.monitoring.sample import scored_predictor


def _write_scored(out_dir: Path, batch: str, rows: pd.DataFrame) -> None:
    """A hand-made scored dataset: ``<out_dir>/batch=<batch>/part-00000.parquet`` (the engine's layout)."""
    folder = out_dir / f"batch={batch}"
    folder.mkdir(parents=True)
    rows.assign(batch=batch).to_parquet(folder / "part-00000.parquet", index=False)


def test_attach_scored_joins_predictions_by_review_id(tmp_path):
    _write_scored(
        tmp_path,
        "b1",
        pd.DataFrame({"review_id": ["r3", "r1", "r1"], "sentiment": ["negative", "positive", "positive"]}),
    )
    current = pd.DataFrame({"review_id": ["r1", "r2", "r3"], "text": ["good", "meh", "bad"], "rating": [5, 3, 1]})
    logs: list[str] = []
    joined, info = attach_scored(current, tmp_path, "b1", logs.append)
    assert joined["sentiment"].fillna("none").tolist() == ["positive", "none", "negative"]
    assert info == {
        "source": "scored dataset",
        "path": str(tmp_path),
        "batch": "b1",
        "column": "sentiment",
        "scored_rows": 3,
        "matched": 2,
    }
    assert "sentiment" not in current.columns  # the caller's frame is left alone
    assert logs and "2 of 3 rows matched" in logs[0]


def test_attach_scored_falls_back_to_the_champion(tmp_path):
    current = pd.DataFrame({"review_id": ["r1"], "text": ["good"]})
    same, info = attach_scored(current, tmp_path, "missing")
    assert same is current and info["source"] == "champion" and "not readable" in info["note"]
    _write_scored(tmp_path, "b2", pd.DataFrame({"review_id": ["x"], "sentiment": ["neutral"]}))
    same, info = attach_scored(current, tmp_path, "b2")
    assert same is current and info["matched"] == 0 and "no scored row matches" in info["note"]


def test_scored_predictor_reads_labels_and_fills_gaps_with_the_champion():
    predict = scored_predictor(pd.Series(["negative", None, "positive"]), lambda texts: ["neutral"] * len(texts))
    assert predict(["a", "b", "c"]) == ["negative", "neutral", "positive"]
    assert scored_predictor(pd.Series([None, "positive"]), None)(["a", "b"]) == ["missing", "positive"]
