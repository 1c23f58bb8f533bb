"""The request and response models of the API (and of the call from the API to the models service).

Their class names are the schema names in the OpenAPI document (``/docs.json``).
"""

from __future__ import annotations

from datetime import datetime
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
    summary_contradicts: bool = Field(
        description="the sentiment model reads the summary as the opposite of the review's predicted label "
        "(positive vs negative; neutral never counts): the summary says the opposite of the review"
    )
    truncated: bool


class AnalyzeResponse(BaseModel):
    reviews: list[ReviewOut]
    products: list[dict[str, Any]] = Field(
        description="reviewops.scoring.product.summarize_product for each product_id shared by 2+ reviews"
    )
    models: dict[str, ModelInfo]


class Phrase(BaseModel):
    """A recurring aspect phrase and how many reviews mention it."""

    phrase: str
    reviews: int


class SentimentMix(BaseModel):
    counts: dict[str, int] = Field(description="reviews per label (negative, neutral, positive)")
    shares: dict[str, float]


class Agreement(BaseModel):
    """How often the predicted sentiment equals the rating's label (reviewops.scoring.sources.agreement)."""

    rate: float | None = Field(description="over the reviews with both; None when none has both")
    rows: int = Field(description="reviews with a rating and a prediction")
    agree: int
    by_label: dict[str, float | None] = Field(description="agreement among the reviews of each rating label")


class ProductResponse(BaseModel):
    """GET /products/{product_id}: one product's aggregate over the scored dataset (serve.scored_dir).

    The fields of reviewops.scoring.product.summarize_product, plus where the rows came from.
    """

    product_id: str
    n_reviews: int = Field(description="scored reviews of the product, every batch")
    batches: list[str] = Field(description="the scored batches holding them")
    first_review_at: datetime | None = Field(description="earliest review timestamp (None without any)")
    last_review_at: datetime | None
    language: str = Field(description="the product's main language")
    label_source: Literal["rating", "predicted", "label", "model"] = Field(
        description="what sentiment_counts/shares count: the ratings when the reviews have any, "
        "else the predicted sentiment"
    )
    sentiment_counts: dict[str, int]
    sentiment_shares: dict[str, float] = Field(description="over the reviews whose label is known")
    average_rating: float | None
    predicted_sentiment: SentimentMix | None = Field(
        description="the predicted sentiment mix beside the ratings' (None unless the reviews have both)"
    )
    agreement: Agreement | None = Field(description="ratings vs predictions (None unless the reviews have both)")
    pros: list[Phrase]
    cons: list[Phrase]
    representative: dict[str, list[str]] = Field(description="typical review summaries per side")
    summary: str = Field(description="the condensed product summary, in the product's main language")
    summary_source: str = Field(description="'data' (the scored summaries, lead sentences where none) or 'lead'")


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
    reviews: list[ReviewIn],
    summaries: list[str],
    results: list[SentimentResult],
    truncated: list[int],
    summary_results: list[SentimentResult],
) -> list[ReviewOut]:
    """One :class:`ReviewOut` per review: its ids, summary, sentiment, whether the summary contradicts
    the review (:func:`reviewops.evaluation.faithfulness.contradicts` on the two predicted labels) and
    whether its text was cut."""
    from reviewops.evaluation.faithfulness import contradicts

    cut = set(truncated)
    return [
        ReviewOut(
            review_id=r.review_id,
            product_id=r.product_id,
            summary=s,
            summary_contradicts=contradicts(res.label, sres.label),
            truncated=i in cut,
            **res.model_dump(),
        )
        for i, (r, s, res, sres) in enumerate(zip(reviews, summaries, results, summary_results, strict=True))
    ]
