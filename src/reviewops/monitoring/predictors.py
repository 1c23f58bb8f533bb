"""The predictions of the drift check: the champion's (sentiment labels, summary lengths) or the scored dataset's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.monitoring.common import Log, noop

if TYPE_CHECKING:
    import pandas as pd


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


def _not_joined(current: pd.DataFrame, info: dict[str, Any], problem: str, strict: bool, log: Log) -> tuple:
    """``current`` unchanged with the fallback note, or (``strict``) the problem as a one-line error."""
    if strict:
        raise ReviewOpsError(problem)
    info["note"] = f"{problem}: the champion predicts the current side"
    log(info["note"])
    return current, info


def attach_scored(
    current: pd.DataFrame, scored: Path | str, batch: str, log: Log = noop, *, strict: bool = False
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``current`` with the scored dataset's predicted ``sentiment`` joined by ``review_id``, and where it came from.

    The scored rows are ``<scored>/batch=<batch>`` (:func:`reviewops.scoring.sources.read_scored_rows`).
    When they cannot be read or none matches, ``current`` comes back unchanged and the info
    says so (``source: champion``, ``note``): the drift check then predicts as before. With
    ``strict`` (an operator named the dataset) that is an error instead.

    Returns:
        The frame and ``source`` (``scored dataset`` / ``champion``), ``path``, ``batch``,
        ``column`` (the joined column, absent on fallback), ``scored_rows``, ``matched``.

    Raises:
        ReviewOpsError: ``strict`` and no scored row could be joined (the message says why).
    """
    from reviewops.scoring.sources import PREDICTED_COLUMN, read_scored_rows

    info: dict[str, Any] = {"source": "champion", "path": str(scored), "batch": batch}
    try:
        rows = read_scored_rows(scored, batch)
    except (ReviewOpsError, OSError, ValueError) as exc:
        return _not_joined(current, info, f"scored rows not readable ({exc})", strict, log)
    if "review_id" not in current.columns or not {"review_id", PREDICTED_COLUMN} <= set(rows.columns):
        return _not_joined(current, info, "no review_id to join the scored rows on", strict, log)
    ids = rows["review_id"].astype(str)
    by_id = rows[PREDICTED_COLUMN].set_axis(ids)[~ids.duplicated().to_numpy()]
    joined = current.drop(columns=[PREDICTED_COLUMN], errors="ignore")
    joined[PREDICTED_COLUMN] = joined["review_id"].astype(str).map(by_id).to_numpy()
    matched = int(joined[PREDICTED_COLUMN].notna().sum())
    info.update(scored_rows=len(rows), matched=matched)
    if matched == 0:
        problem = f"no scored row matches the batch's review ids (batch {batch!r} in {scored})"
        return _not_joined(current, info, problem, strict, log)
    log(f"scored predictions: {matched} of {len(current)} rows matched in {scored} (batch={batch})")
    return joined, {**info, "source": "scored dataset", "column": PREDICTED_COLUMN}
