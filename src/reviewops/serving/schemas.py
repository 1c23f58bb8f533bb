"""The request and response models of the API (and of the call from the API to the models service).

Their class names are the schema names in the OpenAPI document (``/docs.json``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reviewops.schema import LABELS


class ModelInfo(BaseModel):
    """Which model produced an answer."""

    name: str
    version: str
    source: str = Field(description="'bentoml' (model store) or 'dir' (REVIEWOPS_*_DIR override)")
    tag: str | None = None
    mlflow_run_id: str | None = None


class SummarizeItem(BaseModel):
    """One text for :meth:`ReviewModels.summarize_batch`, with what it takes to stop working on it."""

    text: str
    request_id: str = Field("", description="the API request it belongs to (for ReviewModels.cancel)")
    deadline: float | None = Field(None, description="Unix time after which nobody waits for the summary")


class SentimentResult(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(description="probability of the label")
    probabilities: dict[str, float] = Field(description="one entry per label (negative, neutral, positive)")


class SummarizeResponse(BaseModel):
    summaries: list[str]
    truncated: list[int] = Field(description="indices of inputs cut to serve.max_text_chars")
    model: ModelInfo


class SentimentResponse(BaseModel):
    results: list[SentimentResult]
    truncated: list[int]
    model: ModelInfo


class ReviewIn(BaseModel):
    """One review for /analyze."""

    model_config = ConfigDict(extra="forbid")

    text: str
    review_id: str | None = None
    product_id: str | None = None
    rating: float | None = Field(None, ge=1, le=5)


class ReviewOut(SentimentResult):
    review_id: str | None
    product_id: str | None
    summary: str
    truncated: bool


class AnalyzeResponse(BaseModel):
    reviews: list[ReviewOut]
    products: list[dict[str, Any]] = Field(
        description="reviewops.scoring.product.summarize_product for each product_id shared by 2+ reviews"
    )
    models: dict[str, ModelInfo]


def sentiment_results(proba: list[list[float]]) -> list[SentimentResult]:
    """Label, score and named probabilities from rows in ``schema.LABELS`` order."""
    out = []
    for row in proba:
        best = max(range(len(LABELS)), key=lambda i: row[i])
        out.append(
            SentimentResult(
                label=LABELS[best],
                score=round(float(row[best]), 6),
                probabilities={lab: round(float(p), 6) for lab, p in zip(LABELS, row, strict=True)},
            )
        )
    return out


def analyze_results(
    reviews: list[ReviewIn], summaries: list[str], results: list[SentimentResult], truncated: list[int]
) -> list[ReviewOut]:
    """One :class:`ReviewOut` per review: its ids, summary, sentiment and whether its text was cut."""
    cut = set(truncated)
    return [
        ReviewOut(review_id=r.review_id, product_id=r.product_id, summary=s, truncated=i in cut, **res.model_dump())
        for i, (r, s, res) in enumerate(zip(reviews, summaries, results, strict=True))
    ]
