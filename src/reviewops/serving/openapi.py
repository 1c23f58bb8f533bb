"""The OpenAPI document as served: error bodies (400/401/404/413/422/503) and the bearer scheme, amended into BentoML's.

BentoML generates ``/docs.json`` (and the Bento's ``apis/openapi.yaml``) from the API signatures
alone, and adds the paths of a mounted FastAPI app (``GET /products/{product_id}``) from FastAPI's
own document; :func:`amend_openapi` adds what the service really answers, and
:func:`serve_amended_openapi` makes the service object hand out the amended document.
"""

from __future__ import annotations

import json
from typing import Any

from reviewops.serving.auth import OPEN_PATHS

BEARER_SCHEME = "bearerAuth"
_REF = "#/components/schemas/{}"
_ERROR_STATUSES = {
    401: "Missing or invalid bearer token (only when the server has a token set). "
    "Answered with `WWW-Authenticate: Bearer`.",
    413: "Too many reviews (serve.max_items), a text over serve.max_text_chars with "
    "serve.on_too_long=reject, a body over serve.max_body_bytes, or (/summarize, /analyze) more "
    "summarization work than serve.max_summarize_tokens_per_request.",
    422: "No review given, an empty review (nothing visible), or both `text` and `texts`.",
    503: "Busy: the wait queue for the models is full, or the request could not be served within "
    "serve.max_queue_wait_s / serve.request_deadline_s (with `Retry-After`); or the models service is "
    "unreachable, or its models failed to load (the error names the cause).",
}
# Paths of the mounted products app and the errors they answer besides 401 (they call no model:
# no 400/413/422, and FastAPI's 422 cannot happen for a path string).
MOUNTED_ERRORS: dict[str, dict[int, str]] = {
    "/products/{product_id}": {
        404: "No scored review of this product in serve.scored_dir (or an empty product id).",
        503: "Product aggregates are off (serve.scored_dir is empty), or serve.scored_dir holds no "
        "scored dataset or cannot be read (the error says which).",
    }
}
# FastAPI's validation-error schemas, dropped with the 422 that was their only use.
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (when the service is busy).",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorResponse": {
        "type": "object",
        "title": "ErrorResponse",
        "required": ["error", "status"],
        "description": "Every error the service itself answers (RequestError.response, auth, body limit).",
        "properties": {
            "error": {"type": "string", "title": "Error"},
            "status": {"type": "integer", "title": "Status", "description": "the HTTP status"},
        },
    },
    "ValidationIssue": {
        "type": "object",
        "title": "ValidationIssue",
        "required": ["type", "loc", "msg"],
        "description": "One pydantic validation error (input values are not echoed).",
        "properties": {
            "type": {"type": "string", "description": "e.g. string_type, json_invalid"},
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "where in the body, e.g. ['texts', 0]",
            },
            "msg": {"type": "string"},
            "url": {"type": "string"},
        },
    },
    "BadRequestResponse": {
        "type": "object",
        "title": "BadRequestResponse",
        "required": ["error"],
        "description": "A body that is not JSON or does not match the request schema: BentoML's answer, "
        "`error` says how many errors and `detail` lists them. A 400 passed on from the "
        "models service has `status` instead of `detail`.",
        "properties": {
            "error": {"type": "string", "title": "Error"},
            "detail": {"type": "array", "items": {"$ref": _REF.format("ValidationIssue")}},
            "status": {"type": "integer", "title": "Status"},
        },
    },
}


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF.format(schema)}}}}


def _amend_operation(path: str, op: dict[str, Any], unauthorized: dict[str, Any]) -> None:
    """Security, error responses and a required body for one operation (changed in place)."""
    # BentoML keys statuses by int; one key type keeps the YAML dump (sorted keys) working.
    responses = op["responses"] = {str(k): v for k, v in op.get("responses", {}).items()}
    if path in OPEN_PATHS:
        op["security"] = []
        if path == "/readyz":
            responses["503"] = {
                "description": "Not ready: the models service is not up or its models "
                "are not loaded yet; a failed load adds its cause.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
    else:
        op["security"] = [{BEARER_SCHEME: []}]
        responses["401"] = unauthorized
    if "x-bentoml-name" in op:  # an API (infrastructure paths take no body and call no model)
        responses["400"] = _json_response(
            "Invalid JSON or a body that does not match the request schema.", "BadRequestResponse"
        )
        for status in (413, 422, 503):
            responses[str(status)] = _json_response(_ERROR_STATUSES[status], "ErrorResponse")
        responses["503"]["headers"] = _RETRY_AFTER
        if isinstance(op.get("requestBody"), dict):
            op["requestBody"]["required"] = True
    elif path in MOUNTED_ERRORS:
        responses.pop("422", None)
        for status, description in MOUNTED_ERRORS[path].items():
            responses[str(status)] = _json_response(description, "ErrorResponse")
    op["responses"] = dict(sorted(responses.items()))


def _drop_unused_schemas(spec: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove these component schemas when no path refers to them (directly or through one another)."""
    schemas = spec.get("components", {}).get("schemas", {})
    used = json.dumps(spec.get("paths", {}))
    if not any(_REF.format(name) in used for name in names):
        for name in names:
            schemas.pop(name, None)


def amend_openapi(spec: dict[str, Any], token_env: str = "REVIEWOPS_API_TOKEN") -> dict[str, Any]:
    """BentoML's generated OpenAPI dict, made true to what the service answers (changed in place).

    BentoML documents a 400 whose ``detail`` is a string (it is a list of validation errors), no
    401/413/422/503 and no auth. This adds the error bodies the service sends (``ErrorResponse``
    ``{"error", "status"}``; ``BadRequestResponse`` for 400), a bearer security scheme on every
    path the middleware guards, a required JSON request body, /readyz's 503, and the 404/503 of
    the mounted paths (:data:`MOUNTED_ERRORS`) in place of FastAPI's 422.

    Args:
        spec: the OpenAPI document as a dict.
        token_env: the environment variable that holds the server's token (``serve.auth_token_env``).
    """
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).update(_EXTRA_SCHEMAS)
    components["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": f"Required on every path but /healthz, /livez and /readyz when ${token_env} "
            "is set on the server; without it the API is open and says so (X-ReviewOps-Auth: off).",
        }
    }
    # One object for every path's 401: the YAML dump writes it once (an anchor) as before.
    unauthorized = _json_response(_ERROR_STATUSES[401], "ErrorResponse")
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and method in ("get", "post", "put", "delete", "patch"):
                _amend_operation(path, op, unauthorized)
    _drop_unused_schemas(spec, _FASTAPI_422_SCHEMAS)
    return spec


def _amended_spec_class(token_env: str) -> type:
    import attr
    import yaml
    from bentoml._internal.service.openapi.specification import OpenAPISpecification

    @attr.frozen
    class AmendedOpenAPISpecification(OpenAPISpecification):
        """BentoML's spec object whose dict form (``/docs.json``, the Bento's openapi.yaml) is amended."""

        def asdict(self) -> dict[str, Any]:
            return amend_openapi(super().asdict(), token_env)

    # BentoML registers its YAML dumper for the exact class (`bentoml build` writes apis/openapi.yaml).
    yaml.add_representer(AmendedOpenAPISpecification, lambda dumper, spec: dumper.represent_dict(spec.asdict()))
    return AmendedOpenAPISpecification


def serve_amended_openapi(service: Any, token_env: str) -> None:
    """Make ``service.openapi_spec`` (what /docs.json and ``bentoml build`` use) the amended spec.

    BentoML 1.4 has no hook for the spec: it is a property of its ``Service`` class, so the service
    object gets a subclass that overrides only that property (no new state, same slots).

    Args:
        service: the ``bentoml.Service`` (the decorated API class).
        token_env: named in the bearer scheme's description (``serve.auth_token_env``).
    """
    import attr

    spec_cls = _amended_spec_class(token_env)
    base = type(service)

    class AmendedSpecService(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        @property
        def openapi_spec(self) -> Any:
            spec = super().openapi_spec
            return spec_cls(**{f.name: getattr(spec, f.name) for f in attr.fields(type(spec))})

    service.__class__ = AmendedSpecService
