"""How failures are classified (retry, answer at once) and logged (one line per client error)."""

from __future__ import annotations

import logging
from http import HTTPStatus

from reviewops.serving.errors import BENTOML_REQUEST_LOGGER, ModelsUnavailable, OneLineClientErrors, failure_kind
from reviewops.serving.schemas import SentimentResult


def test_failure_kinds():
    import aiohttp
    from bentoml.exceptions import BentoMLException

    kind = failure_kind
    assert kind(BentoMLException("overloaded", error_code=HTTPStatus.SERVICE_UNAVAILABLE)) == "shed"
    assert kind(ModelsUnavailable("no model")) == "models"
    assert kind(aiohttp.ClientConnectionError("Connector is closed.")) == "connection"
    assert kind(aiohttp.ServerTimeoutError("read timeout")) is None  # a timeout is not retried
    assert kind(TimeoutError()) is None and kind(ValueError("x")) is None
    assert kind(BentoMLException("boom", error_code=HTTPStatus.INTERNAL_SERVER_ERROR)) is None


# --------------------------------------------------------------------------- one log line per client error


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_invalid_body_is_logged_in_one_line(client):
    bento_logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    handler = ListHandler()
    bento_logger.addHandler(handler)
    try:
        assert client.post("/sentiment", json={"texts": [1, "ok"]}).status_code == 400
        bad_json = client.post("/sentiment", content=b"{oops", headers={"content-type": "application/json"})
        assert bad_json.status_code == 400
    finally:
        bento_logger.removeHandler(handler)
    assert len(handler.records) == 2
    for record in handler.records:
        line = logging.Formatter().format(record)
        assert "\n" not in line and "Traceback" not in line and record.levelno == logging.WARNING
        assert line.startswith("Exception on /sentiment [POST]: 400 ")
    assert "texts.0: Input should be a valid string" in handler.records[0].getMessage()
    assert "json_invalid" not in handler.records[1].getMessage() and "Invalid JSON" in handler.records[1].getMessage()


def test_server_errors_keep_their_traceback():
    """A RuntimeError, or a ValidationError raised by the service's own code (BentoML answers it 400 too),
    is a server bug: its record keeps the traceback and level."""
    import sys

    def boom():
        raise RuntimeError("boom")

    log_filter = OneLineClientErrors()
    for raise_it in (boom, lambda: SentimentResult(label="bad", score=1, probabilities={})):
        try:
            raise_it()
        except Exception:
            exc_info = sys.exc_info()
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/sentiment", "POST"), exc_info
        )
        assert log_filter.filter(record) and record.exc_info is exc_info and record.levelno == logging.ERROR
