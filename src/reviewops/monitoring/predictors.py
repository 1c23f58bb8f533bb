"""The champion's predictions for the drift check: sentiment labels and summary lengths, or none without a champion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.common import Log, noop


def champion_model_dir(settings: Settings, registered_name: str, trained_subdir: str) -> Path | None:
    """The champion's HF directory: registry ``@champion``, else ``<models_dir>/trained/<subdir>``, else None."""
    from reviewops.registry.registry import champion_dir

    try:
        found = champion_dir(registered_name)
    except ReviewOpsError:
        found = None
    if found is not None:
        return found
    trained = Path(settings.paths.models_dir) / "trained" / trained_subdir
    return trained if (trained / "config.json").is_file() else None


def _sentiment_predictor(settings: Settings, log: Log) -> tuple[Callable | None, str | None]:
    sent_dir = champion_model_dir(settings, settings.gate.sentiment_name, "sentiment")
    if sent_dir is None:
        return None, None
    from reviewops.models.sentiment import SentimentClassifier

    log(f"champion sentiment model: {sent_dir}")
    clf = SentimentClassifier.load(sent_dir, settings.sentiment)
    return (lambda texts: list(clf.predict(list(texts)))), str(sent_dir)


def _summary_length_predictor(settings: Settings, log: Log) -> tuple[Callable | None, str | None]:
    sum_dir = champion_model_dir(settings, settings.gate.summarizer_name, "summarizer")
    if sum_dir is None:
        return None, None
    from reviewops.models.summarizer import Summarizer

    log(f"champion summarizer: {sum_dir}")
    summarizer = Summarizer.load(sum_dir, settings.summarizer)
    bs = settings.evaluate.batch_size
    return (lambda texts: summarizer.summarize(list(texts), batch_size=bs)), str(sum_dir)


def champion_predictors(settings: Settings, log: Log = noop) -> tuple[Callable | None, Callable | None, dict[str, Any]]:
    """``(predict_fn, summarize_len_fn, info)`` of the champion for the drift check.

    ``drift.champion_predictions`` picks what runs: ``sentiment`` (labels on the drift samples),
    ``all`` (plus summary lengths: one generation per sampled text) or ``none``. Without a
    champion (registry alias, or a trained model on disk) both are None: the check still runs
    on the data alone.
    """
    from reviewops.registry.tracking import configure_mlflow

    mode = settings.drift.champion_predictions
    info: dict[str, Any] = {"mode": mode, "sentiment": None, "summarizer": None}
    if mode == "none":
        return None, None, info
    configure_mlflow(settings)
    predict_fn, info["sentiment"] = _sentiment_predictor(settings, log)
    summarize_len_fn = None
    if mode == "all":
        summarize_len_fn, info["summarizer"] = _summary_length_predictor(settings, log)
    return predict_fn, summarize_len_fn, info
