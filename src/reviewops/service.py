"""BentoML 1.4 service: review summaries, sentiment and product aggregates over the champion models.

Two services, the pattern BentoML documents for adaptive batching behind a request API:

* :class:`ReviewModels` loads both models once (``__init__``) and exposes two batchable
  endpoints, ``summarize_batch`` and ``sentiment_batch`` (``list[str]`` in, one result per
  text out). BentoML's dispatcher merges concurrent calls into one model call of at most
  ``serve.max_batch_size`` / ``serve.summarizer_max_batch_size`` texts.
* :class:`ReviewAnalyzer` is the public API (``/summarize``, ``/sentiment``, ``/analyze``):
  it validates and limits input, calls :class:`ReviewModels` through ``bentoml.depends`` and
  shapes the answer, including the versions of the models that produced it. BentoML adds
  ``/healthz`` (``/livez``), ``/readyz`` (503 until the models service is up and loaded),
  ``/metrics`` (Prometheus), and the OpenAPI page ``/`` + ``/docs.json``.

Under ``bentoml serve`` the models service runs in its own process; instantiated in-process
(``ReviewAnalyzer()`` or ``ReviewAnalyzer.to_asgi()``), the dependency is a local instance
and is called directly (no batching).

Model source: BentoML models ``serve.summarizer_tag`` / ``serve.sentiment_tag``
(``review-summarizer:latest``…, created by ``reviewops package`` from the MLflow champions;
``REVIEWOPS_SUMMARIZER_TAG`` / ``REVIEWOPS_SENTIMENT_TAG`` override), or plain local
Hugging Face directories from ``REVIEWOPS_SUMMARIZER_DIR`` / ``REVIEWOPS_SENTIMENT_DIR``.
``REVIEWOPS_BATCHING=0`` turns adaptive batching off (read at import: batching is part of
the endpoint definition). With ``$REVIEWOPS_API_TOKEN`` (``serve.auth_token_env``) set,
every path except ``/healthz``, ``/livez`` and ``/readyz`` needs ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import bentoml
from pydantic import BaseModel, ConfigDict, Field

from reviewops.config import SentimentConfig, Settings, SummarizerConfig, load_settings
from reviewops.schema import LABELS
from reviewops.text import has_visible_text

logger = logging.getLogger("reviewops.service")

SUMMARIZER_DIR_ENV = "REVIEWOPS_SUMMARIZER_DIR"
SENTIMENT_DIR_ENV = "REVIEWOPS_SENTIMENT_DIR"
SUMMARIZER_TAG_ENV = "REVIEWOPS_SUMMARIZER_TAG"
SENTIMENT_TAG_ENV = "REVIEWOPS_SENTIMENT_TAG"
BATCHING_ENV = "REVIEWOPS_BATCHING"
# Written by `reviewops package` next to the HF files: the settings section the model was logged with.
CONFIG_FILE = "reviewops_config.json"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


# The service module is the process edge: BentoML needs the batching knobs when the class is
# defined, so settings are read here (params.yaml in the working directory or $REVIEWOPS_PARAMS;
# the built-in defaults, identical to params.yaml, when there is none, e.g. inside a Bento).
SETTINGS: Settings = load_settings()
SERVE = SETTINGS.serve
BATCHING: bool = _flag(os.environ[BATCHING_ENV]) if BATCHING_ENV in os.environ else SERVE.batching


# --------------------------------------------------------------------------- request limits


class RequestError(Exception):
    """A client error answered with ``{"error": message, "status": code}`` and no traceback."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": self.message, "status": self.status}, status_code=self.status)


def check_texts(texts: list[str], max_items: int, max_chars: int,
                on_too_long: Literal["truncate", "reject"]) -> tuple[list[str], list[int]]:
    """Apply the request limits; returns the texts to model and the indices that were truncated.

    Raises:
        RequestError: 422 for no items or an empty text (nothing visible: only whitespace,
            control or zero-width characters, see :func:`reviewops.text.has_visible_text`), 413
            for too many items or (with ``on_too_long="reject"``) a text over ``max_chars``.
    """
    if not texts:
        raise RequestError(422, "no reviews given: send `text` (one review) or `texts` (a list)")
    if len(texts) > max_items:
        raise RequestError(413, f"{len(texts)} reviews in one request; the limit is {max_items} "
                                "(serve.max_items): split the request")
    out: list[str] = []
    truncated: list[int] = []
    for i, text in enumerate(texts):
        # Whitespace, NULs and zero-width/format characters only: nothing a model could read.
        if not has_visible_text(text):
            raise RequestError(422, f"review {i} is empty (no visible characters)")
        if len(text) > max_chars:
            if on_too_long == "reject":
                raise RequestError(413, f"review {i} has {len(text)} characters; the limit is {max_chars} "
                                        "(serve.max_text_chars)")
            text = text[:max_chars]
            truncated.append(i)
        out.append(text)
    return out, truncated


def _one_or_many(text: str | None, texts: list[str] | None) -> list[str]:
    if text is not None and texts is not None:
        raise RequestError(422, "send either `text` or `texts`, not both")
    if text is not None:
        return [text]
    return list(texts or [])


# --------------------------------------------------------------------------- models service


class ModelInfo(BaseModel):
    """Which model produced an answer."""

    name: str
    version: str
    source: str = Field(description="'bentoml' (model store) or 'dir' (REVIEWOPS_*_DIR override)")
    tag: str | None = None
    mlflow_run_id: str | None = None


def _read_section(directory: Path, cls: type[BaseModel], fallback: BaseModel) -> Any:
    """The settings section stored beside the model by `reviewops package`, else ``fallback``."""
    path = directory / CONFIG_FILE
    if path.is_file():
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except Exception as exc:  # an old/foreign config must not stop serving
            logger.warning("ignoring %s (%s); using params.yaml settings", path, exc)
    return fallback


def _stored_info(stored: Any) -> ModelInfo:
    labels = dict(stored.info.labels or {})
    return ModelInfo(name=labels.get("mlflow_model_name", stored.tag.name),
                     version=labels.get("mlflow_version", str(stored.tag.version)),
                     source="bentoml", tag=str(stored.tag), mlflow_run_id=labels.get("mlflow_run_id"))


_OVERRIDE_DIRS = bool(os.environ.get(SUMMARIZER_DIR_ENV) and os.environ.get(SENTIMENT_DIR_ENV))


@bentoml.service(name="review_models", workers=1, threads=2, traffic={"timeout": SERVE.timeout_s})
class ReviewModels:
    """Both models, loaded once; batchable endpoints called by :class:`ReviewAnalyzer`."""

    if not _OVERRIDE_DIRS:
        # Referenced so `bentoml build` bundles them; resolved only when no override dir is set.
        summarizer_ref = bentoml.models.BentoModel(os.environ.get(SUMMARIZER_TAG_ENV) or SERVE.summarizer_tag)
        sentiment_ref = bentoml.models.BentoModel(os.environ.get(SENTIMENT_TAG_ENV) or SERVE.sentiment_tag)

    def __init__(self) -> None:
        from reviewops.models.sentiment import SentimentClassifier
        from reviewops.models.summarizer import Summarizer

        self.ready = False
        sum_dir, self.summarizer_info = self._resolve(SUMMARIZER_DIR_ENV, "summarizer_ref")
        sent_dir, self.sentiment_info = self._resolve(SENTIMENT_DIR_ENV, "sentiment_ref")
        sum_cfg = _read_section(sum_dir, SummarizerConfig, SETTINGS.summarizer)
        sent_cfg = _read_section(sent_dir, SentimentConfig, SETTINGS.sentiment)
        logger.info("loading summarizer %s and sentiment %s", sum_dir, sent_dir)
        self.summarizer = Summarizer.load(sum_dir, sum_cfg)
        self.classifier = SentimentClassifier.load(sent_dir, sent_cfg)
        self.ready = True

    def _resolve(self, env: str, ref_attr: str) -> tuple[Path, ModelInfo]:
        override = os.environ.get(env)
        if override:
            path = Path(override).expanduser().resolve()
            if not (path / "config.json").is_file():
                raise RuntimeError(f"{env}={override} is not a Hugging Face model directory (no config.json)")
            return path, ModelInfo(name=path.name, version="local", source="dir")
        ref = getattr(type(self), ref_attr, None)
        if ref is None:
            raise RuntimeError(f"set both {SUMMARIZER_DIR_ENV} and {SENTIMENT_DIR_ENV}, or neither")
        try:
            stored = getattr(self, ref_attr)  # BentoModel descriptor: resolves in the model store
        except Exception as exc:
            raise RuntimeError(f"BentoML model {ref.tag} not found in the model store ({exc}); run "
                               f"`reviewops package` or set {SUMMARIZER_DIR_ENV}/{SENTIMENT_DIR_ENV}") from None
        return Path(stored.path), _stored_info(stored)

    def __is_ready__(self) -> bool:
        return self.ready

    @bentoml.api(batchable=BATCHING, batch_dim=0, max_batch_size=SERVE.summarizer_max_batch_size,
                 max_latency_ms=SERVE.summarizer_max_latency_ms)
    def summarize_batch(self, texts: list[str]) -> list[str]:
        """One summary per text (input order)."""
        return self.summarizer.summarize(texts, batch_size=SERVE.summarizer_max_batch_size)

    @bentoml.api(batchable=BATCHING, batch_dim=0, max_batch_size=SERVE.max_batch_size,
                 max_latency_ms=SERVE.max_latency_ms)
    def sentiment_batch(self, texts: list[str]) -> list[list[float]]:
        """Class probabilities per text, in ``schema.LABELS`` order."""
        return self.classifier.predict_proba(texts, batch_size=SERVE.max_batch_size).tolist()

    @bentoml.api
    def model_info(self) -> dict[str, ModelInfo]:
        """Versions of the loaded models."""
        return {"summarizer": self.summarizer_info, "sentiment": self.sentiment_info}


# --------------------------------------------------------------------------- public API


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
        description="reviewops.product.summarize_product for each product_id shared by 2+ reviews")
    models: dict[str, ModelInfo]


def sentiment_results(proba: list[list[float]]) -> list[SentimentResult]:
    """Label, score and named probabilities from rows in ``schema.LABELS`` order."""
    out = []
    for row in proba:
        best = max(range(len(LABELS)), key=lambda i: row[i])
        out.append(SentimentResult(label=LABELS[best], score=round(float(row[best]), 6),  # type: ignore[arg-type]
                                   probabilities={lab: round(float(p), 6) for lab, p in zip(LABELS, row, strict=True)}))
    return out


def product_aggregates(reviews: list[ReviewIn], summaries: list[str], labels: list[str]) -> list[dict[str, Any]]:
    """Product-level summaries for product ids shared by at least two reviews of the request."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for i, review in enumerate(reviews):
        if review.product_id:
            groups.setdefault(review.product_id, []).append(i)
    shared = {pid: idx for pid, idx in groups.items() if len(idx) >= 2}
    if not shared:
        return []
    import pandas as pd

    from reviewops.product import summarize_product

    out = []
    for pid, idx in shared.items():
        frame = pd.DataFrame({
            "product_id": pid,
            "text": [reviews[i].text for i in idx],
            "summary": [summaries[i] for i in idx],
            "label": [labels[i] for i in idx],
            "rating": [reviews[i].rating if reviews[i].rating is not None else float("nan") for i in idx],
        })
        try:
            out.append(summarize_product(frame))
        except Exception as exc:  # the per-review answer stays useful without the aggregate
            logger.warning("product aggregate for %s failed: %s", pid, exc)
    return out


@bentoml.service(name="review_analyzer", workers=1, traffic={"timeout": SERVE.timeout_s},
                 labels={"project": "reviewops"})
class ReviewAnalyzer:
    """Public API: /summarize, /sentiment, /analyze (plus BentoML's /healthz, /readyz, /metrics)."""

    models = bentoml.depends(ReviewModels)

    # Readiness: BentoML's /readyz here also probes the models service's /readyz (its
    # __is_ready__) when api_server.runner_probe is enabled (the default). An own async
    # __is_ready__ calling the dependency client hangs in BentoML 1.4.39, so there is none.

    def __init__(self) -> None:
        self._info: dict[str, ModelInfo] | None = None

    async def _call(self, name: str, **kwargs: Any) -> Any:
        """Call a ReviewModels endpoint (BentoML's client when remote, a thread when in-process)."""
        for attempt in range(3):
            try:
                return await getattr(self.models.to_async, name)(**kwargs)
            except Exception as exc:
                # Under load the pooled UDS connection to the models process is sometimes closed
                # by the server as it is reused ("Server disconnected"); model calls are
                # idempotent, so retry on a fresh connection.
                if "disconnected" in str(exc).lower() and attempt < 2:
                    logger.info("models service call %s: %s; retrying", name, exc)
                    continue
                # The adaptive batcher sheds a call (503) when its queue cannot meet
                # max_latency_ms, typically in the first instant of a burst; the batch in flight
                # drains within tens of ms, so one or two short back-offs absorb it.
                if getattr(getattr(exc, "error_code", None), "value", None) == 503 and attempt < 2:
                    logger.info("models service shed %s; retrying after a back-off", name)
                    await asyncio.sleep(0.05 * 2 ** attempt)
                    continue
                self._raise_for(name, exc)
        raise AssertionError("unreachable")

    @staticmethod
    def _raise_for(name: str, exc: Exception) -> None:
        """Map a models-service failure to a RequestError (503 when overloaded or down)."""
        code = getattr(getattr(exc, "error_code", None), "value", 500)
        logger.warning("models service call %s failed: %s", name, exc)
        if code == 503:
            raise RequestError(503, "the model server is overloaded (batch queue over its latency "
                                    "budget); retry later") from None
        raise RequestError(503 if code >= 500 else code,
                           f"the models service failed on {name}; see the server log") from None

    async def _model_info(self) -> dict[str, ModelInfo]:
        if self._info is None:
            raw = await self._call("model_info")
            self._info = {k: v if isinstance(v, ModelInfo) else ModelInfo.model_validate(v) for k, v in raw.items()}
        return self._info

    def _limits(self, texts: list[str]) -> tuple[list[str], list[int]]:
        return check_texts(texts, SERVE.max_items, SERVE.max_text_chars, SERVE.on_too_long)

    @bentoml.api(route="/summarize")
    async def summarize(self, text: str | None = None, texts: list[str] | None = None) -> SummarizeResponse:
        """One-line summary (a review title) for one review (`text`) or many (`texts`)."""
        try:
            clean, truncated = self._limits(_one_or_many(text, texts))
            summaries = await self._call("summarize_batch", texts=clean)
            info = await self._model_info()
        except RequestError as exc:
            return exc.response()  # type: ignore[return-value]
        return SummarizeResponse(summaries=list(summaries), truncated=truncated, model=info["summarizer"])

    @bentoml.api(route="/sentiment")
    async def sentiment(self, text: str | None = None, texts: list[str] | None = None) -> SentimentResponse:
        """Sentiment label and probabilities for one review (`text`) or many (`texts`)."""
        try:
            clean, truncated = self._limits(_one_or_many(text, texts))
            proba = await self._call("sentiment_batch", texts=clean)
            info = await self._model_info()
        except RequestError as exc:
            return exc.response()  # type: ignore[return-value]
        return SentimentResponse(results=sentiment_results(proba), truncated=truncated, model=info["sentiment"])

    @bentoml.api(route="/analyze")
    async def analyze(self, reviews: list[ReviewIn]) -> AnalyzeResponse:
        """Summary + sentiment per review, and a product aggregate per product_id shared by 2+ reviews."""
        import asyncio

        try:
            clean, truncated = self._limits([r.text for r in reviews])
            summaries, proba = await asyncio.gather(self._call("summarize_batch", texts=clean),
                                                    self._call("sentiment_batch", texts=clean))
            info = await self._model_info()
        except RequestError as exc:
            return exc.response()  # type: ignore[return-value]
        results = sentiment_results(proba)
        cut = set(truncated)
        out = [ReviewOut(review_id=r.review_id, product_id=r.product_id, summary=s, truncated=i in cut,
                         **res.model_dump())
               for i, (r, s, res) in enumerate(zip(reviews, summaries, results, strict=True))]
        products = product_aggregates(reviews, list(summaries), [r.label for r in results])
        return AnalyzeResponse(reviews=out, products=products, models=info)


# --------------------------------------------------------------------------- auth + body limit


class BearerAuthMiddleware:
    """Pure ASGI middleware: bearer-token auth (when the token env var is set) and a body-size cap.

    The token is read once, when the worker builds its app. Probes (``/healthz``, ``/livez``,
    ``/readyz``) stay open so an orchestrator can check the process without the secret;
    ``/metrics``, the OpenAPI page and every API need the token.
    """

    def __init__(self, app: Any, token_env: str = "REVIEWOPS_API_TOKEN", max_body_bytes: int = 8_000_000,
                 open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.token = os.environ.get(token_env, "").strip() or None
        self.max_body_bytes = max_body_bytes
        self.open_paths = open_paths

    async def _reply(self, send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
        body = json.dumps({"error": message, "status": status}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if self.token and path not in self.open_paths:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                await self._reply(send, 401, "missing or invalid bearer token (Authorization: Bearer <token>)",
                                  [(b"www-authenticate", b'Bearer realm="reviewops"')])
                return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._reply(send, 413, f"request body of {int(length)} bytes is over the limit of "
                                         f"{self.max_body_bytes} (serve.max_body_bytes)", [])
            return
        await self.app(scope, receive, send)


ReviewAnalyzer.add_asgi_middleware(BearerAuthMiddleware, token_env=SERVE.auth_token_env,
                                   max_body_bytes=SERVE.max_body_bytes)
