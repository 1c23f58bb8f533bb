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

Under load (see :class:`Admission`): the API lets at most ``serve.sentiment_max_inflight`` /
``serve.summarizer_max_inflight`` texts into the models service at once, so BentoML's batcher
never has more queued than it can serve within its latency budget; the rest wait in a FIFO
queue (``serve.max_queued_requests``, ``serve.max_queue_wait_s``) and are answered 503 with
``Retry-After`` only when that queue is full or the wait too long (counted in ``/metrics`` as
``reviewops_shed_requests_total``). A model call that fails on the connection (or is shed by the
batcher) is retried with backoff: model calls are idempotent. A summarize request is bounded
(``serve.max_summarize_tokens_per_request``, else 413), sent in chunks that re-queue between
each other so a small request is not stuck behind a large one, and generation stops for a
request whose client went away or whose deadline (``serve.request_deadline_s``) passed
(``reviewops_cancelled_generations_total``).

When the models cannot be loaded (``serve.max_model_load_failures`` attempts), the models worker
stays up without them: ``/readyz`` answers 503 with the cause, model calls 503 naming it at once,
and after ``serve.model_load_failure_exit_s`` seconds the whole ``bentoml serve`` stops with exit
status :data:`EXIT_MODELS_FAILED` (see :func:`_install_supervisor_hook`) instead of restarting the
worker forever.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hmac
import json
import logging
import math
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

import bentoml
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, ConfigDict, Field

from reviewops.config import SentimentConfig, Settings, SummarizerConfig, load_settings
from reviewops.models.summarizer import token_batches
from reviewops.schema import LABELS
from reviewops.text import CJK_CHAR, has_visible_text

logger = logging.getLogger("reviewops.serving.service")

SUMMARIZER_DIR_ENV = "REVIEWOPS_SUMMARIZER_DIR"
SENTIMENT_DIR_ENV = "REVIEWOPS_SENTIMENT_DIR"
SUMMARIZER_TAG_ENV = "REVIEWOPS_SUMMARIZER_TAG"
SENTIMENT_TAG_ENV = "REVIEWOPS_SENTIMENT_TAG"
BATCHING_ENV = "REVIEWOPS_BATCHING"
# Written by `reviewops package` next to the HF files: the settings section the model was logged with.
CONFIG_FILE = "reviewops_config.json"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
API_PATHS = ("/summarize", "/sentiment", "/analyze")
# Set by the `bentoml serve` process (the circus arbiter) to its pid; see _install_supervisor_hook.
SUPERVISOR_ENV = "REVIEWOPS_SERVE_SUPERVISOR_PID"
EXIT_MODELS_FAILED = 3


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
    """An error answered with ``{"error": message, "status": code}`` (and ``headers``), no traceback."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self):
        from starlette.responses import JSONResponse

        return JSONResponse(
            {"error": self.message, "status": self.status}, status_code=self.status, headers=self.headers or None
        )


def busy(message: str, retry_after: int) -> RequestError:
    """A 503 that tells the client when to come back."""
    return RequestError(503, message, {"Retry-After": str(max(1, int(retry_after)))})


def check_texts(
    texts: list[str], max_items: int, max_chars: int, on_too_long: Literal["truncate", "reject"]
) -> tuple[list[str], list[int]]:
    """Apply the request limits; returns the texts to model and the indices that were truncated.

    Raises:
        RequestError: 422 for no items or an empty text (nothing visible: only whitespace,
            control or zero-width characters, see :func:`reviewops.text.has_visible_text`), 413
            for too many items or (with ``on_too_long="reject"``) a text over ``max_chars``.
    """
    if not texts:
        raise RequestError(422, "no reviews given: send `text` (one review) or `texts` (a list)")
    if len(texts) > max_items:
        raise RequestError(
            413, f"{len(texts)} reviews in one request; the limit is {max_items} (serve.max_items): split the request"
        )
    out: list[str] = []
    truncated: list[int] = []
    for i, text in enumerate(texts):
        # Whitespace, NULs and zero-width/format characters only: nothing a model could read.
        if not has_visible_text(text):
            raise RequestError(422, f"review {i} is empty (no visible characters)")
        if len(text) > max_chars:
            if on_too_long == "reject":
                raise RequestError(
                    413, f"review {i} has {len(text)} characters; the limit is {max_chars} (serve.max_text_chars)"
                )
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


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` as a summarizer tokenizer would count them, roughly: 1 per CJK character, 1 per 4 others.

    The API process has no tokenizer; the estimate only has to size work, not to be exact.
    """
    cjk = len(CJK_CHAR.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def summarize_tokens(texts: list[str], max_source_tokens: int, prompt: str) -> list[int]:
    """Estimated prompt tokens per text: the review (cut at ``max_source_tokens`` like the model does) + the prompt."""
    overhead = estimate_tokens(prompt.replace("{text}", ""))
    return [min(estimate_tokens(t), max_source_tokens) + overhead for t in texts]


def check_summarize_budget(tokens: list[int], budget: int) -> None:
    """Refuse a summarize request whose generation work is over ``budget`` prompt tokens.

    Raises:
        RequestError: 413 naming the estimate and the limit.
    """
    total = sum(tokens)
    if total > budget:
        raise RequestError(
            413,
            f"{len(tokens)} reviews make about {total} prompt tokens to summarize; the limit "
            f"is {budget} per request (serve.max_summarize_tokens_per_request): send fewer "
            "or shorter reviews per request",
        )


def summarize_chunks(tokens: list[int], max_items: int, max_tokens: int) -> list[list[int]]:
    """Consecutive chunks of item indices, each at most one model batch (items and padded tokens)."""
    return token_batches(list(range(len(tokens))), tokens, max_items, max_tokens)


# --------------------------------------------------------------------------- metrics

SHED_REASONS = ("queue_full", "queue_timeout", "deadline")
CANCEL_REASONS = ("deadline", "cancelled")
_metrics: dict[str, Any] = {}
_metrics_lock = threading.Lock()


def shed_counter() -> Any:
    """``reviewops_shed_requests_total{endpoint, reason}``: requests answered 503 instead of being served."""
    return _counter(
        "reviewops_shed_requests",
        "Requests answered 503 + Retry-After instead of being served "
        "(queue full, queue wait or deadline over the limit)",
        ("endpoint", "reason"),
        [(path, reason) for path in API_PATHS for reason in SHED_REASONS],
    )


def cancelled_counter() -> Any:
    """``reviewops_cancelled_generations_total{reason}``: texts whose generation was skipped or stopped."""
    return _counter(
        "reviewops_cancelled_generations",
        "Texts whose summary generation was skipped or stopped "
        "early: deadline passed, or the request was cancelled (client gone)",
        ("reason",),
        [(reason,) for reason in CANCEL_REASONS],
    )


def _counter(name: str, documentation: str, labelnames: tuple[str, ...], children: list[tuple[str, ...]]) -> Any:
    """A prometheus_client Counter in the default registry, created on first use in this process.

    Not at import: a BentoML worker points prometheus_client at its multiprocess directory
    (``PROMETHEUS_MULTIPROC_DIR``) so that ``/metrics`` of the API worker sums the counters of
    every worker, the models worker's included. The known label sets are created at once so the
    series show 0 before the first event.
    """
    with _metrics_lock:
        if name not in _metrics:
            from prometheus_client import Counter

            counter = Counter(name, documentation, labelnames)
            for labels in children:
                counter.labels(*labels)
            _metrics[name] = counter
        return _metrics[name]


# --------------------------------------------------------------------------- backpressure


class Shed(Exception):
    """Admission refused: the wait queue is full or the wait passed its limit."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Admission:
    """FIFO admission of model work: ``capacity`` units (texts) in flight, a bounded wait queue.

    BentoML's batcher sheds (503) whatever it predicts it cannot serve within its latency budget,
    and its queue has no bound, so a burst sent straight through is half refused. Here requests
    beyond ``capacity`` texts wait in arrival order instead; a request waits at most
    ``max_wait_s`` (or until its deadline) and at most ``max_queued`` wait at once; beyond that
    :meth:`acquire` raises :class:`Shed` with a ``Retry-After`` estimate. A request larger than
    ``capacity`` takes the whole capacity. One instance per event loop (no locks needed).
    """

    def __init__(self, name: str, capacity: int, max_queued: int, max_wait_s: float) -> None:
        self.name = name
        self.capacity = capacity
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._hold_s = 1.0  # moving average of how long a slot is held, for Retry-After

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    def retry_after(self) -> int:
        """Seconds until the queue ahead has likely drained (1..120)."""
        ahead = self.in_flight + sum(units for units, _ in self._waiters)
        return max(1, min(120, math.ceil((ahead / self.capacity + 1) * self._hold_s)))

    async def acquire(self, units: int, deadline: float | None = None) -> int:
        """Wait for ``units`` texts' worth of capacity; returns the units taken (pass them to :meth:`release`).

        Args:
            units: texts in the call.
            deadline: ``time.monotonic()`` value after which waiting is pointless.

        Raises:
            Shed: ``queue_full``, ``queue_timeout`` (waited ``max_wait_s``) or ``deadline``.
        """
        units = max(1, min(units, self.capacity))
        if not self._waiters and self.in_flight + units <= self.capacity:
            self.in_flight += units
            return units
        if len(self._waiters) >= self.max_queued:
            raise Shed("queue_full", self.retry_after())
        wait, reason = self.max_wait_s, "queue_timeout"
        if deadline is not None and deadline - time.monotonic() < wait:
            wait, reason = max(0.0, deadline - time.monotonic()), "deadline"
        entry = (units, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            done, _ = await asyncio.wait({entry[1]}, timeout=wait)
        except asyncio.CancelledError:
            self._abandon(entry)
            raise
        if not done:
            self._abandon(entry)
            raise Shed(reason, self.retry_after())
        return units

    def release(self, units: int, held_s: float | None = None) -> None:
        """Give back what :meth:`acquire` returned and let the next waiters in."""
        self.in_flight -= units
        if held_s is not None:
            self._hold_s = 0.8 * self._hold_s + 0.2 * held_s
        self._wake()

    @contextlib.asynccontextmanager
    async def slot(self, units: int, deadline: float | None = None) -> AsyncIterator[None]:
        """``async with admission.slot(n):`` holds ``n`` texts of capacity for the block."""
        taken = await self.acquire(units, deadline)
        start = time.monotonic()
        try:
            yield
        finally:
            self.release(taken, time.monotonic() - start)

    def _abandon(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        units, future = entry
        if future.done() and not future.cancelled():
            self.release(units)  # granted just as the waiter gave up: hand it on
            return
        future.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(entry)
        self._wake()  # a waiter that left the head may unblock the next one

    def _wake(self) -> None:
        while self._waiters:
            units, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.in_flight + units > self.capacity:
                break  # strict FIFO: a small request does not overtake a large one at the head
            self._waiters.popleft()
            self.in_flight += units
            future.set_result(None)


# --------------------------------------------------------------------------- a failed model stops the server


def _is_serve_supervisor() -> bool:
    """Whether this process is ``bentoml serve`` itself (the circus arbiter), not a worker or a tool."""
    argv = sys.argv
    return (
        len(argv) > 1
        and "serve" in argv[1:3]
        and "bentoml" in argv[0]
        and Path(argv[0]).name in ("bentoml", "__main__.py")
    )


def _install_supervisor_hook() -> None:
    """In the ``bentoml serve`` process: on SIGUSR2 from the models worker, stop and exit :data:`EXIT_MODELS_FAILED`.

    BentoML's circus arbiter restarts a worker whose start-up fails, forever (outside a container)
    or leaves the server up without it (inside one, where it does not respawn), and ``bentoml
    serve`` exits 0 when stopped. The service module is imported by that process to find the
    services, so it installs here what the models worker needs to end the server with a status
    an orchestrator sees: the worker sends SIGUSR2 to its parent (only when its parent's pid is
    in ``$REVIEWOPS_SERVE_SUPERVISOR_PID``, i.e. this hook is there), the handler hands circus a
    SIGTERM (its graceful stop of every worker), and at exit the status becomes 3.
    """
    failed: list[bool] = []

    def on_models_failed(signum: int, frame: Any) -> None:
        failed.append(True)
        os.kill(os.getpid(), signal.SIGTERM)

    def exit_status() -> None:
        if failed:
            sys.stderr.write(
                f"reviewops: the models could not be loaded (see the models worker's log above); "
                f"bentoml serve exits with status {EXIT_MODELS_FAILED}\n"
            )
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_MODELS_FAILED)  # the handlers registered before this one are skipped

    try:
        signal.signal(signal.SIGUSR2, on_models_failed)
    except ValueError:  # not the main thread: no hook, the worker then just stays unready
        return
    atexit.register(exit_status)
    os.environ[SUPERVISOR_ENV] = str(os.getpid())


if _is_serve_supervisor():
    _install_supervisor_hook()


def stop_server(cause: str) -> bool:
    """From the models worker: ask ``bentoml serve`` to stop with :data:`EXIT_MODELS_FAILED`; False when it cannot."""
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if not supervisor.isdigit() or int(supervisor) != os.getppid():
        logger.error(
            "the models failed to load (%s) and this worker was not started by `bentoml serve` with the "
            "reviewops hook: it stays up, not ready, answering 503",
            cause,
        )
        return False
    logger.error(
        "stopping the server: the models failed to load (%s); bentoml serve exits with status %d",
        cause,
        EXIT_MODELS_FAILED,
    )
    os.kill(os.getppid(), signal.SIGUSR2)
    return True


def _one_line(exc: BaseException, limit: int = 500) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]


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
    return ModelInfo(
        name=labels.get("mlflow_model_name", stored.tag.name),
        version=labels.get("mlflow_version", str(stored.tag.version)),
        source="bentoml",
        tag=str(stored.tag),
        mlflow_run_id=labels.get("mlflow_run_id"),
    )


_OVERRIDE_DIRS = bool(os.environ.get(SUMMARIZER_DIR_ENV) and os.environ.get(SENTIMENT_DIR_ENV))

# BentoML's client to a dependency replaces its aiohttp session every 100 requests / 300 s and
# closes the old one with calls still in flight on it: under a burst those calls fail with
# "Connector is closed" / "Can not write request body". A local socket gains nothing from
# recycling, so the session lives as long as the worker (the API still retries such failures).
_KEEP_CLIENT_SESSION = {"max_requests": 2**31 - 1, "max_age": 10 * 365 * 86400.0}


class ModelsUnavailable(BentoMLException):
    """Raised by :class:`ReviewModels` while its models are not loaded.

    424 between the two services on purpose: BentoML replaces the message of every 5xx answer
    with a generic one, and the cause is what the API has to pass on (as a 503).
    """

    error_code = HTTPStatus.FAILED_DEPENDENCY


class SummarizeItem(BaseModel):
    """One text for :meth:`ReviewModels.summarize_batch`, with what it takes to stop working on it."""

    text: str
    request_id: str = Field("", description="the API request it belongs to (for ReviewModels.cancel)")
    deadline: float | None = Field(None, description="Unix time after which nobody waits for the summary")


@bentoml.service(
    name="review_models",
    workers=1,
    threads=2,
    traffic={"timeout": SERVE.timeout_s},
    runner_connection=_KEEP_CLIENT_SESSION,
)
class ReviewModels:
    """Both models, loaded once; batchable endpoints called by :class:`ReviewAnalyzer`.

    A model that cannot be loaded does not fail the worker (BentoML would restart it, forever):
    after ``serve.max_model_load_failures`` attempts the worker stays up without models,
    ``__is_ready__`` is False, every endpoint raises :class:`ModelsUnavailable` with the cause,
    and after ``serve.model_load_failure_exit_s`` the server is stopped (:func:`stop_server`).
    """

    if not _OVERRIDE_DIRS:
        # Referenced so `bentoml build` bundles them; resolved only when no override dir is set.
        summarizer_ref = bentoml.models.BentoModel(os.environ.get(SUMMARIZER_TAG_ENV) or SERVE.summarizer_tag)
        sentiment_ref = bentoml.models.BentoModel(os.environ.get(SENTIMENT_TAG_ENV) or SERVE.sentiment_tag)

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
                self.load_error = _one_line(exc)
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
        logger.error(
            "the models could not be loaded after %d attempts; /readyz and every model call answer 503 "
            "with the cause, and the server stops in %gs",
            attempts,
            SERVE.model_load_failure_exit_s,
        )
        timer = threading.Timer(SERVE.model_load_failure_exit_s, stop_server, args=(self.load_error,))
        timer.daemon = True
        timer.start()

    def _load(self) -> None:
        from reviewops.models.sentiment import SentimentClassifier
        from reviewops.models.summarizer import Summarizer

        sum_dir, self.summarizer_info = self._resolve(SUMMARIZER_DIR_ENV, "summarizer_ref")
        sent_dir, self.sentiment_info = self._resolve(SENTIMENT_DIR_ENV, "sentiment_ref")
        sum_cfg = _read_section(sum_dir, SummarizerConfig, SETTINGS.summarizer)
        sent_cfg = _read_section(sent_dir, SentimentConfig, SETTINGS.sentiment)
        logger.info("loading summarizer %s and sentiment %s", sum_dir, sent_dir)
        # The cause names the model: an orchestrator's event shows which file to fix.
        try:
            self.summarizer = Summarizer.load(sum_dir, sum_cfg)
        except Exception as exc:
            raise RuntimeError(f"summarizer {sum_dir}: {_one_line(exc)}") from exc
        try:
            self.classifier = SentimentClassifier.load(sent_dir, sent_cfg)
        except Exception as exc:
            raise RuntimeError(f"sentiment model {sent_dir}: {_one_line(exc)}") from exc

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
            raise RuntimeError(
                f"BentoML model {ref.tag} not found in the model store ({exc}); run "
                f"`reviewops package` or set {SUMMARIZER_DIR_ENV}/{SENTIMENT_DIR_ENV}"
            ) from None
        return Path(stored.path), _stored_info(stored)

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
                score=round(float(row[best]), 6),  # type: ignore[arg-type]
                probabilities={lab: round(float(p), 6) for lab, p in zip(LABELS, row, strict=True)},
            )
        )
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


def _remote_message(exc: BaseException) -> str:
    """The ``error`` text of a models-service answer (BentoML sends ``[{"error": ...}]`` for a 4xx)."""
    text = str(exc)
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, list) and data:
            data = data[0]
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return data["error"]
    return text


def failure_kind(exc: BaseException) -> str | None:
    """How a failed models-service call can be handled.

    Returns:
        ``"models"`` (the models are not loaded: answer at once), ``"connection"`` (the request
        may not have reached the models, or the connection dropped: retry), ``"shed"`` (the
        batcher refused it, 503: retry after a back-off) or None (anything else, timeouts
        included: no retry).
    """
    import aiohttp

    code = getattr(getattr(exc, "error_code", None), "value", None)
    if code == HTTPStatus.FAILED_DEPENDENCY:
        return "models"
    if isinstance(exc, TimeoutError):
        return None
    if isinstance(exc, aiohttp.ClientConnectionError):
        # ServerDisconnected, "Connector is closed", ClientOSError "Can not write request body", refused.
        return "connection"
    message = str(exc).lower()
    if "session is closed" in message or "connector is closed" in message or "disconnected" in message:
        return "connection"
    if code == 503:
        return "shed"
    return None


async def _wait_disconnected(request: Any, poll_s: float = 0.25) -> None:
    """Return once the client of ``request`` (a Starlette request) has gone away.

    Sleeps first: most requests are answered within one poll, and then cost only a timer.
    """
    while True:
        await asyncio.sleep(poll_s)
        if await request.is_disconnected():
            return


def _current_request() -> Any:
    """The Starlette request being served in this context; None for an in-process call."""
    try:
        return ReviewAnalyzer.context.request  # a context variable set by BentoML per request
    except LookupError:
        return None


@bentoml.service(
    name="review_analyzer", workers=1, traffic={"timeout": SERVE.timeout_s}, labels={"project": "reviewops"}
)
class ReviewAnalyzer:
    """Public API: /summarize, /sentiment, /analyze (plus BentoML's /healthz, /readyz, /metrics)."""

    models = bentoml.depends(ReviewModels)

    # Readiness: BentoML's /readyz here also probes the models service's /readyz (its
    # __is_ready__) when api_server.runner_probe is enabled (the default). An own async
    # __is_ready__ calling the dependency client hangs in BentoML 1.4.39, so there is none;
    # BearerAuthMiddleware adds the models' own cause to a 503 (models_failure).

    def __init__(self) -> None:
        self._info: dict[str, ModelInfo] | None = None
        self._info_task: asyncio.Task[dict[str, ModelInfo]] | None = None
        self._admission = {
            "sentiment_batch": Admission(
                "sentiment", SERVE.sentiment_max_inflight, SERVE.max_queued_requests, SERVE.max_queue_wait_s
            ),
            "summarize_batch": Admission(
                "summarizer", SERVE.summarizer_max_inflight, SERVE.max_queued_requests, SERVE.max_queue_wait_s
            ),
        }
        self._background: set[asyncio.Task[Any]] = set()
        shed_counter()  # in /metrics from the start, at 0

    # ------------------------------------------------------------------ calls to the models service

    async def _call(self, name: str, deadline: float | None = None, **kwargs: Any) -> Any:
        """Call a ReviewModels endpoint (BentoML's client when remote, a thread when in-process).

        Model calls are idempotent, so a call that failed on the connection or was shed by the
        batcher is retried ``serve.model_call_retries`` times with exponential backoff and jitter,
        never past ``deadline`` (a ``time.monotonic()`` value); the models stop generating at the
        deadline themselves, the wait here only adds a grace period as a safety net.
        """
        attempt = 0
        while True:
            try:
                call = getattr(self.models.to_async, name)(**kwargs)
                if deadline is None:
                    return await call
                return await asyncio.wait_for(call, max(0.0, deadline - time.monotonic()) + 10.0)
            except Exception as exc:
                kind = failure_kind(exc)
                if kind == "models":
                    raise RequestError(503, _remote_message(exc)) from None
                delay = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                if (
                    kind in ("connection", "shed")
                    and attempt < SERVE.model_call_retries
                    and (deadline is None or time.monotonic() + delay < deadline)
                ):
                    logger.info(
                        "models service call %s: %s (%s); retry %d after %.2fs",
                        name,
                        kind,
                        _one_line(exc, 200),
                        attempt + 1,
                        delay,
                    )
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                self._raise_for(name, exc, kind)

    def _raise_for(self, name: str, exc: Exception, kind: str | None) -> None:
        """Map a models-service failure to a RequestError (503 when overloaded or unreachable)."""
        code = getattr(getattr(exc, "error_code", None), "value", 500)
        logger.warning("models service call %s failed: %s", name, _one_line(exc))
        retry_after = self._admission.get(name, self._admission["sentiment_batch"]).retry_after()
        if isinstance(exc, TimeoutError):
            raise busy(f"the models service did not answer {name} in time; retry later", retry_after) from None
        if kind == "shed":
            raise busy(
                "the model server is overloaded (batch queue over its latency budget); retry later", retry_after
            ) from None
        if kind == "connection":
            raise busy("the models service is unreachable; retry later", retry_after) from None
        raise RequestError(
            503 if code >= 500 else code, f"the models service failed on {name}; see the server log"
        ) from None

    async def _model_info(self) -> dict[str, ModelInfo]:
        if self._info is None:
            # One fetch shared by every request of a burst (each used to make its own call).
            loop = asyncio.get_running_loop()
            task = self._info_task
            if task is None or task.get_loop() is not loop or (task.done() and (task.cancelled() or task.exception())):
                task = self._info_task = loop.create_task(self._fetch_info())
            self._info = await asyncio.shield(task)
        return self._info

    async def _fetch_info(self) -> dict[str, ModelInfo]:
        raw = await self._call("model_info")
        return {k: v if isinstance(v, ModelInfo) else ModelInfo.model_validate(v) for k, v in raw.items()}

    async def models_failure(self, timeout: float = 1.0) -> str | None:
        """Why the models service is not ready, in its own words; None when it is, or does not answer in time."""
        try:
            status = await asyncio.wait_for(self.models.to_async.load_status(), timeout)
        except Exception:  # starting up (not accepting yet) or gone: BentoML's own reason says enough
            return None
        if not isinstance(status, dict) or status.get("ready"):
            return None
        if status.get("error"):
            return f"models service: the models failed to load: {status['error']}"
        return "models service: the models are not loaded yet"

    # ------------------------------------------------------------------ backpressure, deadlines, cancellation

    @contextlib.asynccontextmanager
    async def _slot(self, name: str, units: int, deadline: float, endpoint: str) -> AsyncIterator[None]:
        admission = self._admission[name]
        try:
            taken = await admission.acquire(units, deadline)
        except Shed as shed:
            shed_counter().labels(endpoint, shed.reason).inc()
            why = {
                "queue_full": f"{admission.queued} requests are already waiting (serve.max_queued_requests)",
                "queue_timeout": f"no model slot within serve.max_queue_wait_s={SERVE.max_queue_wait_s:g}s",
                "deadline": f"no model slot within serve.request_deadline_s={SERVE.request_deadline_s:g}s",
            }
            logger.warning("%s shed (%s): %s", endpoint, shed.reason, why[shed.reason])
            raise busy(
                f"the {admission.name} model is busy: {why[shed.reason]}; retry later", shed.retry_after
            ) from None
        start = time.monotonic()
        try:
            yield
        finally:
            admission.release(taken, time.monotonic() - start)

    def _overdue(self, endpoint: str) -> RequestError:
        shed_counter().labels(endpoint, "deadline").inc()
        return busy(
            f"the summaries were not finished within serve.request_deadline_s="
            f"{SERVE.request_deadline_s:g}s; the server is busy: retry later",
            self._admission["summarize_batch"].retry_after(),
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # a reference, so the task is not garbage-collected mid-way
        task.add_done_callback(self._background.discard)

    async def _cancel_generation(self, request_id: str) -> None:
        """Tell the models to stop generating for ``request_id`` (best effort, bounded)."""
        try:
            await asyncio.wait_for(self.models.to_async.cancel(request_ids=[request_id]), 5.0)
        except Exception as exc:
            logger.info("cancel of request %s not delivered: %s", request_id, _one_line(exc, 200))

    async def _until_disconnect(self, work: Awaitable[Any], request_id: str | None = None) -> Any:
        """Await ``work``; stop it when the client goes away first (or BentoML cancels the request).

        Raises:
            RequestError: 503 when the client disconnected (nobody reads it; it names the case in the log).
        """
        task = asyncio.ensure_future(work)
        request = _current_request()
        watcher = asyncio.ensure_future(_wait_disconnected(request)) if request is not None else None
        try:
            done, _ = await asyncio.wait({task, watcher} - {None}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # BentoML's traffic timeout: same clean-up, then let it answer 504
            if request_id:
                self._spawn(self._cancel_generation(request_id))
            task.cancel()
            if watcher is not None:
                watcher.cancel()
            raise
        if task in done:
            if watcher is not None:
                watcher.cancel()
            return task.result()
        logger.info("client disconnected; cancelling its request%s", f" {request_id}" if request_id else "")
        if request_id:
            # Before cancelling the local wait: in-process the model call runs in a thread that only
            # this message can stop.
            await self._cancel_generation(request_id)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise RequestError(503, "the client disconnected; the request was cancelled")

    async def _sentiments(self, texts: list[str], deadline: float, endpoint: str) -> list[list[float]]:
        async with self._slot("sentiment_batch", len(texts), deadline, endpoint):
            return await self._call("sentiment_batch", deadline=deadline, texts=texts)

    async def _summaries(
        self, texts: list[str], tokens: list[int], deadline: float, endpoint: str, request_id: str
    ) -> list[str]:
        """Summaries of ``texts`` in chunks of at most one model batch, each chunk queued on its own.

        Re-queuing between chunks is what keeps a small request from waiting for all of a large
        one: it gets a turn after the chunk in flight. The models skip or stop items whose
        deadline passed (None), and the request is then answered 503.
        """
        out: list[str] = [""] * len(texts)
        epoch_deadline = time.time() + (deadline - time.monotonic())
        for chunk in summarize_chunks(tokens, SERVE.summarizer_max_batch_size, SERVE.summarizer_max_batch_tokens):
            if time.monotonic() >= deadline:
                raise self._overdue(endpoint)
            items = [SummarizeItem(text=texts[i], request_id=request_id, deadline=epoch_deadline) for i in chunk]
            async with self._slot("summarize_batch", len(chunk), deadline, endpoint):
                got = await self._call("summarize_batch", deadline=deadline, items=items)
            if len(got) != len(chunk) or any(summary is None for summary in got):
                raise self._overdue(endpoint)
            for i, summary in zip(chunk, got, strict=True):
                out[i] = summary
        return out

    def _limits(self, texts: list[str]) -> tuple[list[str], list[int]]:
        return check_texts(texts, SERVE.max_items, SERVE.max_text_chars, SERVE.on_too_long)

    def _summarize_tokens(self, texts: list[str]) -> list[int]:
        tokens = summarize_tokens(texts, SETTINGS.summarizer.max_source_tokens, SETTINGS.summarizer.prompt)
        check_summarize_budget(tokens, SERVE.max_summarize_tokens_per_request)
        return tokens

    # ------------------------------------------------------------------ the API

    @bentoml.api(route="/summarize")
    async def summarize(self, text: str | None = None, texts: list[str] | None = None) -> SummarizeResponse:
        """One-line summary (a review title) for one review (`text`) or many (`texts`)."""
        deadline = time.monotonic() + SERVE.request_deadline_s
        try:
            clean, truncated = self._limits(_one_or_many(text, texts))
            tokens = self._summarize_tokens(clean)
            request_id = uuid.uuid4().hex
            summaries = await self._until_disconnect(
                self._summaries(clean, tokens, deadline, "/summarize", request_id), request_id
            )
            info = await self._model_info()
        except RequestError as exc:
            return exc.response()  # type: ignore[return-value]
        return SummarizeResponse(summaries=list(summaries), truncated=truncated, model=info["summarizer"])

    @bentoml.api(route="/sentiment")
    async def sentiment(self, text: str | None = None, texts: list[str] | None = None) -> SentimentResponse:
        """Sentiment label and probabilities for one review (`text`) or many (`texts`)."""
        deadline = time.monotonic() + SERVE.request_deadline_s
        try:
            clean, truncated = self._limits(_one_or_many(text, texts))
            proba = await self._until_disconnect(self._sentiments(clean, deadline, "/sentiment"))
            info = await self._model_info()
        except RequestError as exc:
            return exc.response()  # type: ignore[return-value]
        return SentimentResponse(results=sentiment_results(proba), truncated=truncated, model=info["sentiment"])

    @bentoml.api(route="/analyze")
    async def analyze(self, reviews: list[ReviewIn]) -> AnalyzeResponse:
        """Summary + sentiment per review, and a product aggregate per product_id shared by 2+ reviews."""
        deadline = time.monotonic() + SERVE.request_deadline_s
        try:
            clean, truncated = self._limits([r.text for r in reviews])
            tokens = self._summarize_tokens(clean)
            request_id = uuid.uuid4().hex
            summaries, proba = await self._until_disconnect(self._both(clean, tokens, deadline, request_id), request_id)
            info = await self._model_info()
        except RequestError as exc:
            return exc.response()  # type: ignore[return-value]
        results = sentiment_results(proba)
        cut = set(truncated)
        out = [
            ReviewOut(review_id=r.review_id, product_id=r.product_id, summary=s, truncated=i in cut, **res.model_dump())
            for i, (r, s, res) in enumerate(zip(reviews, summaries, results, strict=True))
        ]
        products = product_aggregates(reviews, list(summaries), [r.label for r in results])
        return AnalyzeResponse(reviews=out, products=products, models=info)

    async def _both(
        self, texts: list[str], tokens: list[int], deadline: float, request_id: str
    ) -> tuple[list[str], list[list[float]]]:
        summaries = asyncio.ensure_future(self._summaries(texts, tokens, deadline, "/analyze", request_id))
        proba = asyncio.ensure_future(self._sentiments(texts, deadline, "/analyze"))
        try:
            return tuple(await asyncio.gather(summaries, proba))  # type: ignore[return-value]
        except BaseException:
            # gather leaves the other task running: stop it too.
            for task in (summaries, proba):
                task.cancel()
            raise


# --------------------------------------------------------------------------- auth + body limit


def api_token(token_env: str) -> str | None:
    """The bearer token from ``$token_env`` (surrounding whitespace dropped); None (auth off) when unset or blank."""
    return os.environ.get(token_env, "").strip() or None


def auth_off_message(token_env: str) -> str:
    """The one line that says the API is open (start-up log, ``/readyz`` body)."""
    return (
        f"auth is OFF: set {token_env} to require Authorization: Bearer <token> on every endpoint "
        "but /healthz, /livez and /readyz"
    )


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

    def __init__(
        self,
        app: Any,
        token_env: str = "REVIEWOPS_API_TOKEN",
        max_body_bytes: int = 8_000_000,
        open_paths: frozenset[str] = OPEN_PATHS,
    ) -> None:
        self.app = app
        self.token_env = token_env
        self.token = api_token(token_env)
        self.max_body_bytes = max_body_bytes
        self.open_paths = open_paths
        if self.token is None:
            logger.warning(auth_off_message(token_env))

    async def _reply(self, send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
        body = json.dumps({"error": message, "status": status}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
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

    def _amend(self, send: Any, path: str) -> Any:
        """Wrap ``send``: ``X-ReviewOps-Auth: off`` when auth is off; on /readyz also notes in the body.

        A /readyz 503 gets the models service's own cause (e.g. which model file failed to load),
        which BentoML's "Runners are not ready." does not say; with auth off a line says so.
        """
        held: dict[str, Any] | None = None
        parts: list[bytes] = []

        async def amended(message: dict[str, Any]) -> None:
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                if self.token is None:
                    message = {**message, "headers": [*message.get("headers", []), (b"x-reviewops-auth", b"off")]}
                if path == "/readyz":
                    held = message  # sent with the rewritten body, whose length changes
                    return
            elif kind == "http.response.body" and held is not None:
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                notes = []
                if held["status"] == 503:
                    cause = await _models_failure()
                    if cause:
                        notes.append(cause)
                if self.token is None:
                    notes.append(auth_off_message(self.token_env))
                original = b"".join(parts).strip()
                body = (original + b"\n" if original else b"") + "".join(f"{n}\n" for n in notes).encode()
                if not notes:
                    body = b"".join(parts)
                headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
                await send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                held = None
                message = {"type": "http.response.body", "body": body}
            await send(message)

        return amended

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if self.token is None or path == "/readyz":
            send = self._amend(send, path)
        if self.token is not None and path not in self.open_paths:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                await self._reply(
                    send,
                    401,
                    "missing or invalid bearer token (Authorization: Bearer <token>)",
                    [(b"www-authenticate", b'Bearer realm="reviewops"')],
                )
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


async def _models_failure() -> str | None:
    """The models service's cause for not being ready, asked through this worker's ReviewAnalyzer."""
    try:
        service = bentoml.get_current_service()
    except BentoMLException:  # no service instance in this process (a bare middleware)
        return None
    probe = getattr(service, "models_failure", None)
    return await probe() if probe is not None else None


ReviewAnalyzer.add_asgi_middleware(
    BearerAuthMiddleware, token_env=SERVE.auth_token_env, max_body_bytes=SERVE.max_body_bytes
)


# --------------------------------------------------------------------------- OpenAPI: errors + auth as served

BEARER_SCHEME = "bearerAuth"
_REF = "#/components/schemas/{}"
_ERROR_STATUSES = {
    401: "Missing or invalid bearer token (only when the server has a token set). "
    "Answered with `WWW-Authenticate: Bearer`.",
    413: "Too many reviews (serve.max_items), a text over serve.max_text_chars with "
    "serve.on_too_long=reject, a body over serve.max_body_bytes, or (/summarize, /analyze) more "
    "summarization work than serve.max_summarize_tokens_per_request.",
    422: "No review given, an empty review (nothing visible), or both `text` and `texts`.",
    503: "Busy: the wait queue for the models is full, or the request could not be served within "
    "serve.max_queue_wait_s / serve.request_deadline_s (with `Retry-After`); or the models service is "
    "unreachable, or its models failed to load (the error names the cause).",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (when the service is busy).",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorResponse": {
        "type": "object",
        "title": "ErrorResponse",
        "required": ["error", "status"],
        "description": "Every error the service itself answers (RequestError.response, auth, body limit).",
        "properties": {
            "error": {"type": "string", "title": "Error"},
            "status": {"type": "integer", "title": "Status", "description": "the HTTP status"},
        },
    },
    "ValidationIssue": {
        "type": "object",
        "title": "ValidationIssue",
        "required": ["type", "loc", "msg"],
        "description": "One pydantic validation error (input values are not echoed).",
        "properties": {
            "type": {"type": "string", "description": "e.g. string_type, json_invalid"},
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "where in the body, e.g. ['texts', 0]",
            },
            "msg": {"type": "string"},
            "url": {"type": "string"},
        },
    },
    "BadRequestResponse": {
        "type": "object",
        "title": "BadRequestResponse",
        "required": ["error"],
        "description": "A body that is not JSON or does not match the request schema: BentoML's answer, "
        "`error` says how many errors and `detail` lists them. A 400 passed on from the "
        "models service has `status` instead of `detail`.",
        "properties": {
            "error": {"type": "string", "title": "Error"},
            "detail": {"type": "array", "items": {"$ref": _REF.format("ValidationIssue")}},
            "status": {"type": "integer", "title": "Status"},
        },
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
    components["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": f"Required on every path but /healthz, /livez and /readyz when ${SERVE.auth_token_env} "
            "is set on the server; without it the API is open and says so (X-ReviewOps-Auth: off).",
        }
    }
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
                    responses["503"] = {
                        "description": "Not ready: the models service is not up or its models "
                        "are not loaded yet; a failed load adds its cause.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
            else:
                op["security"] = [{BEARER_SCHEME: []}]
                responses["401"] = unauthorized
            if "x-bentoml-name" in op:  # an API (infrastructure paths take no body and call no model)
                responses["400"] = _json_response(
                    "Invalid JSON or a body that does not match the request schema.", "BadRequestResponse"
                )
                for status in (413, 422, 503):
                    responses[str(status)] = _json_response(_ERROR_STATUSES[status], "ErrorResponse")
                responses["503"]["headers"] = _RETRY_AFTER
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
        issues = [
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_context=False)[:3]
        ]
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
