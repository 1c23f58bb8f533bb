"""Product aggregates (``summarize_product``): in an /analyze answer, and from the scored dataset.

:func:`product_aggregates` aggregates the reviews of one /analyze request per shared product id.
:func:`scored_product` aggregates every scored review of one product in ``serve.scored_dir``
(``reviewops score --out``), read with the product filter pushed down to Parquet, and
:func:`products_app` serves it as ``GET /products/{product_id}``: a small FastAPI app that
BentoML mounts beside the APIs (BentoML 1.4's own APIs are POST only), behind the same bearer
auth, with the same ``{"error", "status"}`` error bodies.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewops.serving.errors import RequestError, one_line
from reviewops.serving.schemas import ProductResponse, ReviewIn

if TYPE_CHECKING:
    import pandas as pd
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

PRODUCTS_MOUNT = "/products"
# The scored columns a product aggregate needs (probabilities and model names are not read).
_PRODUCT_COLUMNS = ["product_id", "batch", "timestamp", "rating", "text", "language", "sentiment", "summary"]


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


def scored_product(scored_dir: str, product_id: str) -> ProductResponse:
    """One product's aggregate over every batch of the scored dataset in ``scored_dir``.

    Raises:
        RequestError: 503 when ``scored_dir`` is empty (the feature is off), holds no scored
            batch or cannot be read; 404 when no scored review has this product id.
    """
    if not scored_dir.strip():
        raise RequestError(
            503,
            "product aggregates are off: serve.scored_dir is empty; set it to a scored dataset "
            "(`reviewops score PATH --out DIR`)",
        )
    if not product_id.strip():
        raise RequestError(404, "no product id: use GET /products/{product_id}")
    from reviewops.scoring.dataset import list_batches, read_scored

    root = Path(scored_dir)
    if not list_batches(root):
        raise RequestError(
            503,
            f"no scored dataset in serve.scored_dir ({scored_dir}); "
            f"write one with `reviewops score PATH --out {scored_dir}`",
        )
    try:
        rows = read_scored(root, product_id=product_id, columns=_PRODUCT_COLUMNS)
    except (OSError, ValueError) as exc:  # pyarrow's read errors are OSError / ValueError subclasses
        logger.error("reading product %r from %s failed: %s", product_id, root, one_line(exc))
        raise RequestError(503, f"the scored dataset in serve.scored_dir cannot be read: {one_line(exc)}") from exc
    if rows.empty:
        raise RequestError(404, f"no scored reviews for product {product_id!r} in serve.scored_dir")
    return product_response(rows)


def product_response(rows: pd.DataFrame) -> ProductResponse:
    """:func:`~reviewops.scoring.product.summarize_product` of one product's scored rows, with batches and time span."""
    from reviewops.scoring.product import summarize_product

    aggregate = summarize_product(rows)
    stamps = rows["timestamp"].dropna()
    return ProductResponse.model_validate(
        {
            **aggregate,
            "product_id": str(rows["product_id"].iloc[0]),
            "batches": sorted(str(b) for b in rows["batch"].dropna().unique()),
            "first_review_at": stamps.min().to_pydatetime() if len(stamps) else None,
            "last_review_at": stamps.max().to_pydatetime() if len(stamps) else None,
        }
    )


def products_app(scored_dir: Callable[[], str]) -> FastAPI:
    """The app BentoML mounts at :data:`PRODUCTS_MOUNT`: ``GET /products/{product_id}`` -> :class:`ProductResponse`.

    Args:
        scored_dir: returns ``serve.scored_dir`` when a request comes (read per request).
    """
    from fastapi import FastAPI
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    # No docs of its own: its path is in the service's /docs.json.
    app = FastAPI(title="products", docs_url=None, redoc_url=None, openapi_url=None)

    async def other_path(request: Request, exc: Exception) -> Any:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return RequestError(status, f"{request.method} {request.url.path}: use GET /products/{{product_id}}").response()

    app.add_exception_handler(HTTPException, other_path)

    @app.get(
        "/{product_id:path}",
        response_model=ProductResponse,
        tags=["Service APIs"],
        summary="One product's aggregate over the scored dataset",
    )
    def get_product(product_id: str) -> Any:
        """Review count, sentiment mix (ratings, else predictions), ratings-vs-predictions agreement,
        pros, cons and the condensed summary of one product, over every scored batch in
        serve.scored_dir. Read-only; runs in a worker thread (the event loop stays free).
        """
        try:
            return scored_product(scored_dir(), product_id)
        except RequestError as exc:
            return exc.response()

    return app
