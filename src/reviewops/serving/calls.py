"""The API's calls to the models service: admission, retries, deadlines, cancellation, model versions.

A model call that fails on the connection (or is shed by BentoML's batcher) is retried with
backoff: model calls are idempotent. A summarize request is sent in chunks of one model batch
that re-queue between each other, so a small request is not stuck behind a large one, and
generation stops for a request whose client went away or whose deadline
(``serve.request_deadline_s``) passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from reviewops.config import ServeConfig
from reviewops.serving.errors import RequestError, busy, failure_kind, one_line, remote_message
from reviewops.serving.limits import Admission, Shed, shed_counter, summarize_chunks
from reviewops.serving.schemas import ModelInfo, SummarizeItem

logger = logging.getLogger(__name__)


async def _wait_disconnected(request: Any, poll_s: float = 0.25) -> None:
    """Return once the client of ``request`` (a Starlette request) has gone away.

    Sleeps first: most requests are answered within one poll, and then cost only a timer.
    """
    while True:
        await asyncio.sleep(poll_s)
        if await request.is_disconnected():
            return


class ModelCalls:
    """Calls from the API service to the models service (BentoML's client when remote, a thread in-process).

    One per API service instance, used on its event loop: it holds what all requests share
    (the admission queues, the model versions, background tasks) and no per-request state.

    Args:
        models: returns the models dependency (``ReviewAnalyzer.models``) when called.
        admission: one :class:`Admission` per model endpoint (``sentiment_batch``, ``summarize_batch``).
        serve: the ``serve`` settings (retries, batch sizes, limits named in messages).
    """

    def __init__(self, models: Callable[[], Any], admission: dict[str, Admission], serve: ServeConfig) -> None:
        self._models = models
        self.admission = admission
        self.serve = serve
        self._info: dict[str, ModelInfo] | None = None
        self._info_task: asyncio.Task[dict[str, ModelInfo]] | None = None
        self._background: set[asyncio.Future[Any]] = set()

    # ------------------------------------------------------------------ one call, retried

    async def call(self, name: str, deadline: float | None = None, **kwargs: Any) -> Any:
        """Call a models-service endpoint, retried when the connection failed or the batcher shed it.

        Model calls are idempotent, so a call that failed on the connection or was shed by the
        batcher is retried ``serve.model_call_retries`` times with exponential backoff and jitter,
        never past ``deadline`` (a ``time.monotonic()`` value); the models stop generating at the
        deadline themselves, the wait here only adds a grace period as a safety net.

        Raises:
            RequestError: 503 (busy, unreachable, models not loaded) or the models' own 4xx.
        """
        attempt = 0
        while True:
            try:
                call = getattr(self._models().to_async, name)(**kwargs)
                if deadline is None:
                    return await call
                return await asyncio.wait_for(call, max(0.0, deadline - time.monotonic()) + 10.0)
            except Exception as exc:
                kind = failure_kind(exc)
                if kind == "models":
                    raise RequestError(503, remote_message(exc)) from None
                delay = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                if (
                    kind in ("connection", "shed")
                    and attempt < self.serve.model_call_retries
                    and (deadline is None or time.monotonic() + delay < deadline)
                ):
                    logger.info(
                        "models service call %s: %s (%s); retry %d after %.2fs",
                        name,
                        kind,
                        one_line(exc, 200),
                        attempt + 1,
                        delay,
                    )
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise self._error_for(name, exc, kind) from None

    def _error_for(self, name: str, exc: Exception, kind: str | None) -> RequestError:
        """The RequestError a models-service failure is answered with (503 when overloaded or unreachable)."""
        code = getattr(getattr(exc, "error_code", None), "value", 500)
        logger.warning("models service call %s failed: %s", name, one_line(exc))
        retry_after = self.admission.get(name, self.admission["sentiment_batch"]).retry_after()
        if isinstance(exc, TimeoutError):
            return busy(f"the models service did not answer {name} in time; retry later", retry_after)
        if kind == "shed":
            return busy(
                "the model server is overloaded (batch queue over its latency budget); retry later", retry_after
            )
        if kind == "connection":
            return busy("the models service is unreachable; retry later", retry_after)
        return RequestError(503 if code >= 500 else code, f"the models service failed on {name}; see the server log")

    # ------------------------------------------------------------------ model versions and readiness

    async def model_info(self) -> dict[str, ModelInfo]:
        """The loaded models' versions, fetched once and shared by every request of a burst."""
        if self._info is None:
            # One fetch shared by every request of a burst (each used to make its own call).
            loop = asyncio.get_running_loop()
            task = self._info_task
            if task is None or task.get_loop() is not loop or (task.done() and (task.cancelled() or task.exception())):
                task = self._info_task = loop.create_task(self._fetch_info())
            self._info = await asyncio.shield(task)
        return self._info

    async def _fetch_info(self) -> dict[str, ModelInfo]:
        raw = await self.call("model_info")
        return {k: v if isinstance(v, ModelInfo) else ModelInfo.model_validate(v) for k, v in raw.items()}

    async def models_failure(self, timeout: float = 1.0) -> str | None:
        """Why the models service is not ready, in its own words; None when it is, or does not answer in time."""
        try:
            status = await asyncio.wait_for(self._models().to_async.load_status(), timeout)
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
        admission = self.admission[name]
        try:
            taken = await admission.acquire(units, deadline)
        except Shed as shed:
            shed_counter().labels(endpoint, shed.reason).inc()
            why = {
                "queue_full": f"{admission.queued} requests are already waiting (serve.max_queued_requests)",
                "queue_timeout": f"no model slot within serve.max_queue_wait_s={self.serve.max_queue_wait_s:g}s",
                "deadline": f"no model slot within serve.request_deadline_s={self.serve.request_deadline_s:g}s",
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
            f"{self.serve.request_deadline_s:g}s; the server is busy: retry later",
            self.admission["summarize_batch"].retry_after(),
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # a reference, so the task is not garbage-collected mid-way
        task.add_done_callback(self._background.discard)

    async def _cancel_generation(self, request_id: str) -> None:
        """Tell the models to stop generating for ``request_id`` (best effort, bounded)."""
        try:
            await asyncio.wait_for(self._models().to_async.cancel(request_ids=[request_id]), 5.0)
        except Exception as exc:
            logger.info("cancel of request %s not delivered: %s", request_id, one_line(exc, 200))

    async def until_disconnect(self, work: Awaitable[Any], request: Any, request_id: str | None = None) -> Any:
        """Await ``work``; stop it when the client of ``request`` goes away first (or BentoML cancels the request).

        Args:
            work: the model calls of one API request.
            request: its Starlette request (None in-process: nobody to watch).
            request_id: the id its summarize items carry, to stop their generation.

        Raises:
            RequestError: 503 when the client disconnected (nobody reads it; it names the case in the log).
        """
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(_wait_disconnected(request)) if request is not None else None
        waiting: set[asyncio.Future[Any]] = {task} if watcher is None else {task, watcher}
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
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

    # ------------------------------------------------------------------ the work of one request

    async def sentiments(self, texts: list[str], deadline: float, endpoint: str) -> list[list[float]]:
        """Class probabilities per text, within the sentiment model's admission."""
        async with self._slot("sentiment_batch", len(texts), deadline, endpoint):
            return await self.call("sentiment_batch", deadline=deadline, texts=texts)

    async def summaries(
        self, texts: list[str], tokens: list[int], deadline: float, endpoint: str, request_id: str
    ) -> list[str]:
        """Summaries of ``texts`` in chunks of at most one model batch, each chunk queued on its own.

        Re-queuing between chunks is what keeps a small request from waiting for all of a large
        one: it gets a turn after the chunk in flight. The models skip or stop items whose
        deadline passed (None), and the request is then answered 503.
        """
        out: list[str] = [""] * len(texts)
        epoch_deadline = time.time() + (deadline - time.monotonic())
        serve = self.serve
        for chunk in summarize_chunks(tokens, serve.summarizer_max_batch_size, serve.summarizer_max_batch_tokens):
            if time.monotonic() >= deadline:
                raise self._overdue(endpoint)
            items = [SummarizeItem(text=texts[i], request_id=request_id, deadline=epoch_deadline) for i in chunk]
            async with self._slot("summarize_batch", len(chunk), deadline, endpoint):
                got = await self.call("summarize_batch", deadline=deadline, items=items)
            if len(got) != len(chunk) or any(summary is None for summary in got):
                raise self._overdue(endpoint)
            for i, summary in zip(chunk, got, strict=True):
                out[i] = summary
        return out

    async def both(
        self, texts: list[str], tokens: list[int], deadline: float, endpoint: str, request_id: str
    ) -> tuple[list[str], list[list[float]]]:
        """Summaries and sentiment of ``texts``, concurrently (both stop when either fails)."""
        summaries = asyncio.ensure_future(self.summaries(texts, tokens, deadline, endpoint, request_id))
        proba = asyncio.ensure_future(self.sentiments(texts, deadline, endpoint))
        try:
            done_summaries, done_proba = await asyncio.gather(summaries, proba)
        except BaseException:
            # gather leaves the other task running: stop it too.
            for task in (summaries, proba):
                task.cancel()
            raise
        return done_summaries, done_proba
