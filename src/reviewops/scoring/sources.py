"""Where a review's sentiment comes from for readers: its rating, the scored dataset's prediction, and their agreement.

The scored dataset (``reviewops score``) holds a predicted ``sentiment`` per review next to the
``rating`` when the input had one. Readers (the sentiment trend and its alerts, the product
summaries) use the rating when a batch has ratings, the prediction when it has none, and
report both with their agreement rate when both exist: a falling agreement says the model (or
the reviews) changed, before any rating-based metric can.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.schema import LABELS, rating_to_label

PREDICTED_COLUMN = "sentiment"


def rating_labels(df: pd.DataFrame) -> pd.Series | None:
    """The label of each row's ``rating`` (:func:`reviewops.schema.rating_to_label`); None without any rating."""
    if "rating" not in df.columns:
        return None
    rating = pd.to_numeric(df["rating"], errors="coerce")
    if not rating.notna().any():
        return None
    return rating.map(lambda r: None if pd.isna(r) else rating_to_label(float(r))).astype(object)


def predicted_labels(df: pd.DataFrame) -> pd.Series | None:
    """The predicted ``sentiment`` of each row (the scored dataset's column); None without any prediction."""
    if PREDICTED_COLUMN not in df.columns or not df[PREDICTED_COLUMN].notna().any():
        return None
    pred = df[PREDICTED_COLUMN].astype(object)
    return pred.where(pred.notna(), None)


def agreement(truth: pd.Series, predicted: pd.Series) -> dict[str, Any]:
    """How often the predicted label equals the rating's label, over the rows that have both.

    Args:
        truth: the labels from the ratings (None where a row has no rating).
        predicted: the predicted labels, same index.

    Returns:
        ``rate`` (None when no row has both), ``rows`` (rows with both), ``agree`` and
        ``by_label``: the agreement among the rows of each rating label (None for a label
        no row has).
    """
    both = truth.notna() & predicted.notna()
    t, p = truth[both].astype(str), predicted[both].astype(str)
    same = t == p
    by_label = {lab: (round(float(same[t == lab].mean()), 4) if (t == lab).any() else None) for lab in LABELS}
    rows = int(both.sum())
    return {
        "rate": round(float(same.mean()), 4) if rows else None,
        "rows": rows,
        "agree": int(same.sum()),
        "by_label": by_label,
    }


def read_scored_rows(out_dir: Path | str, batch: str | None = None, **filters: Any) -> pd.DataFrame:
    """The scored rows under ``out_dir`` (one batch, or all): :func:`reviewops.scoring.dataset.read_scored`.

    ``filters`` (``product_id``, ``start``, ``end``, ``columns``) are applied while reading.

    Raises:
        ReviewOpsError: no scored rows there (names the command that writes them).
    """
    from reviewops.scoring.dataset import read_scored

    out = Path(out_dir)
    rows = read_scored(out, batch=batch, **filters)
    if len(rows) == 0:
        which = f"batch {batch!r} " if batch else ""
        which += f"product {filters['product_id']!r} " if filters.get("product_id") is not None else ""
        raise ReviewOpsError(f"no scored rows for {which}under {out}; run `reviewops score PATH --out {out}` first")
    return rows
