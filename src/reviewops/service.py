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
every path except ``/healthz``, ``/livez`` and ``/readyz`` needs ``Authorization: Bearer``;
without it the API is open, and the worker says so (a WARNING at start-up, ``X-ReviewOps-Auth:
off`` on every response, a line in ``/readyz``'s body). Request bodies are capped at
``serve.max_body_bytes`` bytes received (413), chunked uploads included. ``/docs.json`` documents
the error bodies (400/401/413/422/503) and the bearer scheme as served (:func:`amend_openapi`).
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


def api_token(token_env: str) -> str | None:
    """The bearer token from ``$token_env`` (surrounding whitespace dropped); None (auth off) when unset or blank."""
    return os.environ.get(token_env, "").strip() or None


def auth_off_message(token_env: str) -> str:
    """The one line that says the API is open (start-up log, ``/readyz`` body)."""
    return (f"auth is OFF: set {token_env} to require Authorization: Bearer <token> on every endpoint "
            "but /healthz, /livez and /readyz")


class BearerAuthMiddleware:
    """Pure ASGI middleware: bearer-token auth (when the token env var is set) and a body-size cap.

    The token is read once, when the worker builds its app (at start-up: the lifespan call
    builds the middleware stack); without one the worker logs a WARNING, every response carries
    ``X-ReviewOps-Auth: off`` and ``/readyz`` says so in its body (its status is untouched, so
    probes keep BentoML's semantics). Probes (``/healthz``, ``/livez``, ``/readyz``) stay open so
    an orchestrator can check the process without the secret; ``/metrics``, the OpenAPI page and
    every API need the token.

    The body cap counts the bytes actually received, not the ``Content-Length`` header (a chunked
    upload has none): the middleware reads the whole body itself, holding at most
    ``max_body_bytes``, and answers 413 as soon as it would pass the limit, before the app is
    called, so no response has started and the 413 is always a clean answer. The app then gets
    the body in one ``http.request`` message. BentoML parses the body in memory anyway, so this
    adds no more than one copy of an accepted body.
    """

    def __init__(self, app: Any, token_env: str = "REVIEWOPS_API_TOKEN", max_body_bytes: int = 8_000_000,
                 open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.token_env = token_env
        self.token = api_token(token_env)
        self.max_body_bytes = max_body_bytes
        self.open_paths = open_paths
        if self.token is None:
            logger.warning(auth_off_message(token_env))

    async def _reply(self, send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
        body = json.dumps({"error": message, "status": status}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    def _too_large(self, size: int | None) -> RequestError:
        got = f"request body of {size} bytes is" if size is not None else "request body is"
        return RequestError(413, f"{got} over the limit of {self.max_body_bytes} bytes (serve.max_body_bytes)")

    async def _read_body(self, receive: Any) -> bytes | None:
        """The whole request body, read from ``receive``; None when the client disconnected first.

        Raises:
            RequestError: 413 once the bytes received pass ``max_body_bytes`` (the rest is not read).
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                # The server discards the unread rest of the request after the response.
                raise self._too_large(None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Any) -> Any:
        """A ``receive`` that gives the app ``body`` once, then the server's (disconnect) messages."""
        pending = True

        async def replay() -> dict[str, Any]:
            nonlocal pending
            if pending:
                pending = False
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _flag_auth_off(self, send: Any, path: str) -> Any:
        """Wrap ``send``: ``X-ReviewOps-Auth: off`` on the response; on /readyz also a line in the body."""
        note = (auth_off_message(self.token_env) + "\n").encode()
        held: dict[str, Any] | None = None
        parts: list[bytes] = []

        async def flagged(message: dict[str, Any]) -> None:
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-reviewops-auth", b"off")]}
                if path == "/readyz":
                    held = message  # sent with the rewritten body, whose length changes
                    return
            elif kind == "http.response.body" and held is not None:
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                original = b"".join(parts).strip()
                body = (original + b"\n" if original else b"") + note
                headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
                await send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                held = None
                message = {"type": "http.response.body", "body": body}
            await send(message)

        return flagged

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if self.token is None:
            send = self._flag_auth_off(send, path)
        elif path not in self.open_paths:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                await self._reply(send, 401, "missing or invalid bearer token (Authorization: Bearer <token>)",
                                  [(b"www-authenticate", b'Bearer realm="reviewops"')])
                return
        try:
            # A declared length over the limit is refused before a byte is read; a chunked body (no
            # Content-Length) is counted while it is read.
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                raise self._too_large(int(length))
            body = await self._read_body(receive)
        except RequestError as exc:
            await self._reply(send, exc.status, exc.message, [])
            return
        if body is None:
            return  # the client went away before its request was complete: nobody to answer
        await self.app(scope, self._replay(body, receive), send)


ReviewAnalyzer.add_asgi_middleware(BearerAuthMiddleware, token_env=SERVE.auth_token_env,
                                   max_body_bytes=SERVE.max_body_bytes)


# --------------------------------------------------------------------------- OpenAPI: errors + auth as served

BEARER_SCHEME = "bearerAuth"
_REF = "#/components/schemas/{}"
_ERROR_STATUSES = {
    401: "Missing or invalid bearer token (only when the server has a token set). "
         "Answered with `WWW-Authenticate: Bearer`.",
    413: "Too many reviews (serve.max_items), a text over serve.max_text_chars with "
         "serve.on_too_long=reject, or a body over serve.max_body_bytes.",
    422: "No review given, an empty review (nothing visible), or both `text` and `texts`.",
    503: "The models service is overloaded (batch queue over its latency budget) or down; retry later.",
}
_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorResponse": {
        "type": "object", "title": "ErrorResponse", "required": ["error", "status"],
        "description": "Every error the service itself answers (RequestError.response, auth, body limit).",
        "properties": {"error": {"type": "string", "title": "Error"},
                       "status": {"type": "integer", "title": "Status", "description": "the HTTP status"}},
    },
    "ValidationIssue": {
        "type": "object", "title": "ValidationIssue", "required": ["type", "loc", "msg"],
        "description": "One pydantic validation error (input values are not echoed).",
        "properties": {"type": {"type": "string", "description": "e.g. string_type, json_invalid"},
                       "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                               "description": "where in the body, e.g. ['texts', 0]"},
                       "msg": {"type": "string"},
                       "url": {"type": "string"}},
    },
    "BadRequestResponse": {
        "type": "object", "title": "BadRequestResponse", "required": ["error"],
        "description": "A body that is not JSON or does not match the request schema: BentoML's answer, "
                       "`error` says how many errors and `detail` lists them. A 400 passed on from the "
                       "models service has `status` instead of `detail`.",
        "properties": {"error": {"type": "string", "title": "Error"},
                       "detail": {"type": "array", "items": {"$ref": _REF.format("ValidationIssue")}},
                       "status": {"type": "integer", "title": "Status"}},
    },
}


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF.format(schema)}}}}


def amend_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's generated OpenAPI dict, made true to what the service answers (changed in place).

    BentoML documents a 400 whose ``detail`` is a string (it is a list of validation errors), no
    401/413/422/503 and no auth. This adds the error bodies the service sends (``ErrorResponse``
    ``{"error", "status"}``; ``BadRequestResponse`` for 400), a bearer security scheme on every
    path the middleware guards, a required JSON request body, and /readyz's 503.
    """
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).update(_EXTRA_SCHEMAS)
    components["securitySchemes"] = {BEARER_SCHEME: {
        "type": "http", "scheme": "bearer",
        "description": f"Required on every path but /healthz, /livez and /readyz when ${SERVE.auth_token_env} "
                       "is set on the server; without it the API is open and says so (X-ReviewOps-Auth: off)."}}
    unauthorized = _json_response(_ERROR_STATUSES[401], "ErrorResponse")
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or method not in ("get", "post", "put", "delete", "patch"):
                continue
            # BentoML keys statuses by int; one key type keeps the YAML dump (sorted keys) working.
            responses = op["responses"] = {str(k): v for k, v in op.get("responses", {}).items()}
            if path in OPEN_PATHS:
                op["security"] = []
                if path == "/readyz":
                    responses["503"] = {"description": "Not ready: the models service is not up or its models "
                                                       "are not loaded yet.",
                                        "content": {"text/plain": {"schema": {"type": "string"}}}}
            else:
                op["security"] = [{BEARER_SCHEME: []}]
                responses["401"] = unauthorized
            if "x-bentoml-name" in op:  # an API (infrastructure paths take no body and call no model)
                responses["400"] = _json_response("Invalid JSON or a body that does not match the request "
                                                  "schema.", "BadRequestResponse")
                for status in (413, 422, 503):
                    responses[str(status)] = _json_response(_ERROR_STATUSES[status], "ErrorResponse")
                if isinstance(op.get("requestBody"), dict):
                    op["requestBody"]["required"] = True
            op["responses"] = dict(sorted(responses.items()))
    return spec


def _amended_spec_class() -> type:
    import attr
    import yaml
    from bentoml._internal.service.openapi.specification import OpenAPISpecification

    @attr.frozen
    class AmendedOpenAPISpecification(OpenAPISpecification):
        """BentoML's spec object whose dict form (``/docs.json``, the Bento's openapi.yaml) is amended."""

        def asdict(self) -> dict[str, Any]:
            return amend_openapi(super().asdict())

    # BentoML registers its YAML dumper for the exact class (`bentoml build` writes apis/openapi.yaml).
    yaml.add_representer(AmendedOpenAPISpecification, lambda dumper, spec: dumper.represent_dict(spec.asdict()))
    return AmendedOpenAPISpecification


def _serve_amended_openapi(service: Any) -> None:
    """Make ``service.openapi_spec`` (what /docs.json and ``bentoml build`` use) the amended spec.

    BentoML 1.4 has no hook for the spec: it is a property of its ``Service`` class, so the service
    object gets a subclass that overrides only that property (no new state, same slots).
    """
    import attr

    spec_cls = _amended_spec_class()
    base = type(service)

    class AmendedSpecService(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        @property
        def openapi_spec(self) -> Any:
            spec = super().openapi_spec
            return spec_cls(**{f.name: getattr(spec, f.name) for f in attr.fields(type(spec))})

    service.__class__ = AmendedSpecService


_serve_amended_openapi(ReviewAnalyzer)


# --------------------------------------------------------------------------- logging


class OneLineClientErrors(logging.Filter):
    """Log a rejected request (BentoML's 400 for invalid JSON / wrong types, or another 4xx) as one line.

    BentoML logs every exception of an API call, a client's bad body included, as an ERROR with the
    full traceback. Attached to that logger, this rewrites such a record into one WARNING line that
    names the path, the status and the validation errors (no input values); server errors keep
    their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if exc is None:
            return True
        status, summary = _client_error(exc)
        if status is None:
            return True
        record.msg = f"{record.getMessage()}: {status} {summary}".replace("\n", " ")
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _client_error(exc: BaseException) -> tuple[int | None, str]:
    """(status, one-line summary) for an exception BentoML answers with a 4xx; (None, "") otherwise."""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        # BentoML answers any ValidationError with 400, also one raised by a bug past the request
        # parsing: only the request body's own validation is a client error.
        if not _raised_in(exc, "from_http_request"):
            return None, ""
        issues = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                  for err in exc.errors(include_input=False, include_context=False)[:3]]
        more = f"; +{exc.error_count() - 3} more" if exc.error_count() > 3 else ""
        return 400, f"{exc.error_count()} validation error(s) for {exc.title}: {'; '.join(issues)}{more}"[:500]
    if isinstance(exc, BentoMLException) and exc.error_code.value < 500:
        return exc.error_code.value, f"{type(exc).__name__}: {exc}"[:500]
    return None, ""


def _raised_in(exc: BaseException, function: str) -> bool:
    """Whether ``function`` (BentoML's request parsing) is on ``exc``'s traceback."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


# The logger of bentoml._internal.server.http_app.log_exception, which the API server calls for each
# failed request (bentoml 1.4).
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
if not any(isinstance(f, OneLineClientErrors) for f in logging.getLogger(BENTOML_REQUEST_LOGGER).filters):
    logging.getLogger(BENTOML_REQUEST_LOGGER).addFilter(OneLineClientErrors())
