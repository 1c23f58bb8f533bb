"""Product aggregates of an /analyze request: :func:`reviewops.scoring.product.summarize_product` per shared product."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from reviewops.serving.schemas import ReviewIn

logger = logging.getLogger(__name__)


def shared_products(reviews: list[ReviewIn]) -> OrderedDict[str, list[int]]:
    """Review indices per product id shared by at least two reviews, in order of first appearance."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for i, review in enumerate(reviews):
        if review.product_id:
            groups.setdefault(review.product_id, []).append(i)
    return OrderedDict((pid, idx) for pid, idx in groups.items() if len(idx) >= 2)


def product_aggregates(reviews: list[ReviewIn], summaries: list[str], labels: list[str]) -> list[dict[str, Any]]:
    """Product-level summaries for product ids shared by at least two reviews of the request.

    Args:
        reviews: the request's reviews.
        summaries: the summary of each review (same order).
        labels: the sentiment label of each review (same order).

    Returns:
        One :func:`~reviewops.scoring.product.summarize_product` dict per shared product id; a
        product whose aggregate fails is left out (logged): the per-review answer stays useful.
    """
    shared = shared_products(reviews)
    if not shared:
        return []
    # pandas only when a request has something to aggregate.
    import pandas as pd

    from reviewops.scoring.product import summarize_product

    out = []
    for pid, idx in shared.items():
        frame = pd.DataFrame(
            {
                "product_id": pid,
                "text": [reviews[i].text for i in idx],
                "summary": [summaries[i] for i in idx],
                "label": [labels[i] for i in idx],
                "rating": [reviews[i].rating if reviews[i].rating is not None else float("nan") for i in idx],
            }
        )
        try:
            out.append(summarize_product(frame))
        except Exception as exc:  # the per-review answer stays useful without the aggregate
            logger.warning("product aggregate for %s failed: %s", pid, exc)
    return out
