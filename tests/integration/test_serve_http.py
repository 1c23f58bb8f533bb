"""`bentoml serve` on 127.0.0.1 with tiny models: real HTTP, limits, auth and Prometheus metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from reviewops.schema import LABELS
from reviewops.testing.scored import write_scored
from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "integration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from reviewops.testing.server import serving

    root = tmp_path_factory.mktemp("serve-http")
    # serve.scored_dir -> a small scored dataset (not the working directory's data/scored, which a
    # fresh clone lacks): GET /products/{id} answers 200 or 404, and schemathesis checks both.
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["serve"]["scored_dir"] = str(write_scored(root / "scored"))
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {
        "REVIEWOPS_PARAMS": str(root / "params.yaml"),
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
        "name": "tiny-sum",
        "version": "local",
        "source": "dir",
        "tag": None,
        "mlflow_run_id": None,
    }

    r = http.post("/sentiment", json={"text": "Awful."}, headers=AUTH)
    assert r.status_code == 200
    probs = r.json()["results"][0]["probabilities"]
    assert list(probs) == LABELS and sum(probs.values()) == pytest.approx(1.0, abs=1e-4)

    reviews = [
        {"text": "Rich taste", "product_id": "p1", "rating": 5},
        {"text": "Stale and bitter", "product_id": "p1", "rating": 1},
    ]
    r = http.post("/analyze", json={"reviews": reviews}, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert len(body["reviews"]) == 2 and body["products"][0]["product_id"] == "p1"
    assert body["models"]["sentiment"]["name"] == "tiny-sent"


def test_product_aggregate_over_http(http):
    """GET /products/{id} reads the scored dataset in serve.scored_dir (set by REVIEWOPS_PARAMS)."""
    r = http.get("/products/p1", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["product_id"] == "p1" and body["n_reviews"] == 4 and body["batches"] == ["mon", "tue"]
    r = http.get("/products/p9", headers=AUTH)
    assert r.status_code == 404 and "no scored reviews for product 'p9'" in r.json()["error"]
    assert http.get("/products/p1").status_code == 401


def test_concurrent_requests_are_answered(http, server):
    import asyncio

    import httpx

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=AUTH) as client:
            resps = await asyncio.gather(*(client.post("/sentiment", json={"text": f"review {i}"}) for i in range(12)))
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


def test_chunked_body_over_the_limit_is_refused(http):
    from reviewops.config import load_settings

    limit = load_settings().serve.max_body_bytes  # the server reads the same params.yaml (same cwd)
    # Valid JSON that the API would answer 200 (the one text is truncated), sent chunked: no Content-Length.
    payload = json.dumps({"text": "x" * (limit + 10)}).encode()

    def chunks():
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    r = http.post("/sentiment", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413 and "max_body_bytes" in r.json()["error"]
    small = json.dumps({"texts": ["chunked", "and fine"]}).encode()
    json_auth = {**AUTH, "content-type": "application/json"}
    r = http.post("/sentiment", content=iter([small[:9], small[9:]]), headers=json_auth)
    assert r.status_code == 200 and len(r.json()["results"]) == 2
    # The connection pool still works after a refused upload.
    assert http.post("/sentiment", json={"text": "after"}, headers=AUTH).status_code == 200


def test_invalid_body_logs_one_line(http, server):
    start = server.log_path.stat().st_size
    r = http.post("/sentiment", json={"texts": [1]}, headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["texts", 0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with server.log_path.open("rb") as log:
            log.seek(start)
            new = log.read().decode(errors="replace")
        if "Exception on /sentiment [POST]: 400" in new:
            break
        time.sleep(0.2)
    assert "Exception on /sentiment [POST]: 400 1 validation error(s)" in new, new
    assert "Traceback" not in new


@pytest.mark.timeout(110)  # hard stop; 300 examples take ~10 s on 2 cores with the tiny models
def test_openapi_schema_holds_for_generated_requests(server):
    """Schemathesis drives the served /docs.json: no 5xx, every status documented, every body as documented."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, assume, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json", headers=AUTH, timeout=30)
    strategy = schema.as_strategy() | schema.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    budget_end = time.monotonic() + 60  # soft budget: later examples are skipped, not run
    seen: dict[str, int] = {}

    @given(case=strategy)
    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        assume(time.monotonic() < budget_end)
        response = case.call_and_validate(base_url=server.url, headers=AUTH, checks=checks, timeout=60)
        key = f"{case.method} {case.path} {response.status_code}"
        seen[key] = seen.get(key, 0) + 1

    run()
    # The generated requests reached the models, not only the validation in front of them.
    assert any(k.startswith("POST ") and k.endswith(" 200") for k in seen), seen
