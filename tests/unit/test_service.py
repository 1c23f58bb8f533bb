"""The BentoML service in-process: tiny models via the REVIEWOPS_*_DIR override, HTTP via to_asgi()."""

from __future__ import annotations

import asyncio

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
