"""Calls from the API to the models service: which failures are retried and how each one is answered."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

import pytest
from bentoml.exceptions import BentoMLException

from reviewops.config import ServeConfig
from reviewops.serving.calls import ModelCalls
from reviewops.serving.errors import ModelsUnavailable, RequestError
from reviewops.serving.limits import Admission


class Failing:
    """A models dependency whose sentiment_batch raises the given exceptions in turn, then answers."""

    def __init__(self, *failures: BaseException) -> None:
        self.to_async = self
        self.failures = list(failures)
        self.calls = 0

    async def sentiment_batch(self, texts):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [[0.1, 0.2, 0.7] for _ in texts]


def calls_to(models, retries=2) -> ModelCalls:
    admission = {"sentiment_batch": Admission("sentiment", 4, 4, 1.0), "summarize_batch": Admission("s", 1, 1, 1.0)}
    return ModelCalls(lambda: models, admission, ServeConfig(model_call_retries=retries))


def failed(models, retries=2) -> RequestError:
    with pytest.raises(RequestError) as exc:
        asyncio.run(calls_to(models, retries).call("sentiment_batch", texts=["x"]))
    return exc.value


def test_shed_calls_are_retried_then_answered_busy():
    shed = BentoMLException("overloaded", error_code=HTTPStatus.SERVICE_UNAVAILABLE)
    models = Failing(shed, shed)
    assert asyncio.run(calls_to(models).call("sentiment_batch", texts=["x"])) == [[0.1, 0.2, 0.7]]
    assert models.calls == 3
    models = Failing(*[shed] * 3)
    err = failed(models)
    assert models.calls == 3 and err.status == 503 and "overloaded" in err.message
    assert int(err.headers["Retry-After"]) >= 1


def test_models_not_loaded_is_answered_at_once_with_their_cause():
    models = Failing(ModelsUnavailable(json.dumps([{"error": "the models failed to load: summarizer /m: boom"}])))
    err = failed(models)
    assert models.calls == 1 and err.status == 503 and err.message == "the models failed to load: summarizer /m: boom"


def test_timeouts_and_other_failures_are_not_retried():
    models = Failing(TimeoutError())
    err = failed(models)
    assert models.calls == 1 and err.status == 503 and "did not answer sentiment_batch in time" in err.message
    models = Failing(BentoMLException("bad", error_code=HTTPStatus.BAD_REQUEST))
    err = failed(models)
    assert models.calls == 1 and err.status == 400 and "see the server log" in err.message
    err = failed(Failing(RuntimeError("boom")))
    assert err.status == 503 and err.message == "the models service failed on sentiment_batch; see the server log"
