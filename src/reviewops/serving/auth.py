"""Bearer-token auth and the request body cap, as a pure ASGI middleware in front of the API.

With ``$REVIEWOPS_API_TOKEN`` (``serve.auth_token_env``) set, every path except ``/healthz``,
``/livez`` and ``/readyz`` needs ``Authorization: Bearer``; without it the API is open, and the
worker says so (a WARNING at start-up, ``X-ReviewOps-Auth: off`` on every response, a line in
``/readyz``'s body). Request bodies are capped at ``serve.max_body_bytes`` bytes received (413),
chunked uploads included.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException

from reviewops.serving.errors import RequestError

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


def api_token(token_env: str) -> str | None:
    """The bearer token from ``$token_env`` (surrounding whitespace dropped); None (auth off) when unset or blank."""
    return os.environ.get(token_env, "").strip() or None


def auth_off_message(token_env: str) -> str:
    """The one line that says the API is open (start-up log, ``/readyz`` body)."""
    return (
        f"auth is OFF: set {token_env} to require Authorization: Bearer <token> on every endpoint "
        "but /healthz, /livez and /readyz"
    )


async def _models_failure() -> str | None:
    """The models service's cause for not being ready, asked through this worker's ReviewAnalyzer."""
    try:
        service = bentoml.get_current_service()
    except BentoMLException:  # no service instance in this process (a bare middleware)
        return None
    probe = getattr(service, "models_failure", None)
    return await probe() if probe is not None else None


def _with_notes(parts: list[bytes], notes: list[str]) -> bytes:
    """A plain-text body with one line per note appended (the body unchanged when there is none)."""
    if not notes:
        return b"".join(parts)
    original = b"".join(parts).strip()
    return (original + b"\n" if original else b"") + "".join(f"{n}\n" for n in notes).encode()


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

    async def _readyz_notes(self, status: int) -> list[str]:
        """What /readyz's body adds: the models' own cause of a 503, and that auth is off."""
        notes = []
        if status == 503:
            cause = await _models_failure()
            if cause:
                notes.append(cause)
        if self.token is None:
            notes.append(auth_off_message(self.token_env))
        return notes

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
                body = _with_notes(parts, await self._readyz_notes(held["status"]))
                headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
                await send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                held = None
                message = {"type": "http.response.body", "body": body}
            await send(message)

        return amended

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, given = auth.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), (self.token or "").encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if self.token is None or path == "/readyz":
            send = self._amend(send, path)
        if self.token is not None and path not in self.open_paths and not self._authorized(headers):
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
