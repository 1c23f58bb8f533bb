"""The BentoML service in-process: tiny models via the REVIEWOPS_*_DIR override, HTTP via to_asgi()."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from reviewops.models.tiny import build_tiny_causal_lm, build_tiny_encoder
from reviewops.schema import LABELS


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
    from reviewops import service

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
    reviews = [ReviewIn(text="Great coffee, rich taste", review_id="r1", product_id="p1", rating=5),
               ReviewIn(text="Bitter coffee, awful taste", review_id="r2", product_id="p1", rating=1),
               ReviewIn(text="Nice mug", review_id="r3", product_id="p2")]
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


@pytest.mark.parametrize("blank", ["\x00", "\x00\x00 \x00", "\u200b", "\u200b\u200d\u200c", "\ufeff\u00ad\u2060",
                                   "\u200e\u202e \t\n", "\x01\x7f\x9f"])
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
        ("/sentiment", {"texts": [1, 2]}, 400),            # wrong item type
        ("/sentiment", {"texts": "not a list"}, 400),
        ("/analyze", {"reviews": [{"text": "x", "stars": 5}]}, 400),  # unknown field
        ("/analyze", {"reviews": [{"text": "x", "rating": 9}]}, 400),  # out of range
        ("/sentiment", {"texts": []}, 422),
        ("/sentiment", {}, 422),
        ("/summarize", {"text": "   "}, 422),
        ("/summarize", {"text": "a", "texts": ["b"]}, 422),
        ("/sentiment", {"texts": ["ok"] * 65}, 413),       # over serve.max_items (64)
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
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(payload)).encode())]})
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
    app, sent, messages = FakeApp(), [], iter([{"type": "http.request", "body": b"partial", "more_body": True},
                                               {"type": "http.disconnect"}])

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
            yield payload[i:i + (1 << 20)]

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
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def test_auth_off_is_logged_and_flagged(service_module, monkeypatch, caplog):
    monkeypatch.delenv("REVIEWOPS_TEST_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING, logger="reviewops.service"):
        mw = service_module.BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    warnings = [r.getMessage() for r in caplog.records if r.name == "reviewops.service"]
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
    with caplog.at_level(logging.WARNING, logger="reviewops.service"):
        mw = service_module.BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    assert mw.token == "t0k" and not [r for r in caplog.records if r.name == "reviewops.service"]
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
    body = json.loads(service_module.RequestError(503, "overloaded").response().body)
    for path in ("/summarize", "/sentiment", "/analyze"):
        jsonschema.validate(body, response_schema(spec, path, 503))


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
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "Exception on %s [%s]",
                                                   ("/sentiment", "POST"), exc_info)
        assert log_filter.filter(record) and record.exc_info is exc_info and record.levelno == logging.ERROR
