"""BentoML 1.4 service: review summaries, sentiment and product aggregates over the champion models.

Two services, the pattern BentoML documents for adaptive batching behind a request API:

* :class:`ReviewModels` loads both models once (``__init__``) and exposes two batchable
  endpoints, ``summarize_batch`` and ``sentiment_batch`` (``list[str]`` in, one result per
  text out). BentoML's dispatcher merges concurrent calls into one model call of at most
  ``serve.max_batch_size`` / ``serve.summarizer_max_batch_size`` texts.
* :class:`ReviewAnalyzer` is the public API (``/summarize``, ``/sentiment``, ``/analyze``):
  it validates and limits input, calls :class:`ReviewModels` through ``bentoml.depends`` and
  shapes the answer, including the versions of the models that produced it. It also serves
  ``GET /products/{product_id}``, a product's aggregate read from the scored dataset
  (``serve.scored_dir``; no model call), from an app mounted with ``bentoml.asgi_app``. BentoML adds
  ``/healthz`` (``/livez``), ``/readyz`` (503 until the models service is up and loaded),
  ``/metrics`` (Prometheus), and the OpenAPI page ``/`` + ``/docs.json``.

Processes and threads come from params: ``serve.api_workers`` API processes,
``serve.model_workers`` models processes (each loads both models: memory grows with it) and
``serve.model_threads`` threads per models process. With more than one thread, batches of both
endpoints run at the same time in one process over the same weights, which is why the loaded
models must hold no per-call state (:class:`ReviewModels`). The admission limits
(``serve.*_max_inflight``) hold per API process, and with several models processes a cancel
reaches one of them: a generation elsewhere stops at its deadline. Read at import like the
batching knobs, so ``reviewops serve`` (params.yaml or ``--params``) and a packaged Bento (the
built-in defaults, or the file named by ``$REVIEWOPS_PARAMS``, e.g. a Kubernetes ConfigMap:
``deploy/k8s/``) both honour them.

Under ``bentoml serve`` the models service runs in its own process; instantiated in-process
(``ReviewAnalyzer()`` or ``ReviewAnalyzer.to_asgi()``), the dependency is a local instance
and is called directly (no batching).

This module holds only the two classes and BentoML's wiring; the rest of the package does the
work: :mod:`.schemas` (request/response models), :mod:`.limits` (input limits, summarize budgets,
admission under load, counters), :mod:`.calls` (retries, deadlines, cancellation),
:mod:`.loading` (model store or ``REVIEWOPS_*_DIR`` directories), :mod:`.auth` (bearer token, body
cap), :mod:`.openapi` (the documented error bodies), :mod:`.errors` (error bodies, one-line
logs), :mod:`.supervisor` (a failed model load stops the server), :mod:`.products` (aggregates).

``REVIEWOPS_BATCHING=0`` turns adaptive batching off (read at import: batching is part of the
endpoint definition). When the models cannot be loaded (``serve.max_model_load_failures``
attempts), the models worker stays up without them: ``/readyz`` answers 503 with the cause,
model calls 503 naming it at once, and after ``serve.model_load_failure_exit_s`` seconds the
whole ``bentoml serve`` stops with exit status
:data:`~reviewops.serving.supervisor.EXIT_MODELS_FAILED`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any, cast

import bentoml

from reviewops.config import Settings, load_settings
from reviewops.serving.auth import BearerAuthMiddleware
from reviewops.serving.calls import ModelCalls
from reviewops.serving.errors import ModelsUnavailable, RequestError, install_one_line_client_errors, one_line
from reviewops.serving.limits import (
    Admission,
    cancelled_counter,
    check_summarize_budget,
    check_texts,
    one_or_many,
    shed_counter,
    summarize_tokens,
)
from reviewops.serving.loading import (
    SENTIMENT_TAG_ENV,
    SUMMARIZER_TAG_ENV,
    load_models,
    override_dirs_set,
    store_tag,
)
from reviewops.serving.openapi import serve_amended_openapi
from reviewops.serving.products import PRODUCTS_MOUNT, product_aggregates, products_app
from reviewops.serving.schemas import (
    AnalyzeResponse,
    ModelInfo,
    ReviewIn,
    SentimentResponse,
    SummarizeItem,
    SummarizeResponse,
    analyze_results,
    sentiment_results,
)
from reviewops.serving.supervisor import install_supervisor_hook, is_serve_supervisor, stop_server

logger = logging.getLogger(__name__)

BATCHING_ENV = "REVIEWOPS_BATCHING"


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


# The service module is the process edge: BentoML needs the batching knobs when the classes are
# defined, so settings are read here, once (params.yaml in the working directory or
# $REVIEWOPS_PARAMS; the built-in defaults, identical to params.yaml, when there is none, e.g.
# inside a Bento). Nothing else is read at import.
SETTINGS: Settings = load_settings()
SERVE = SETTINGS.serve
BATCHING: bool = _flag(os.environ[BATCHING_ENV]) if BATCHING_ENV in os.environ else SERVE.batching

# `bentoml serve` imports this module to find the services: that process installs the hook that
# turns a models worker's "cannot load" into the server's exit status.
if is_serve_supervisor():
    install_supervisor_hook()

# BentoML's client to a dependency replaces its aiohttp session every 100 requests / 300 s and
# closes the old one with calls still in flight on it: under a burst those calls fail with
# "Connector is closed" / "Can not write request body". A local socket gains nothing from
# recycling, so the session lives as long as the worker (the API still retries such failures).
_KEEP_CLIENT_SESSION = {"max_requests": 2**31 - 1, "max_age": 10 * 365 * 86400.0}


def _as_service(cls: type) -> bentoml.Service[Any]:
    """The ``bentoml.Service`` a decorated class is at run time (mypy does not apply class decorators)."""
    return cast("bentoml.Service[Any]", cls)


@bentoml.service(
    name="review_models",
    workers=SERVE.model_workers,
    threads=SERVE.model_threads,
    traffic={"timeout": SERVE.timeout_s},
    runner_connection=_KEEP_CLIENT_SESSION,
)
class ReviewModels:
    """Both models, loaded once; batchable endpoints called by :class:`ReviewAnalyzer`.

    A model that cannot be loaded does not fail the worker (BentoML would restart it, forever):
    after ``serve.max_model_load_failures`` attempts the worker stays up without models,
    ``__is_ready__`` is False, every endpoint raises :class:`ModelsUnavailable` with the cause,
    and after ``serve.model_load_failure_exit_s`` the server is stopped (:func:`stop_server`).

    The endpoints run on ``serve.model_threads`` threads at once: the loaded models hold no
    per-call state, and the only shared mutable state is the cancelled-request map (atomic dict
    reads and writes). Each of the ``serve.model_workers`` processes loads its own copy of both
    models and has its own map.
    """

    if not override_dirs_set():
        # Referenced so `bentoml build` bundles them; resolved only when no override dir is set.
        summarizer_ref = bentoml.models.BentoModel(store_tag(SUMMARIZER_TAG_ENV, SERVE.summarizer_tag))
        sentiment_ref = bentoml.models.BentoModel(store_tag(SENTIMENT_TAG_ENV, SERVE.sentiment_tag))

    def __init__(self) -> None:
        self.ready = False
        self.load_error: str | None = None
        cancelled_counter()  # in /metrics from the start, at 0
        # request id -> when it was cancelled; read by the generating thread (dict reads are atomic)
        self._cancelled: dict[str, float] = {}
        attempts = SERVE.max_model_load_failures
        for attempt in range(1, attempts + 1):
            try:
                self._load()
            except Exception as exc:
                self.load_error = one_line(exc)
                logger.error(
                    "loading the models failed (attempt %d of %d): %s",
                    attempt,
                    attempts,
                    self.load_error,
                    exc_info=attempt == attempts,
                )
                if attempt < attempts:
                    time.sleep(min(10.0, 2.0 ** (attempt - 1)))  # a file still being copied gets a chance
                continue
            self.load_error = None
            self.ready = True
            return
        self._stop_server_later(attempts)

    def _load(self) -> None:
        loaded = load_models(self, SETTINGS)
        self.summarizer, self.classifier = loaded.summarizer, loaded.classifier
        self.summarizer_info, self.sentiment_info = loaded.summarizer_info, loaded.sentiment_info

    def _stop_server_later(self, attempts: int) -> None:
        logger.error(
            "the models could not be loaded after %d attempts; /readyz and every model call answer 503 "
            "with the cause, and the server stops in %gs",
            attempts,
            SERVE.model_load_failure_exit_s,
        )
        timer = threading.Timer(SERVE.model_load_failure_exit_s, stop_server, args=(self.load_error,))
        timer.daemon = True
        timer.start()

    def __is_ready__(self) -> bool:
        return self.ready

    def _require_models(self) -> None:
        if not self.ready:
            raise ModelsUnavailable(
                f"the models failed to load: {self.load_error}" if self.load_error else "the models are not loaded"
            )

    def _wanted(self, item: SummarizeItem) -> bool:
        if item.deadline is not None and time.time() >= item.deadline:
            return False
        return not (item.request_id and item.request_id in self._cancelled)

    @bentoml.api(
        batchable=BATCHING,
        batch_dim=0,
        max_batch_size=SERVE.summarizer_max_batch_size,
        max_latency_ms=SERVE.summarizer_max_latency_ms,
    )
    def summarize_batch(self, items: list[SummarizeItem]) -> list[str | None]:
        """One summary per item (input order); None for an item whose deadline passed or request was cancelled.

        Generation runs in calls of at most ``serve.summarizer_max_batch_size`` texts and
        ``serve.summarizer_max_batch_tokens`` padded prompt tokens; unwanted items are skipped
        before each call and their rows stopped after every generated token.
        """
        self._require_models()
        out = self.summarizer.summarize_some(
            [item.text for item in items],
            batch_size=SERVE.summarizer_max_batch_size,
            max_batch_tokens=SERVE.summarizer_max_batch_tokens,
            wanted=lambda i: self._wanted(items[i]),
        )
        dropped = [item for item, summary in zip(items, out, strict=True) if summary is None]
        if dropped:
            counter = cancelled_counter()
            for item in dropped:
                counter.labels("cancelled" if item.request_id in self._cancelled else "deadline").inc()
            logger.info(
                "summarize_batch: %d of %d texts not generated (deadline passed or request cancelled)",
                len(dropped),
                len(items),
            )
        return out

    @bentoml.api(
        batchable=BATCHING, batch_dim=0, max_batch_size=SERVE.max_batch_size, max_latency_ms=SERVE.max_latency_ms
    )
    def sentiment_batch(self, texts: list[str]) -> list[list[float]]:
        """Class probabilities per text, in ``schema.LABELS`` order."""
        self._require_models()
        return self.classifier.predict_proba(texts, batch_size=SERVE.max_batch_size).tolist()

    @bentoml.api
    async def cancel(self, request_ids: list[str]) -> int:
        """Stop generating for these API requests (their clients are gone); returns how many ids are held.

        Async so it runs on the event loop at once, not behind the generation threads.
        """
        now = time.time()
        for rid, when in list(self._cancelled.items()):
            if now - when > 2 * SERVE.timeout_s:  # no call of that request can still be running
                self._cancelled.pop(rid, None)
        for rid in request_ids:
            self._cancelled[rid] = now
        return len(self._cancelled)

    @bentoml.api
    async def load_status(self) -> dict[str, Any]:
        """``{"ready": bool, "error": cause or None}``: what the API's /readyz reports about the models."""
        return {"ready": self.ready, "error": self.load_error}

    @bentoml.api
    async def model_info(self) -> dict[str, ModelInfo]:
        """Versions of the loaded models."""
        self._require_models()
        return {"summarizer": self.summarizer_info, "sentiment": self.sentiment_info}


def _current_request() -> Any:
    """The Starlette request being served in this context; None for an in-process call."""
    try:
        return _as_service(ReviewAnalyzer).context.request  # a context variable set by BentoML per request
    except LookupError:
        return None


# GET /products/{product_id}: serve.scored_dir is looked up per request (SERVE of this module).
PRODUCTS_APP = products_app(lambda: SERVE.scored_dir)


@bentoml.service(
    name="review_analyzer",
    workers=SERVE.api_workers,
    traffic={"timeout": SERVE.timeout_s},
    labels={"project": "reviewops"},
)
@bentoml.asgi_app(PRODUCTS_APP, path=PRODUCTS_MOUNT)
class ReviewAnalyzer:
    """Public API: /summarize, /sentiment, /analyze, GET /products/{product_id} (+ /healthz, /readyz, /metrics)."""

    models = bentoml.depends(ReviewModels)

    # Readiness: BentoML's /readyz here also probes the models service's /readyz (its
    # __is_ready__) when api_server.runner_probe is enabled (the default). An own async
    # __is_ready__ calling the dependency client hangs in BentoML 1.4.39, so there is none;
    # BearerAuthMiddleware adds the models' own cause to a 503 (models_failure).

    def __init__(self) -> None:
        self._admission = {
            "sentiment_batch": Admission(
                "sentiment", SERVE.sentiment_max_inflight, SERVE.max_queued_requests, SERVE.max_queue_wait_s
            ),
            "summarize_batch": Admission(
                "summarizer", SERVE.summarizer_max_inflight, SERVE.max_queued_requests, SERVE.max_queue_wait_s
            ),
        }
        # Looked up on every call: the dependency client is made lazily, on the serving event loop.
        self._calls = ModelCalls(lambda: self.models, self._admission, SERVE)
        shed_counter()  # in /metrics from the start, at 0

    async def models_failure(self, timeout: float = 1.0) -> str | None:
        """Why the models service is not ready, in its own words; None when it is, or does not answer in time."""
        return await self._calls.models_failure(timeout)

    def _limits(self, texts: list[str]) -> tuple[list[str], list[int]]:
        return check_texts(texts, SERVE.max_items, SERVE.max_text_chars, SERVE.on_too_long)

    def _summarize_tokens(self, texts: list[str]) -> list[int]:
        tokens = summarize_tokens(texts, SETTINGS.summarizer.max_source_tokens, SETTINGS.summarizer.prompt)
        check_summarize_budget(tokens, SERVE.max_summarize_tokens_per_request)
        return tokens

    @bentoml.api(route="/summarize")
    async def summarize(self, text: str | None = None, texts: list[str] | None = None) -> SummarizeResponse:
        """One-line summary (a review title) for one review (`text`) or many (`texts`)."""
        deadline = time.monotonic() + SERVE.request_deadline_s
        try:
            clean, truncated = self._limits(one_or_many(text, texts))
            tokens = self._summarize_tokens(clean)
            request_id = uuid.uuid4().hex
            summaries = await self._calls.until_disconnect(
                self._calls.summaries(clean, tokens, deadline, "/summarize", request_id), _current_request(), request_id
            )
            info = await self._calls.model_info()
        except RequestError as exc:
            return exc.response()
        return SummarizeResponse(summaries=list(summaries), truncated=truncated, model=info["summarizer"])

    @bentoml.api(route="/sentiment")
    async def sentiment(self, text: str | None = None, texts: list[str] | None = None) -> SentimentResponse:
        """Sentiment label and probabilities for one review (`text`) or many (`texts`)."""
        deadline = time.monotonic() + SERVE.request_deadline_s
        try:
            clean, truncated = self._limits(one_or_many(text, texts))
            proba = await self._calls.until_disconnect(
                self._calls.sentiments(clean, deadline, "/sentiment"), _current_request()
            )
            info = await self._calls.model_info()
        except RequestError as exc:
            return exc.response()
        return SentimentResponse(results=sentiment_results(proba), truncated=truncated, model=info["sentiment"])

    @bentoml.api(route="/analyze")
    async def analyze(self, reviews: list[ReviewIn]) -> AnalyzeResponse:
        """Summary + sentiment per review, and a product aggregate per product_id shared by 2+ reviews."""
        deadline = time.monotonic() + SERVE.request_deadline_s
        try:
            clean, truncated = self._limits([r.text for r in reviews])
            tokens = self._summarize_tokens(clean)
            request_id = uuid.uuid4().hex
            summaries, proba = await self._calls.until_disconnect(
                self._calls.both(clean, tokens, deadline, "/analyze", request_id), _current_request(), request_id
            )
            info = await self._calls.model_info()
        except RequestError as exc:
            return exc.response()
        try:
            # The faithfulness flag: the sentiment model reads the summaries too (cheap next to generation).
            summary_proba = await self._calls.until_disconnect(
                self._calls.sentiments(list(summaries), deadline, "/analyze"), _current_request()
            )
        except RequestError as exc:
            return exc.response()
        results = sentiment_results(proba)
        out = analyze_results(reviews, list(summaries), results, truncated, sentiment_results(summary_proba))
        products = product_aggregates(reviews, list(summaries), [r.label for r in results])
        return AnalyzeResponse(reviews=out, products=products, models=info)


# BentoML's wiring of the API service: auth and body cap, the OpenAPI document as served, one-line
# client-error logs.
_as_service(ReviewAnalyzer).add_asgi_middleware(
    BearerAuthMiddleware, token_env=SERVE.auth_token_env, max_body_bytes=SERVE.max_body_bytes
)
serve_amended_openapi(ReviewAnalyzer, SERVE.auth_token_env)
install_one_line_client_errors()
