"""Request limits and backpressure: input checks, summarize work budgets and chunks, FIFO admission, counters.

Input: at most ``serve.max_items`` reviews per request, each cut (or refused) at
``serve.max_text_chars``; a summarize request is bounded by ``serve.max_summarize_tokens_per_request``
estimated prompt tokens (else 413) and sent to the models in chunks of one model batch.

Under load (:class:`Admission`): the API lets at most ``serve.sentiment_max_inflight`` /
``serve.summarizer_max_inflight`` texts into the models service at once, so BentoML's batcher
never has more queued than it can serve within its latency budget; the rest wait in a FIFO
queue (``serve.max_queued_requests``, ``serve.max_queue_wait_s``) and are answered 503 with
``Retry-After`` only when that queue is full or the wait too long (counted in ``/metrics`` as
``reviewops_shed_requests_total``; generations stopped early as ``reviewops_cancelled_generations_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Literal

from reviewops.models.summarizer import token_batches
from reviewops.serving.errors import RequestError
from reviewops.text import CJK_CHAR, has_visible_text

API_PATHS = ("/summarize", "/sentiment", "/analyze")

# --------------------------------------------------------------------------- request limits


def one_or_many(text: str | None, texts: list[str] | None) -> list[str]:
    """The reviews of a request that sends ``text`` (one) or ``texts`` (a list).

    Raises:
        RequestError: 422 when both are sent.
    """
    if text is not None and texts is not None:
        raise RequestError(422, "send either `text` or `texts`, not both")
    if text is not None:
        return [text]
    return list(texts or [])


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
