"""Sentence embeddings: unit-norm, deterministic, and the reference sample's embeddings cached on disk."""

from __future__ import annotations

import numpy as np
import pytest

from reviewops.monitoring.embeddings import embed, embed_cached

ZH_10 = "这个咖啡味道真的很好"  # ten ideographs


def test_embed_is_unit_norm_and_deterministic(tiny_encoder):
    vecs = embed(["good", ZH_10, "bad product, broke after a week"], tiny_encoder, batch_size=2)
    assert vecs.shape == (3, 32)
    assert np.linalg.norm(vecs, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert np.allclose(vecs, embed(["good", ZH_10, "bad product, broke after a week"], tiny_encoder))


def test_embed_cached_reuses_reference_embeddings(tiny_encoder, tmp_path, monkeypatch):
    texts = ["first review", ZH_10]
    first = embed_cached(texts, tiny_encoder, 8, tmp_path)
    assert len(list(tmp_path.glob("emb-*.npy"))) == 1
    monkeypatch.setattr("reviewops.monitoring.embeddings.embed", lambda *a, **k: pytest.fail("cache miss"))
    assert np.array_equal(embed_cached(texts, tiny_encoder, 8, tmp_path), first)
