"""The OpenAPI document as served (/docs.json) and as `bentoml build` writes it matches what the API answers."""

from __future__ import annotations

import json

import pytest

from reviewops.serving.errors import busy

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


def test_503_is_documented_as_sent(client):
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/docs.json").json()
    body = json.loads(busy("overloaded", 3).response().body)
    for path in ("/summarize", "/sentiment", "/analyze"):
        jsonschema.validate(body, response_schema(spec, path, 503))
        assert "Retry-After" in spec["paths"][path]["post"]["responses"]["503"]["headers"]
    assert busy("overloaded", 3).response().headers["retry-after"] == "3"


def test_bento_openapi_yaml_is_amended(service_module):
    import yaml

    dumped = yaml.safe_load(yaml.dump(service_module.ReviewAnalyzer.openapi_spec))  # what `bentoml build` writes
    assert "bearerAuth" in dumped["components"]["securitySchemes"]
    assert set(dumped["paths"]["/analyze"]["post"]["responses"]) >= {"200", "400", "401", "413", "422", "503"}
