"""The BentoML service in-process: tiny models via the REVIEWOPS_*_DIR override, HTTP via to_asgi()."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from http import HTTPStatus

import pytest

from reviewops.schema import LABELS
from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-models")
    return build_tiny_causal_lm(root / "tiny-sum"), build_tiny_encoder(root / "tiny-sent")


@pytest.fixture(scope="module")
def service_module(tiny_dirs):
    mp = pytest.MonkeyPatch()
    mp.setenv("REVIEWOPS_SUMMARIZER_DIR", str(tiny_dirs[0]))
    mp.setenv("REVIEWOPS_SENTIMENT_DIR", str(tiny_dirs[1]))
    mp.delenv("REVIEWOPS_API_TOKEN", raising=False)
    from reviewops.serving import service

    yield service
    mp.undo()


@pytest.fixture(scope="module")
def svc(service_module):
    return service_module.ReviewAnalyzer()


TOKEN = "s3cret"


@pytest.fixture(scope="module")
def client(service_module):
    """One ASGI app per process (BentoML registers its Prometheus metrics once), with auth on."""
    from starlette.testclient import TestClient

    mp = pytest.MonkeyPatch()
    mp.setenv(service_module.SERVE.auth_token_env, TOKEN)
    with TestClient(service_module.ReviewAnalyzer.to_asgi(), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c
    mp.undo()


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


def test_analyze_with_product_aggregate(svc, service_module):
    ReviewIn = service_module.ReviewIn
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


def test_check_texts_limits(service_module):
    check, RequestError = service_module.check_texts, service_module.RequestError
    texts, cut = check(["abcdef", "ok"], max_items=5, max_chars=4, on_too_long="truncate")
    assert texts == ["abcd", "ok"] and cut == [0]
    with pytest.raises(RequestError) as exc:
        check(["abcdef"], max_items=5, max_chars=4, on_too_long="reject")
    assert exc.value.status == 413 and "review 0" in exc.value.message
    with pytest.raises(RequestError) as exc:
        check(["a"] * 6, max_items=5, max_chars=4, on_too_long="truncate")
    assert exc.value.status == 413
    with pytest.raises(RequestError) as exc:
        check(["ok", "   "], max_items=5, max_chars=4, on_too_long="truncate")
    assert exc.value.status == 422 and "review 1" in exc.value.message


@pytest.mark.parametrize(
    "blank",
    [
        "\x00",
        "\x00\x00 \x00",
        "\u200b",
        "\u200b\u200d\u200c",
        "\ufeff\u00ad\u2060",
        "\u200e\u202e \t\n",
        "\x01\x7f\x9f",
    ],
)
def test_check_texts_rejects_texts_with_nothing_visible(service_module, blank):
    check, RequestError = service_module.check_texts, service_module.RequestError
    with pytest.raises(RequestError) as exc:
        check(["fine", blank], max_items=5, max_chars=100, on_too_long="truncate")
    assert exc.value.status == 422 and exc.value.message.startswith("review 1 is empty")
    # One visible character is enough, joiners included in an emoji sequence.
    texts, _ = check(["\u200bok\x00", "👨\u200d👩\u200d👧"], max_items=5, max_chars=100, on_too_long="truncate")
    assert texts == ["\u200bok\x00", "👨\u200d👩\u200d👧"]


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


# --------------------------------------------------------------------------- body cap (bytes received)


class FakeApp:
    """An ASGI app that reads the whole body like BentoML does, then answers 200 with its size."""

    def __init__(self) -> None:
        self.calls = 0
        self.body = b""
        self.after_body: dict | None = None

    async def __call__(self, scope, receive, send):
        self.calls += 1
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.after_body = await receive()  # the server's next message: the disconnect
        payload = str(len(self.body)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def http_scope(path="/sentiment", headers=()):
    return {"type": "http", "method": "POST", "path": path, "headers": [(k.lower(), v) for k, v in headers]}


def drive(middleware, scope, chunks, endless=False):
    """Run ``middleware`` on one request whose body arrives as ``chunks``; returns (sent messages, bytes read).

    With ``endless`` the last chunk repeats, 1000 times in all (a large chunked upload; finite so a
    middleware that passes it on still finishes).
    """
    sent: list[dict] = []
    state = {"i": 0, "read": 0}
    n = 1000 if endless else len(chunks)

    async def receive():
        i = state["i"]
        if i >= n:
            return {"type": "http.disconnect"}
        state["i"] += 1
        chunk = chunks[min(i, len(chunks) - 1)]
        state["read"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": i < n - 1}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent, state["read"]


def response_of(sent):
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_body_cap_counts_chunked_bytes_and_stops_reading(service_module):
    app = FakeApp()
    mw = service_module.BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    # No Content-Length (Transfer-Encoding: chunked), a body that would go on forever.
    sent, read = drive(mw, http_scope(headers=[(b"transfer-encoding", b"chunked")]), [b"x" * 1000], endless=True)
    status, headers, body = response_of(sent)
    assert status == 413 and app.calls == 0
    assert "max_body_bytes" in json.loads(body)["error"] and json.loads(body)["status"] == 413
    assert int(headers[b"content-length"]) == len(body)
    # It read past the limit by at most one chunk, then stopped.
    assert 10_000 < read <= 11_000


def test_body_cap_passes_a_valid_body_under_the_limit_whole(service_module):
    app = FakeApp()
    mw = service_module.BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    payload = json.dumps({"texts": ["fine"] * 500}).encode()
    assert len(payload) < 10_000
    chunks = [payload[:3000], payload[3000:6000], payload[6000:]]
    sent, _ = drive(mw, http_scope(headers=[(b"content-length", str(len(payload)).encode())]), chunks)
    status, _, body = response_of(sent)
    assert status == 200 and app.calls == 1 and app.body == payload and body == str(len(payload)).encode()
    assert app.after_body == {"type": "http.disconnect"}  # later receive() calls reach the server
    # Exactly at the limit is still accepted.
    app = FakeApp()
    mw = service_module.BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    sent, _ = drive(mw, http_scope(), [b"y" * 4000, b"y" * 6000])
    assert response_of(sent)[0] == 200 and len(app.body) == 10_000


def test_body_cap_refuses_a_declared_length_without_reading(service_module):
    app = FakeApp()
    mw = service_module.BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    sent, read = drive(mw, http_scope(headers=[(b"content-length", b"50000000")]), [b"z" * 1000], endless=True)
    status, _, body = response_of(sent)
    assert status == 413 and read == 0 and app.calls == 0 and "50000000 bytes" in json.loads(body)["error"]


def test_body_cap_client_gone_mid_body_calls_nothing(service_module):
    app, sent, messages = (
        FakeApp(),
        [],
        iter([{"type": "http.request", "body": b"partial", "more_body": True}, {"type": "http.disconnect"}]),
    )

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    mw = service_module.BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    asyncio.run(mw(http_scope(), receive, send))
    assert sent == [] and app.calls == 0


def test_http_chunked_body_over_the_limit(client, service_module):
    limit = service_module.SERVE.max_body_bytes
    # Valid JSON (one long review, which would be truncated and answered 200), sent without Content-Length.
    payload = json.dumps({"text": "x" * (limit + 10)}).encode()

    def chunks():
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    resp = client.post("/sentiment", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "max_body_bytes" in resp.json()["error"]
    small = json.dumps({"text": "chunked and fine"}).encode()
    resp = client.post("/sentiment", content=iter([small[:7], small[7:]]), headers={"content-type": "application/json"})
    assert resp.status_code == 200 and len(resp.json()["results"]) == 1


# --------------------------------------------------------------------------- auth off is said out loud


async def readyz_app(scope, receive, send):
    """BentoML's /readyz: 200 with a bare newline, or 503 with a reason (``scope["test_down"]``)."""
    await receive()
    status, body = (503, b"Runners are not ready.") if scope.get("test_down") else (200, b"\n")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def test_auth_off_is_logged_and_flagged(service_module, monkeypatch, caplog):
    monkeypatch.delenv("REVIEWOPS_TEST_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING, logger="reviewops.serving.service"):
        mw = service_module.BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    warnings = [r.getMessage() for r in caplog.records if r.name == "reviewops.serving.service"]
    assert len(warnings) == 1 and warnings[0].startswith("auth is OFF: set REVIEWOPS_TEST_TOKEN")

    status, headers, body = response_of(drive(mw, http_scope("/readyz"), [b""])[0])
    assert status == 200 and headers[b"x-reviewops-auth"] == b"off"
    assert body.startswith(b"auth is OFF: set REVIEWOPS_TEST_TOKEN") and int(headers[b"content-length"]) == len(body)
    # Not ready stays not ready, BentoML's reason first.
    status, headers, body = response_of(drive(mw, {**http_scope("/readyz"), "test_down": True}, [b""])[0])
    assert status == 503 and body.startswith(b"Runners are not ready.\nauth is OFF")
    assert int(headers[b"content-length"]) == len(body)
    # Every other response carries the header, its body untouched.
    status, headers, body = response_of(drive(mw, http_scope("/sentiment"), [b"{}"])[0])
    assert headers[b"x-reviewops-auth"] == b"off" and body == b"\n"


def test_auth_on_no_flag_and_no_warning(service_module, monkeypatch, caplog):
    monkeypatch.setenv("REVIEWOPS_TEST_TOKEN", " t0k ")
    with caplog.at_level(logging.WARNING, logger="reviewops.serving.service"):
        mw = service_module.BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    assert mw.token == "t0k" and not [r for r in caplog.records if r.name == "reviewops.serving.service"]
    status, headers, body = response_of(drive(mw, http_scope("/readyz"), [b""])[0])
    assert status == 200 and b"x-reviewops-auth" not in headers and body == b"\n"
    assert response_of(drive(mw, http_scope("/sentiment"), [b"{}"])[0])[0] == 401
    ok = drive(mw, http_scope("/sentiment", [(b"authorization", b"Bearer t0k")]), [b"{}"])[0]
    assert response_of(ok)[0] == 200


# --------------------------------------------------------------------------- the OpenAPI schema is true


def response_schema(spec, path, status):
    """The JSON schema the spec documents for ``status`` on ``POST path``, resolvable on its own."""
    responses = spec["paths"][path]["post"]["responses"]
    assert str(status) in responses, f"{status} not documented for {path}: {sorted(responses)}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


def test_openapi_declares_bearer_auth(client):
    spec = client.get("/docs.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    for path in ("/summarize", "/sentiment", "/analyze"):
        op = spec["paths"][path]["post"]
        assert op["security"] == [{"bearerAuth": []}] and op["requestBody"]["required"] is True
    assert spec["paths"]["/metrics"]["get"]["security"] == [{"bearerAuth": []}]
    for path in ("/healthz", "/livez", "/readyz"):
        assert spec["paths"][path]["get"]["security"] == []


@pytest.mark.parametrize(
    ("path", "request_kwargs", "status"),
    [
        ("/sentiment", {"json": {"texts": [1, 2]}}, 400),
        ("/analyze", {"json": {"reviews": [{"text": "x", "stars": 5}]}}, 400),
        ("/sentiment", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ("/sentiment", {"json": {"text": "ok"}, "headers": {"Authorization": "Bearer wrong"}}, 401),
        ("/summarize", {"json": {"texts": ["ok"] * 65}}, 413),
        ("/sentiment", {"content": b" " * 8_000_001, "headers": {"content-type": "application/json"}}, 413),
        ("/analyze", {"json": {"reviews": []}}, 422),
        ("/summarize", {"json": {"text": "a", "texts": ["b"]}}, 422),
    ],
)
def test_error_bodies_match_the_documented_schema(client, path, request_kwargs, status):
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/docs.json").json()
    resp = client.post(path, **request_kwargs)
    assert resp.status_code == status, resp.text
    jsonschema.validate(resp.json(), response_schema(spec, path, status))
    if status != 400:
        assert resp.json()["status"] == status


def test_503_is_documented_as_sent(client, service_module):
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/docs.json").json()
    body = json.loads(service_module.busy("overloaded", 3).response().body)
    for path in ("/summarize", "/sentiment", "/analyze"):
        jsonschema.validate(body, response_schema(spec, path, 503))
        assert "Retry-After" in spec["paths"][path]["post"]["responses"]["503"]["headers"]
    assert service_module.busy("overloaded", 3).response().headers["retry-after"] == "3"


def test_bento_openapi_yaml_is_amended(service_module):
    import yaml

    dumped = yaml.safe_load(yaml.dump(service_module.ReviewAnalyzer.openapi_spec))  # what `bentoml build` writes
    assert "bearerAuth" in dumped["components"]["securitySchemes"]
    assert set(dumped["paths"]["/analyze"]["post"]["responses"]) >= {"200", "400", "401", "413", "422", "503"}


# --------------------------------------------------------------------------- one log line per client error


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_invalid_body_is_logged_in_one_line(client, service_module):
    bento_logger = logging.getLogger(service_module.BENTOML_REQUEST_LOGGER)
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


def test_server_errors_keep_their_traceback(service_module):
    """A RuntimeError, or a ValidationError raised by the service's own code (BentoML answers it 400 too),
    is a server bug: its record keeps the traceback and level."""
    import sys

    def boom():
        raise RuntimeError("boom")

    log_filter = service_module.OneLineClientErrors()
    for raise_it in (boom, lambda: service_module.SentimentResult(label="bad", score=1, probabilities={})):
        try:
            raise_it()
        except Exception:
            exc_info = sys.exc_info()
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/sentiment", "POST"), exc_info
        )
        assert log_filter.filter(record) and record.exc_info is exc_info and record.levelno == logging.ERROR


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
        svc._admission[name] = service_module.Admission(name, capacity, max_queued, max_wait_s)
    return svc


def test_admission_is_fifo_and_bounded(service_module):
    Admission, Shed = service_module.Admission, service_module.Shed

    async def scenario():
        adm = Admission("t", capacity=2, max_queued=2, max_wait_s=5)
        assert await adm.acquire(2) == 2
        granted: list[str] = []

        async def waiter(name, units):
            taken = await adm.acquire(units)
            granted.append(name)
            return taken

        big = asyncio.ensure_future(waiter("big", 9))  # more than the capacity: takes all of it
        await asyncio.sleep(0)
        small = asyncio.ensure_future(waiter("small", 1))
        await asyncio.sleep(0)
        assert adm.queued == 2
        with pytest.raises(Shed) as shed:
            await adm.acquire(1)
        assert shed.value.reason == "queue_full" and shed.value.retry_after >= 1
        adm.release(2)
        assert await big == 2 and not small.done()  # FIFO: the small one does not overtake
        adm.release(2)
        assert await small == 1 and granted == ["big", "small"]
        adm.release(1)
        assert adm.in_flight == 0 and adm.queued == 0

    asyncio.run(scenario())


def test_admission_wait_is_bounded_and_cancellable(service_module):
    Admission, Shed = service_module.Admission, service_module.Shed

    async def scenario():
        adm = Admission("t", capacity=1, max_queued=5, max_wait_s=0.2)
        await adm.acquire(1)
        start = time.monotonic()
        with pytest.raises(Shed) as shed:
            await adm.acquire(1)
        assert shed.value.reason == "queue_timeout" and 0.15 < time.monotonic() - start < 1
        with pytest.raises(Shed) as shed:
            await adm.acquire(1, deadline=time.monotonic() + 0.05)
        assert shed.value.reason == "deadline"
        gone = asyncio.ensure_future(adm.acquire(1))
        await asyncio.sleep(0.01)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert adm.queued == 0
        adm.release(1)
        async with adm.slot(1):
            assert adm.in_flight == 1
        assert adm.in_flight == 0

    asyncio.run(scenario())


def test_a_burst_is_queued_within_the_models_capacity(service_module):
    models = FakeModels(delay=0.02)
    svc = analyzer_with(service_module, models, sentiment_batch=(8, 500, 30))

    async def burst():
        return await asyncio.gather(*(svc.sentiment(text=f"review {i}") for i in range(200)))

    out = asyncio.run(burst())
    assert all(isinstance(r, service_module.SentimentResponse) for r in out)
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
    assert isinstance(out, service_module.SentimentResponse), getattr(out, "body", out)
    assert models.calls == [("sentiment_batch", 1)] * 3


def test_failure_kinds(service_module):
    import aiohttp
    from bentoml.exceptions import BentoMLException

    kind = service_module.failure_kind
    assert kind(BentoMLException("overloaded", error_code=HTTPStatus.SERVICE_UNAVAILABLE)) == "shed"
    assert kind(service_module.ModelsUnavailable("no model")) == "models"
    assert kind(aiohttp.ClientConnectionError("Connector is closed.")) == "connection"
    assert kind(aiohttp.ServerTimeoutError("read timeout")) is None  # a timeout is not retried
    assert kind(TimeoutError()) is None and kind(ValueError("x")) is None
    assert kind(BentoMLException("boom", error_code=HTTPStatus.INTERNAL_SERVER_ERROR)) is None


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
    assert isinstance(first, service_module.SentimentResponse)
    assert second.status_code == 503 and int(second.headers["retry-after"]) >= 1
    assert "serve.max_queued_requests" in json.loads(second.body)["error"]
    assert shed_count("/sentiment", "queue_full") == before + 1


def test_shed_counter_is_in_the_default_registry(service_module):
    from prometheus_client import REGISTRY, generate_latest

    service_module.ReviewAnalyzer()
    text = generate_latest(REGISTRY).decode()
    assert 'reviewops_shed_requests_total{endpoint="/analyze",reason="deadline"}' in text


# --------------------------------------------------------------------------- summarize: bounded, fair, cancellable


def test_over_budget_summarize_gets_413(svc, client, service_module):
    out = asyncio.run(svc.summarize(texts=[LONG] * 64))
    assert out.status_code == 413
    assert "serve.max_summarize_tokens_per_request" in json.loads(out.body)["error"]
    resp = client.post("/analyze", json={"reviews": [{"text": LONG}] * 64})
    assert resp.status_code == 413 and "max_summarize_tokens_per_request" in resp.json()["error"]


def test_summarize_budget_and_chunks(service_module):
    tokens = service_module.summarize_tokens(["short review", LONG, "味道很好" * 100], 256, "Title: {text}")
    assert tokens[0] < 10 and tokens[1] == tokens[2] == 256 + 2  # capped at max_source_tokens, + the prompt
    service_module.check_summarize_budget(tokens, sum(tokens))
    with pytest.raises(service_module.RequestError) as exc:
        service_module.check_summarize_budget(tokens, sum(tokens) - 1)
    assert exc.value.status == 413
    chunks = service_module.summarize_chunks([100] * 20 + [300], max_items=8, max_tokens=800)
    assert chunks == [list(range(8)), list(range(8, 16)), list(range(16, 20)), [20]]


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


def test_generation_stops_at_the_deadline(svc, service_module, slow_summarizer):
    models = svc.models
    items = [service_module.SummarizeItem(text=LONG, request_id="r-full") for _ in range(16)]
    start = time.monotonic()
    assert all(models.summarize_batch(items))
    full_s = time.monotonic() - start

    before = cancelled_count("deadline")
    items = [
        service_module.SummarizeItem(text=LONG, request_id="r-late", deadline=time.time() + 0.15) for _ in range(16)
    ]
    start = time.monotonic()
    out = models.summarize_batch(items)
    assert out == [None] * 16 and time.monotonic() - start < full_s / 2, (time.monotonic() - start, full_s)
    assert cancelled_count("deadline") == before + 16
    # An item already past its deadline costs nothing.
    assert models.summarize_batch([service_module.SummarizeItem(text=LONG, deadline=time.time() - 1)]) == [None]


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


def test_load_failure_is_remembered_not_raised(broken_models, service_module):
    models, stops = broken_models
    assert not models.__is_ready__() and "broken-sum" in models.load_error and "SafetensorError" in models.load_error
    with pytest.raises(service_module.ModelsUnavailable) as exc:
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


def test_readyz_503_names_the_models_cause(service_module, monkeypatch):
    async def cause():
        return "models service: the models failed to load: summarizer /m: SafetensorError: incomplete metadata"

    monkeypatch.setattr(service_module, "_models_failure", cause)
    monkeypatch.setenv("REVIEWOPS_TEST_TOKEN", "t0k")
    mw = service_module.BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    status, headers, body = response_of(drive(mw, {**http_scope("/readyz"), "test_down": True}, [b""])[0])
    assert status == 503 and body.startswith(b"Runners are not ready.\nmodels service: the models failed to load")
    assert int(headers[b"content-length"]) == len(body)
    status, _, body = response_of(drive(mw, http_scope("/readyz"), [b""])[0])
    assert status == 200 and body == b"\n"


def test_stop_server_only_signals_its_own_supervisor(service_module, monkeypatch):
    import os
    import signal

    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.delenv(service_module.SUPERVISOR_ENV, raising=False)
    assert service_module.stop_server("cause") is False and sent == []
    monkeypatch.setenv(service_module.SUPERVISOR_ENV, str(os.getppid() + 1))
    assert service_module.stop_server("cause") is False and sent == []
    monkeypatch.setenv(service_module.SUPERVISOR_ENV, str(os.getppid()))
    assert service_module.stop_server("cause") is True and sent == [(os.getppid(), signal.SIGUSR2)]


def test_summarize_some_skips_and_stops_unwanted_texts(svc, slow_summarizer):
    from reviewops.models.summarizer import token_batches

    assert token_batches([0, 1, 2], [5, 10, 50], max_items=2, max_tokens=600) == [[0, 1], [2]]  # items
    assert token_batches([0, 1, 2], [20, 20, 25], max_items=8, max_tokens=60) == [[0, 1], [2]]  # 3 x 25 > 60
    assert token_batches([1, 0], [70, 5], max_items=8, max_tokens=60) == [[1], [0]]  # 2 x 70 > 60
    texts = [LONG] * 8 + ["short and sweet"]
    stop_at = time.monotonic() + 0.1
    out = slow_summarizer.summarize_some(texts, batch_size=8, wanted=lambda i: i == 8 or time.monotonic() < stop_at)
    assert out[:8] == [None] * 8 and isinstance(out[8], str) and out[8]
