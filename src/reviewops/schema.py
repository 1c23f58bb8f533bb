"""The canonical review schema every stage speaks, and the sentiment label mapping."""

from __future__ import annotations

# Column order of a canonical batch. ``summary`` is optional (inference-only batches);
# ``timestamp`` is optional (many exports have none: trends then say so); ``category`` is
# optional (drift and slices use it when present).
CANONICAL_COLUMNS = ["review_id", "product_id", "text", "summary", "rating", "timestamp", "language"]
REQUIRED_COLUMNS = ["review_id", "product_id", "text", "rating", "language"]
OPTIONAL_COLUMNS = ["summary", "timestamp", "category"]

LABELS = ["negative", "neutral", "positive"]
LABEL2ID = {name: i for i, name in enumerate(LABELS)}


def rating_to_label(rating: float) -> str:
    """Map a 1–5 star rating to a sentiment label (1–2 negative, 3 neutral, 4–5 positive)."""
    if rating <= 2:
        return "negative"
    if rating < 4:
        return "neutral"
    return "positive"
