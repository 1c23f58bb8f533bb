"""Fixtures shared by the monitoring tests: a tiny random-weight encoder standing in for MiniLM."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    from reviewops.testing.tiny import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))
