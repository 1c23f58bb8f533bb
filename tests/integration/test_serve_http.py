"""`bentoml serve` on 127.0.0.1 with tiny models: real HTTP, limits, auth and Prometheus metrics."""

from __future__ import annotations

import pytest

from reviewops.models.tiny import build_tiny_causal_lm, build_tiny_encoder
from reviewops.schema import LABELS

pytestmark = pytest.mark.integration

TOKEN = "integration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from reviewops.serve_process import serving

    root = tmp_path_factory.mktemp("serve-http")
    env = {
        "REVIEWOPS_SUMMARIZER_DIR": str(build_tiny_causal_lm(root / "tiny-sum")),
        "REVIEWOPS_SENTIMENT_DIR": str(build_tiny_encoder(root / "tiny-sent")),
        "REVIEWOPS_API_TOKEN": TOKEN,
        "BENTOML_HOME": str(root / "bentoml_home"),
    }
    # serving() always stops the process group on exit, also when a test fails.
    with serving(env=env, log_path=root / "serve.log", ready_timeout=80) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_probes_open_without_token(http):
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200


def test_endpoints(http):
    r = http.post("/summarize", json={"texts": ["Great coffee, smooth.", "Box arrived crushed."]}, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert len(body["summaries"]) == 2 and body["model"] == {
        "name": "tiny-sum", "version": "local", "source": "dir", "tag": None, "mlflow_run_id": None}

    r = http.post("/sentiment", json={"text": "Awful."}, headers=AUTH)
    assert r.status_code == 200
    probs = r.json()["results"][0]["probabilities"]
    assert list(probs) == LABELS and sum(probs.values()) == pytest.approx(1.0, abs=1e-4)

    reviews = [{"text": "Rich taste", "product_id": "p1", "rating": 5},
               {"text": "Stale and bitter", "product_id": "p1", "rating": 1}]
    r = http.post("/analyze", json={"reviews": reviews}, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert len(body["reviews"]) == 2 and body["products"][0]["product_id"] == "p1"
    assert body["models"]["sentiment"]["name"] == "tiny-sent"


def test_concurrent_requests_are_answered(http, server):
    import asyncio

    import httpx

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=AUTH) as client:
            resps = await asyncio.gather(*(client.post("/sentiment", json={"text": f"review {i}"})
                                           for i in range(12)))
            return [r.status_code for r in resps]

    assert asyncio.run(burst()) == [200] * 12


@pytest.mark.parametrize(
    ("payload", "status"),
    [({"texts": [1]}, 400), ({"texts": []}, 422), ({"text": " "}, 422), ({"texts": ["a"] * 65}, 413)],
)
def test_client_errors(http, payload, status):
    r = http.post("/sentiment", json=payload, headers=AUTH)
    assert r.status_code == status and "error" in r.json()


def test_invalid_json_and_worker_survives(http):
    r = http.post("/sentiment", content=b"{oops", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400
    assert http.post("/sentiment", json={"text": "still up"}, headers=AUTH).status_code == 200


def test_auth(http):
    assert http.post("/sentiment", json={"text": "x"}).status_code == 401
    assert http.post("/sentiment", json={"text": "x"}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert http.get("/metrics").status_code == 401


def test_metrics(http):
    http.post("/sentiment", json={"text": "counted"}, headers=AUTH)
    r = http.get("/metrics", headers=AUTH)
    assert r.status_code == 200
    assert 'bentoml_service_request_total{endpoint="/sentiment"' in r.text
    assert "bentoml_service_adaptive_batch_size" in r.text
