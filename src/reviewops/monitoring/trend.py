"""Sentiment trend of a batch: negative-review share per product per period, alerts on jumps, timestamp coverage.

The labels come from the ratings (or a given ``label``) when the batch has them, else from the
predicted ``sentiment`` of the scored dataset (:mod:`reviewops.scoring.sources`); when a batch
has both, the trend and its alerts stay on the ratings and the predicted trend and the
agreement rate of the two are reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from reviewops.monitoring.jsonable import to_jsonable
from reviewops.schema import rating_to_label
from reviewops.scoring.sources import agreement, predicted_labels

TREND_ALL = "__all__"
TREND_COLUMNS = [
    "product_id",
    "period",
    "count",
    "negatives",
    "negative_share",
    "prev_count",
    "prev_negative_share",
    "change",
]
# Where the trend's labels come from: "auto" = the ratings (or ``label``), else the prediction.
Source = Literal["auto", "rating", "predicted"]
_SOURCE_NOTES = {
    "predicted": "no ratings in this batch: the trend and its alerts use the predicted sentiment",
    None: "no ratings and no predicted sentiment in this batch: the sentiment trend is off",
}


def labels_of(df: pd.DataFrame) -> pd.Series | None:
    """The sentiment label of each row: ``label`` when given, else derived from ``rating``; None without both."""
    if "label" in df.columns and df["label"].notna().any():
        return df["label"].astype(object).where(df["label"].notna(), None)
    if "rating" in df.columns:
        rating = pd.to_numeric(df["rating"], errors="coerce")
        return rating.map(lambda r: None if pd.isna(r) else rating_to_label(r))
    return None


def _rated(df: pd.DataFrame) -> tuple[pd.Series | None, str | None]:
    """The labels from ``label`` / ``rating`` and which of the two; ``(None, None)`` when every row lacks both."""
    labels = labels_of(df)
    if labels is None or not labels.notna().any():
        return None, None
    return labels, ("label" if "label" in df.columns and df["label"].notna().any() else "rating")


def trend_labels(df: pd.DataFrame, source: Source = "auto") -> tuple[pd.Series | None, str | None]:
    """The labels a trend counts and where they came from (``label``, ``rating``, ``predicted`` or None).

    ``auto`` takes the ratings (or ``label``) when any row has one, else the predicted
    ``sentiment`` column; ``rating`` and ``predicted`` take only that source.
    """
    if source != "predicted":
        labels, found = _rated(df)
        if labels is not None or source == "rating":
            return labels, found
    predicted = predicted_labels(df)
    return (predicted, "predicted") if predicted is not None else (None, None)


def sentiment_agreement(df: pd.DataFrame) -> dict[str, Any] | None:
    """Agreement of the rating's label (or ``label``) with the predicted sentiment; None unless a batch has both."""
    rated, _ = _rated(df)
    predicted = predicted_labels(df)
    if rated is None or predicted is None:
        return None
    return agreement(rated, predicted)


def trend_coverage(df: pd.DataFrame) -> dict[str, Any]:
    """How many rows can enter the time trend, the label source it uses, and a sentence when some (or all) cannot.

    Timestamps are optional (many exports have none): rows without one are left out of the
    trend, and the report says so instead of showing an empty trend as "no change". ``source``
    says where the labels came from (``label``, ``rating``, ``predicted``, None), ``agreement``
    compares ratings and predictions when the batch has both (:func:`sentiment_agreement`).
    """
    n = len(df)
    if "timestamp" in df.columns:
        ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601")
        timed = int(ts.notna().sum())
    else:
        timed = 0
    _, source = trend_labels(df)
    info: dict[str, Any] = {
        "rows_with_timestamp": timed,
        "rows_without_timestamp": n - timed,
        "note": None,
        "source": source,
        "source_note": _SOURCE_NOTES.get(source),
        "agreement": sentiment_agreement(df),
    }
    if n and timed == 0:
        info["note"] = "no row of this batch has a timestamp: the sentiment trend and its alerts are off"
    elif timed < n:
        info["note"] = f"{n - timed} of {n} rows have no timestamp and are left out of the sentiment trend"
    return info


def _negatives_per_period(df: pd.DataFrame, labels: pd.Series | None, freq: str) -> pd.DataFrame | None:
    """One row per timed, labelled review: ``product_id``, ``period`` start date and ``neg`` (0/1)."""
    if labels is None or "timestamp" not in df.columns or len(df) == 0:
        return None
    ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601")
    keep = ts.notna() & labels.notna()
    if not keep.any():
        return None
    period = ts[keep].dt.tz_localize(None).dt.to_period(freq).dt.start_time.dt.strftime("%Y-%m-%d")
    neg = (labels[keep] == "negative").astype(np.int64)
    product = (
        df.loc[keep, "product_id"].astype(str)
        if "product_id" in df.columns
        else pd.Series("unknown", index=period.index)
    )
    return pd.DataFrame({"product_id": product.to_numpy(), "period": period.to_numpy(), "neg": neg.to_numpy()})


def sentiment_trend(
    df: pd.DataFrame, freq: str = "W", threshold: float = 0.15, min_count: int = 20, source: Source = "auto"
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Negative-review share per product per period, and alerts on sudden jumps.

    Args:
        df: rows with ``product_id``, ``timestamp`` (ISO-8601) and ``label`` (or ``rating``, or
            the predicted ``sentiment``).
        freq: pandas period alias (``W`` = weeks starting Monday, ``D``, ``M``).
        threshold: alert when the negative share rises by more than this vs the product's
            previous period (the config's ``drift.negative_share_jump``).
        min_count: both periods need at least this many reviews, so 1-of-2 is not an alert.
        source: which labels (:func:`trend_labels`): ``auto`` (ratings, else predictions),
            ``rating`` or ``predicted``.

    Returns:
        ``trend`` (product_id, period, count, negatives, negative_share, prev_negative_share,
        change; product ``__all__`` is the whole batch) and the list of alert rows as dicts.
    """
    labels, used = trend_labels(df, source)
    frame = _negatives_per_period(df, labels, freq)
    if frame is None:
        return pd.DataFrame(columns=TREND_COLUMNS), []
    overall = frame.assign(product_id=TREND_ALL)
    grouped = (
        pd.concat([overall, frame], ignore_index=True)
        .groupby(["product_id", "period"], sort=True)["neg"]
        .agg(["size", "sum"])
        .reset_index()
        .rename(columns={"size": "count", "sum": "negatives"})
    )
    grouped["negative_share"] = grouped["negatives"] / grouped["count"]
    by_product = grouped.groupby("product_id", sort=False)
    grouped["prev_count"] = by_product["count"].shift(1)
    grouped["prev_negative_share"] = by_product["negative_share"].shift(1)
    grouped["change"] = grouped["negative_share"] - grouped["prev_negative_share"]
    trend = grouped[TREND_COLUMNS].reset_index(drop=True)
    hit = (trend["change"] > threshold) & (trend["count"] >= min_count) & (trend["prev_count"] >= min_count)
    alerts = [to_jsonable(row) for row in trend[hit].to_dict(orient="records")]
    for alert in alerts:
        alert["threshold"] = threshold
        alert["source"] = used
    return trend, alerts


@dataclass
class Trends:
    """The trend a report shows (ratings, else predictions) and, when a batch has both, the predicted one beside it."""

    source: str | None
    trend: pd.DataFrame
    alerts: list[dict[str, Any]]
    predicted: tuple[pd.DataFrame, list[dict[str, Any]]] | None
    agreement: dict[str, Any] | None


def sentiment_trends(df: pd.DataFrame, freq: str = "W", threshold: float = 0.15, min_count: int = 20) -> Trends:
    """:func:`sentiment_trend` on the batch's main labels, plus the predicted trend and the agreement when it has both.

    Args: as :func:`sentiment_trend`.
    """
    trend, alerts = sentiment_trend(df, freq, threshold, min_count)
    _, source = trend_labels(df)
    agreed = sentiment_agreement(df)
    predicted = sentiment_trend(df, freq, threshold, min_count, source="predicted") if agreed is not None else None
    return Trends(source=source, trend=trend, alerts=alerts, predicted=predicted, agreement=agreed)


def alerted_rows(trend: pd.DataFrame, alerts: list[dict[str, Any]]) -> pd.DataFrame:
    """The trend rows a report shows: the whole batch (``__all__``) and every product with an alert."""
    alerted = {a["product_id"] for a in alerts}
    return trend[(trend["product_id"] == TREND_ALL) | trend["product_id"].isin(alerted)]
