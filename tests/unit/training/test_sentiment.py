"""Sentiment fine-tuning: class weights, saved labels, summaries as extra training rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.schema import LABELS
from reviewops.training.sentiment import class_weights, train_sentiment
from tests.unit.training.helpers import quick_settings, synthetic_processed


def test_sentiment_uses_class_weights_and_saves_labels(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from transformers import AutoConfig

    df = synthetic_processed(40)
    skewed = pd.concat([df[df.label == "positive"]] * 3 + [df[df.label != "positive"]], ignore_index=True)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=2)
    result = train_sentiment(settings, skewed, df[32:], tmp_path / "out")
    assert result.metrics["train/class_weight_neutral"] > result.metrics["train/class_weight_positive"]
    config = AutoConfig.from_pretrained(result.model_dir)
    assert [config.id2label[i] for i in range(3)] == LABELS


def test_sentiment_can_also_train_on_summaries(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(40)
    df.loc[df.index[:5], "summary"] = ["", "  ", None, "Okay", "Bad"]
    n_summaries = int(df["summary"].astype("string").str.strip().fillna("").ne("").sum())
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=1)
    settings = settings.model_copy(
        update={"sentiment": settings.sentiment.model_copy(update={"augment_with_summaries": True, "pooling": "mean"})}
    )
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    assert result.n_train == len(df) + n_summaries  # every blank summary skipped, every other one added
    assert result.metrics["train/summary_rows_added"] == n_summaries
    config = json.loads((Path(result.model_dir) / "config.json").read_text())
    assert config["reviewops_pooling"] == "mean"  # recorded, so loading reads it the same way


def test_class_weights_are_balanced() -> None:
    weights = class_weights([0, 0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_allclose(weights, [8 / 12, 8 / 3, 8 / 9])
    assert class_weights([2, 2])[0] == 1.0  # absent classes keep weight 1
