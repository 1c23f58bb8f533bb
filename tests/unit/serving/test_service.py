"""The BentoML services in-process: tiny models via the REVIEWOPS_*_DIR override, HTTP via to_asgi()."""

from __future__ import annotations

import asyncio
import json
import time
from http import HTTPStatus

import pytest

from reviewops.schema import LABELS
from reviewops.serving.errors import ModelsUnavailable
from reviewops.serving.limits import Admission
from reviewops.serving.schemas import ReviewIn, SentimentResponse, SummarizeItem


def test_summarize_shapes_and_versions(svc):
    out = asyncio.run(svc.summarize(texts=["Great coffee, smooth and rich.", "Arrived broken."]))
    assert len(out.summaries) == 2 and all(isinstance(s, str) and s for s in out.summaries)
    assert out.model.name == "tiny-sum" and out.model.version == "local" and out.model.source == "dir"
    assert out.truncated == []


def test_sentiment_probabilities(svc):
    out = asyncio.run(svc.sentiment(text="Terrible, never again"))
    assert len(out.results) == 1
    res = out.results[0]
    assert set(res.probabilities) == set(LABELS)
    assert sum(res.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert res.label == max(res.probabilities, key=res.probabilities.get)
    assert res.score == pytest.approx(res.probabilities[res.label])
    assert out.model.name == "tiny-sent"


def test_analyze_with_product_aggregate(svc):
    reviews = [
        ReviewIn(text="Great coffee, rich taste", review_id="r1", product_id="p1", rating=5),
        ReviewIn(text="Bitter coffee, awful taste", review_id="r2", product_id="p1", rating=1),
        ReviewIn(text="Nice mug", review_id="r3", product_id="p2"),
    ]
    out = asyncio.run(svc.analyze(reviews=reviews))
    assert [r.review_id for r in out.reviews] == ["r1", "r2", "r3"]
    assert all(r.summary and r.label in LABELS for r in out.reviews)
    # Only p1 is shared by two reviews.
    assert [p["product_id"] for p in out.products] == ["p1"]
    assert out.products[0]["n_reviews"] == 2 and out.products[0]["average_rating"] == 3.0
    assert set(out.models) == {"summarizer", "sentiment"}


def test_http_ok_and_truncation(client, service_module):
    limit = service_module.SERVE.max_text_chars
    resp = client.post("/sentiment", json={"texts": ["fine", "x" * (limit + 10)]})
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["results"]) == 2 and body["truncated"] == [1]
    assert body["model"]["name"] == "tiny-sent"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    spec = client.get("/docs.json").json()
    assert {"/summarize", "/sentiment", "/analyze"} <= set(spec["paths"])


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/sentiment", {"texts": [1, 2]}, 400),  # wrong item type
        ("/sentiment", {"texts": "not a list"}, 400),
        ("/analyze", {"reviews": [{"text": "x", "stars": 5}]}, 400),  # unknown field
        ("/analyze", {"reviews": [{"text": "x", "rating": 9}]}, 400),  # out of range
        ("/sentiment", {"texts": []}, 422),
        ("/sentiment", {}, 422),
        ("/summarize", {"text": "   "}, 422),
        ("/summarize", {"text": "a", "texts": ["b"]}, 422),
        ("/sentiment", {"texts": ["ok"] * 65}, 413),  # over serve.max_items (64)
    ],
)
def test_http_client_errors(client, path, payload, status):
    resp = client.post(path, json=payload)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert "error" in body and "Traceback" not in resp.text


def test_http_invalid_json(client):
    resp = client.post("/sentiment", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["detail"][0]["type"] == "json_invalid"
    # The worker is still fine afterwards.
    assert client.post("/sentiment", json={"text": "ok"}).status_code == 200


def test_http_body_too_large(client, service_module):
    size = service_module.SERVE.max_body_bytes + 1
    resp = client.post("/sentiment", content=b" " * size, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "max_body_bytes" in resp.json()["error"]


def test_bearer_auth(client):
    no_auth = {"Authorization": ""}
    assert client.get("/healthz", headers=no_auth).status_code == 200
    assert client.get("/readyz", headers=no_auth).status_code == 200
    denied = client.post("/sentiment", json={"text": "ok"}, headers=no_auth)
    assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in denied.json()["error"]
    assert client.post("/sentiment", json={"text": "ok"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/docs.json", headers=no_auth).status_code == 401
    assert client.post("/sentiment", json={"text": "ok"}).status_code == 200  # default header: the token


# --------------------------------------------------------------------------- backpressure: queue, don't shed

LONG = "The roast is smooth and rich, the bag reseals well and it arrived two days early. " * 62  # ~5,000 chars


class FakeModels:
    """Stands in for ReviewModels (remote or local): records calls, can fail or be slow."""

    def __init__(self, delay: float = 0.0, failures: list[Exception] | None = None) -> None:
        self.to_async = self
        self.delay = delay
        self.failures = list(failures or [])
        self.calls: list[tuple[str, int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.cancelled: list[str] = []

    async def _work(self, name: str, n: int) -> None:
        self.calls.append((name, n))
        if self.failures:
            raise self.failures.pop(0)
        self.in_flight += n
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= n

    async def sentiment_batch(self, texts):
        await self._work("sentiment_batch", len(texts))
        return [[0.1, 0.2, 0.7] for _ in texts]

    async def summarize_batch(self, items):
        await self._work("summarize_batch", len(items))
        return [f"summary of {item.text}" for item in items]

    async def model_info(self):
        info = {"name": "fake", "version": "1", "source": "dir"}
        return {"summarizer": info, "sentiment": info}

    async def cancel(self, request_ids):
        self.cancelled.extend(request_ids)
        return len(self.cancelled)

    async def load_status(self):
        return {"ready": True, "error": None}


def analyzer_with(service_module, models, **admission):
    """A ReviewAnalyzer whose models dependency is ``models`` (an instance attribute shadows the descriptor)."""
    svc = service_module.ReviewAnalyzer()
    svc.__dict__["models"] = models
    for name, (capacity, max_queued, max_wait_s) in admission.items():
        svc._admission[name] = Admission(name, capacity, max_queued, max_wait_s)
    return svc


def test_a_burst_is_queued_within_the_models_capacity(service_module):
    models = FakeModels(delay=0.02)
    svc = analyzer_with(service_module, models, sentiment_batch=(8, 500, 30))

    async def burst():
        return await asyncio.gather(*(svc.sentiment(text=f"review {i}") for i in range(200)))

    out = asyncio.run(burst())
    assert all(isinstance(r, SentimentResponse) for r in out)
    assert models.max_in_flight <= 8 and len(models.calls) == 200


@pytest.mark.parametrize(
    "make_exc",
    [
        lambda: __import__("aiohttp").ClientConnectionError("Connector is closed."),
        lambda: __import__("aiohttp").ClientOSError(32, "Can not write request body for http://127.0.0.1:3000/x"),
        lambda: __import__("aiohttp").ServerDisconnectedError(),
        lambda: RuntimeError("Session is closed"),
    ],
)
def test_connection_failures_to_the_models_are_retried(service_module, make_exc):
    models = FakeModels(failures=[make_exc(), make_exc()])
    svc = analyzer_with(service_module, models)
    out = asyncio.run(svc.sentiment(text="fine"))
    assert isinstance(out, SentimentResponse), getattr(out, "body", out)
    assert models.calls == [("sentiment_batch", 1)] * 3


def shed_count(endpoint, reason):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("reviewops_shed_requests_total", {"endpoint": endpoint, "reason": reason}) or 0


def test_shed_answers_503_with_retry_after_and_is_counted(service_module):
    models = FakeModels(delay=0.3)
    svc = analyzer_with(service_module, models, sentiment_batch=(1, 0, 30))  # no waiting room
    before = shed_count("/sentiment", "queue_full")

    async def two():
        return await asyncio.gather(svc.sentiment(text="a"), svc.sentiment(text="b"))

    first, second = asyncio.run(two())
    assert isinstance(first, SentimentResponse)
    assert second.status_code == 503 and int(second.headers["retry-after"]) >= 1
    assert "serve.max_queued_requests" in json.loads(second.body)["error"]
    assert shed_count("/sentiment", "queue_full") == before + 1


def test_shed_counter_is_in_the_default_registry(service_module):
    from prometheus_client import REGISTRY, generate_latest

    service_module.ReviewAnalyzer()
    text = generate_latest(REGISTRY).decode()
    assert 'reviewops_shed_requests_total{endpoint="/analyze",reason="deadline"}' in text


# --------------------------------------------------------------------------- summarize: bounded, fair, cancellable


def test_over_budget_summarize_gets_413(svc, client):
    out = asyncio.run(svc.summarize(texts=[LONG] * 64))
    assert out.status_code == 413
    assert "serve.max_summarize_tokens_per_request" in json.loads(out.body)["error"]
    resp = client.post("/analyze", json={"reviews": [{"text": LONG}] * 64})
    assert resp.status_code == 413 and "max_summarize_tokens_per_request" in resp.json()["error"]


def test_a_small_summarize_gets_a_turn_between_chunks_of_a_large_one(service_module):
    models = FakeModels(delay=0.1)
    svc = analyzer_with(service_module, models, summarize_batch=(8, 100, 30))

    async def scenario():
        large = asyncio.ensure_future(svc.summarize(texts=[f"long review {i}" for i in range(24)]))
        await asyncio.sleep(0.03)  # the large one's first chunk is in the models
        small = await svc.summarize(text="a small one")
        return await large, small

    large, small = asyncio.run(scenario())
    assert len(large.summaries) == 24 and small.summaries == ["summary of a small one"]
    # Chunks of one model batch; the small request went in right after the first chunk.
    assert models.calls == [
        ("summarize_batch", 8),
        ("summarize_batch", 1),
        ("summarize_batch", 8),
        ("summarize_batch", 8),
    ]
    assert large.summaries[23] == "summary of long review 23"


@pytest.fixture
def slow_summarizer(svc, monkeypatch):
    """The local tiny summarizer generating 240 tokens per text (~0.5 s per batch of 8 long texts)."""
    summarizer = svc.models.summarizer
    monkeypatch.setattr(summarizer, "cfg", summarizer.cfg.model_copy(update={"max_new_tokens": 240}))
    return summarizer


def cancelled_count(reason):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("reviewops_cancelled_generations_total", {"reason": reason}) or 0


def test_generation_stops_at_the_deadline(svc, slow_summarizer):
    models = svc.models
    items = [SummarizeItem(text=LONG, request_id="r-full") for _ in range(16)]
    start = time.monotonic()
    assert all(models.summarize_batch(items))
    full_s = time.monotonic() - start

    before = cancelled_count("deadline")
    items = [SummarizeItem(text=LONG, request_id="r-late", deadline=time.time() + 0.15) for _ in range(16)]
    start = time.monotonic()
    out = models.summarize_batch(items)
    assert out == [None] * 16 and time.monotonic() - start < full_s / 2, (time.monotonic() - start, full_s)
    assert cancelled_count("deadline") == before + 16
    # An item already past its deadline costs nothing.
    assert models.summarize_batch([SummarizeItem(text=LONG, deadline=time.time() - 1)]) == [None]


def test_api_deadline_answers_503_and_stops_generating(svc, service_module, slow_summarizer, monkeypatch):
    monkeypatch.setattr(service_module, "SERVE", service_module.SERVE.model_copy(update={"request_deadline_s": 0.3}))
    before = cancelled_count("deadline")
    start = time.monotonic()
    out = asyncio.run(svc.summarize(texts=[LONG] * 15))
    assert out.status_code == 503 and "serve.request_deadline_s" in json.loads(out.body)["error"]
    assert int(out.headers["retry-after"]) >= 1
    assert time.monotonic() - start < 1.0  # ~1 s of generation left undone
    assert cancelled_count("deadline") > before


def test_client_gone_cancels_generation(svc, service_module, slow_summarizer, monkeypatch):
    class GoneRequest:
        def __init__(self):
            self.at = time.monotonic() + 0.2

        async def is_disconnected(self):
            return time.monotonic() >= self.at

    monkeypatch.setattr(service_module, "_current_request", GoneRequest)
    before = cancelled_count("cancelled")
    start = time.monotonic()
    out = asyncio.run(svc.summarize(texts=[LONG] * 15))
    assert out.status_code == 503 and "disconnected" in json.loads(out.body)["error"]
    assert time.monotonic() - start < 1.0
    # The model call (a thread, in-process) ends at its next token and counts what it dropped.
    deadline = time.monotonic() + 2
    while cancelled_count("cancelled") == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cancelled_count("cancelled") > before


# --------------------------------------------------------------------------- a model that cannot be loaded


@pytest.fixture
def broken_models(service_module, tiny_dirs, tmp_path, monkeypatch):
    """ReviewModels over a summarizer whose model.safetensors is truncated; stop_server recorded, not run."""
    import shutil

    broken = tmp_path / "broken-sum"
    shutil.copytree(tiny_dirs[0], broken)
    weights = broken / "model.safetensors"
    with weights.open("r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    monkeypatch.setenv("REVIEWOPS_SUMMARIZER_DIR", str(broken))
    monkeypatch.setattr(
        service_module,
        "SERVE",
        service_module.SERVE.model_copy(update={"max_model_load_failures": 2, "model_load_failure_exit_s": 0.05}),
    )
    stops: list[str] = []
    monkeypatch.setattr(service_module, "stop_server", stops.append)
    models = service_module.ReviewModels()
    return models, stops


def test_load_failure_is_remembered_not_raised(broken_models):
    models, stops = broken_models
    assert not models.__is_ready__() and "broken-sum" in models.load_error and "SafetensorError" in models.load_error
    with pytest.raises(ModelsUnavailable) as exc:
        models.sentiment_batch(["fine"])
    assert exc.value.error_code == HTTPStatus.FAILED_DEPENDENCY and "broken-sum" in str(exc.value)
    assert asyncio.run(models.load_status()) == {"ready": False, "error": models.load_error}
    deadline = time.monotonic() + 5
    while not stops and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stops == [models.load_error]  # after serve.model_load_failure_exit_s, once


def test_api_answers_503_with_the_cause_at_once(broken_models, service_module):
    models, _ = broken_models
    svc = analyzer_with(service_module, models)
    start = time.monotonic()
    out = asyncio.run(svc.sentiment(text="fine"))
    assert out.status_code == 503 and "failed to load" in json.loads(out.body)["error"]
    assert "broken-sum" in json.loads(out.body)["error"] and time.monotonic() - start < 1
    assert "broken-sum" in asyncio.run(svc.models_failure())


def test_summarize_some_skips_and_stops_unwanted_texts(svc, slow_summarizer):
    from reviewops.models.summarizer import token_batches

    assert token_batches([0, 1, 2], [5, 10, 50], max_items=2, max_tokens=600) == [[0, 1], [2]]  # items
    assert token_batches([0, 1, 2], [20, 20, 25], max_items=8, max_tokens=60) == [[0, 1], [2]]  # 3 x 25 > 60
    assert token_batches([1, 0], [70, 5], max_items=8, max_tokens=60) == [[1], [0]]  # 2 x 70 > 60
    texts = [LONG] * 8 + ["short and sweet"]
    stop_at = time.monotonic() + 0.1
    out = slow_summarizer.summarize_some(texts, batch_size=8, wanted=lambda i: i == 8 or time.monotonic() < stop_at)
    assert out[:8] == [None] * 8 and isinstance(out[8], str) and out[8]
