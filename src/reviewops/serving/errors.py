"""How the service fails: the error bodies it answers, how a models-service failure is classified, one-line logs.

Every error the service answers itself is ``{"error": message, "status": code}`` (:class:`RequestError`),
never a traceback. A failed call from the API to the models service is classified by
:func:`failure_kind` (retry it, answer 503 at once, or give up). BentoML logs each rejected request
with a full traceback; :class:`OneLineClientErrors` turns a client's error into one WARNING line.
"""

from __future__ import annotations

import contextlib
import json
import logging
from http import HTTPStatus
from typing import Any

from bentoml.exceptions import BentoMLException

# The logger of bentoml._internal.server.http_app.log_exception, which the API server calls for each
# failed request (bentoml 1.4).
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"


class RequestError(Exception):
    """An error answered with ``{"error": message, "status": code}`` (and ``headers``), no traceback."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> Any:
        """The Starlette ``JSONResponse`` to answer with.

        Typed ``Any``: an API method returns it in place of the response model it declares
        (BentoML passes a Starlette response through unchanged).
        """
        from starlette.responses import JSONResponse

        return JSONResponse(
            {"error": self.message, "status": self.status}, status_code=self.status, headers=self.headers or None
        )


def busy(message: str, retry_after: int) -> RequestError:
    """A 503 that tells the client when to come back."""
    return RequestError(503, message, {"Retry-After": str(max(1, int(retry_after)))})


class ModelsUnavailable(BentoMLException):
    """Raised by the models service while its models are not loaded.

    424 between the two services on purpose: BentoML replaces the message of every 5xx answer
    with a generic one, and the cause is what the API has to pass on (as a 503).
    """

    error_code = HTTPStatus.FAILED_DEPENDENCY


def one_line(exc: BaseException, limit: int = 500) -> str:
    """``"ExcType: message"`` on one line (whitespace collapsed), at most ``limit`` characters."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]


def remote_message(exc: BaseException) -> str:
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


def install_one_line_client_errors() -> None:
    """Attach :class:`OneLineClientErrors` to BentoML's request logger (once per process)."""
    request_logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, OneLineClientErrors) for f in request_logger.filters):
        request_logger.addFilter(OneLineClientErrors())


def _client_error(exc: BaseException) -> tuple[int | None, str]:
    """(status, one-line summary) for an exception BentoML answers with a 4xx; (None, "") otherwise."""
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
