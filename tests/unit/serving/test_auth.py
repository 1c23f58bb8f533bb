"""Bearer auth and the body cap: the middleware on its own (fake ASGI apps) and in the served app."""

from __future__ import annotations

import asyncio
import json
import logging

from reviewops.serving import auth
from reviewops.serving.auth import BearerAuthMiddleware

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


def test_body_cap_counts_chunked_bytes_and_stops_reading():
    app = FakeApp()
    mw = BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    # No Content-Length (Transfer-Encoding: chunked), a body that would go on forever.
    sent, read = drive(mw, http_scope(headers=[(b"transfer-encoding", b"chunked")]), [b"x" * 1000], endless=True)
    status, headers, body = response_of(sent)
    assert status == 413 and app.calls == 0
    assert "max_body_bytes" in json.loads(body)["error"] and json.loads(body)["status"] == 413
    assert int(headers[b"content-length"]) == len(body)
    # It read past the limit by at most one chunk, then stopped.
    assert 10_000 < read <= 11_000


def test_body_cap_passes_a_valid_body_under_the_limit_whole():
    app = FakeApp()
    mw = BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    payload = json.dumps({"texts": ["fine"] * 500}).encode()
    assert len(payload) < 10_000
    chunks = [payload[:3000], payload[3000:6000], payload[6000:]]
    sent, _ = drive(mw, http_scope(headers=[(b"content-length", str(len(payload)).encode())]), chunks)
    status, _, body = response_of(sent)
    assert status == 200 and app.calls == 1 and app.body == payload and body == str(len(payload)).encode()
    assert app.after_body == {"type": "http.disconnect"}  # later receive() calls reach the server
    # Exactly at the limit is still accepted.
    app = FakeApp()
    mw = BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    sent, _ = drive(mw, http_scope(), [b"y" * 4000, b"y" * 6000])
    assert response_of(sent)[0] == 200 and len(app.body) == 10_000


def test_body_cap_refuses_a_declared_length_without_reading():
    app = FakeApp()
    mw = BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
    sent, read = drive(mw, http_scope(headers=[(b"content-length", b"50000000")]), [b"z" * 1000], endless=True)
    status, _, body = response_of(sent)
    assert status == 413 and read == 0 and app.calls == 0 and "50000000 bytes" in json.loads(body)["error"]


def test_body_cap_client_gone_mid_body_calls_nothing():
    app, sent, messages = (
        FakeApp(),
        [],
        iter([{"type": "http.request", "body": b"partial", "more_body": True}, {"type": "http.disconnect"}]),
    )

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    mw = BearerAuthMiddleware(app, token_env="REVIEWOPS_TEST_UNSET_TOKEN", max_body_bytes=10_000)
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


def test_auth_off_is_logged_and_flagged(monkeypatch, caplog):
    monkeypatch.delenv("REVIEWOPS_TEST_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING, logger="reviewops.serving.auth"):
        mw = BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    warnings = [r.getMessage() for r in caplog.records if r.name == "reviewops.serving.auth"]
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


def test_auth_on_no_flag_and_no_warning(monkeypatch, caplog):
    monkeypatch.setenv("REVIEWOPS_TEST_TOKEN", " t0k ")
    with caplog.at_level(logging.WARNING, logger="reviewops.serving.auth"):
        mw = BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    assert mw.token == "t0k" and not [r for r in caplog.records if r.name == "reviewops.serving.auth"]
    status, headers, body = response_of(drive(mw, http_scope("/readyz"), [b""])[0])
    assert status == 200 and b"x-reviewops-auth" not in headers and body == b"\n"
    assert response_of(drive(mw, http_scope("/sentiment"), [b"{}"])[0])[0] == 401
    ok = drive(mw, http_scope("/sentiment", [(b"authorization", b"Bearer t0k")]), [b"{}"])[0]
    assert response_of(ok)[0] == 200


def test_readyz_503_names_the_models_cause(monkeypatch):
    async def cause():
        return "models service: the models failed to load: summarizer /m: SafetensorError: incomplete metadata"

    monkeypatch.setattr(auth, "_models_failure", cause)
    monkeypatch.setenv("REVIEWOPS_TEST_TOKEN", "t0k")
    mw = BearerAuthMiddleware(readyz_app, token_env="REVIEWOPS_TEST_TOKEN")
    status, headers, body = response_of(drive(mw, {**http_scope("/readyz"), "test_down": True}, [b""])[0])
    assert status == 503 and body.startswith(b"Runners are not ready.\nmodels service: the models failed to load")
    assert int(headers[b"content-length"]) == len(body)
    status, _, body = response_of(drive(mw, http_scope("/readyz"), [b""])[0])
    assert status == 200 and body == b"\n"
