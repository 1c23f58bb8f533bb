"""Fixtures of the serving tests: tiny models served in-process (REVIEWOPS_*_DIR override), HTTP via to_asgi().

Package-scoped: BentoML registers its Prometheus metrics once per process, so one ASGI app serves
every test module here.
"""

from __future__ import annotations

import pytest

from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder


@pytest.fixture(scope="package")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-models")
    return build_tiny_causal_lm(root / "tiny-sum"), build_tiny_encoder(root / "tiny-sent")


@pytest.fixture(scope="package")
def service_module(tiny_dirs):
    mp = pytest.MonkeyPatch()
    mp.setenv("REVIEWOPS_SUMMARIZER_DIR", str(tiny_dirs[0]))
    mp.setenv("REVIEWOPS_SENTIMENT_DIR", str(tiny_dirs[1]))
    mp.delenv("REVIEWOPS_API_TOKEN", raising=False)
    from reviewops.serving import service

    yield service
    mp.undo()


@pytest.fixture(scope="package")
def svc(service_module):
    return service_module.ReviewAnalyzer()


TOKEN = "s3cret"


@pytest.fixture(scope="package")
def client(service_module):
    """One ASGI app per process (BentoML registers its Prometheus metrics once), with auth on."""
    from starlette.testclient import TestClient

    mp = pytest.MonkeyPatch()
    mp.setenv(service_module.SERVE.auth_token_env, TOKEN)
    with TestClient(service_module.ReviewAnalyzer.to_asgi(), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c
    mp.undo()
