"""A small scored dataset as `reviewops score` writes it, for tests of the readers and GET /products."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reviewops.scoring.dataset import part_path, scored_table, write_parquet_atomic
from reviewops.scoring.predictor import SCORED_COLUMNS

DAY = pd.Timestamp("2025-03-03T09:00", tz="UTC")
# (review_id, product_id, batch, hour, rating, predicted sentiment, text)
SCORED_ROWS = [
    ("r1", "p1", "mon", 0, 5.0, "positive", "Great grinder, rich coffee and quiet motor"),
    ("r2", "p1", "mon", 1, 1.0, "negative", "Broken lid, the motor died after a week"),
    ("r3", "p2", "mon", 2, None, "positive", "Lovely mug, keeps tea hot"),
    ("r4", "p1", "mon", 3, 4.0, "negative", "Quiet motor but the lid cracked"),  # rating and prediction disagree
    ("r5", "p2", "tue", None, None, "positive", "Lovely mug, a good gift"),
    ("r6", "p1", "tue", 30, 2.0, "negative", "The lid leaks, motor too loud"),
    ("r7", "p2", "tue", 31, None, "neutral", "A mug, nothing special"),
]


def scored_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows shaped like :data:`SCORED_ROWS` as a frame with every scored column (summary = first clause)."""
    frame = pd.DataFrame(rows, columns=["review_id", "product_id", "batch", "hour", "rating", "sentiment", "text"])
    for col in SCORED_COLUMNS:
        if col not in frame:
            frame[col] = None
    frame["timestamp"] = [None if pd.isna(h) else DAY + pd.Timedelta(hours=h) for h in frame["hour"]]
    frame["language"] = "en"
    frame["summary"] = frame["text"].str.split(",").str[0]
    for col in ("p_negative", "p_neutral", "p_positive"):
        frame[col] = 1 / 3
    frame["scored_at"] = DAY
    return frame[SCORED_COLUMNS]


def write_scored(out: Path, rows: list[tuple] = SCORED_ROWS) -> Path:
    """``rows`` written to ``out`` as one part per batch (two batches by default: p1 rated, p2 not)."""
    frame = scored_frame(rows)
    for batch, part in frame.groupby("batch", sort=False):
        write_parquet_atomic(scored_table(part), part_path(out, str(batch), 0))
    return out
