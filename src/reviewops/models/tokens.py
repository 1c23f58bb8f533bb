"""How the sentiment classifier reads a review: token ids cut to ``sentiment.max_length``, head or head+tail.

Training (:mod:`reviewops.training.sentiment`), the torch classifier and the ONNX Runtime one all
encode through :func:`encode_texts` / :func:`encode_batch`, and the cut a model was trained with is
recorded in its ``config.json`` (:data:`TRUNCATION_ATTR`), so inference reads reviews as training did.
"""

from __future__ import annotations

import warnings
from typing import Any

TRUNCATION_ATTR = "reviewops_truncation"  # written into config.json by training: how the model cut long reviews
TRUNCATIONS: tuple[str, ...] = ("head", "head_tail")
HEAD_SHARE = 0.25  # head_tail keeps the first quarter and the last three quarters of the budget


def truncation_of(model: Any) -> str:
    """How ``model`` was trained to cut long reviews (``head`` when its config records nothing)."""
    recorded = getattr(model.config, TRUNCATION_ATTR, None)
    return recorded if recorded in TRUNCATIONS else "head"


def encode_texts(tokenizer: Any, texts: list[str], max_length: int, truncation: str = "head") -> dict[str, list[Any]]:
    """Token ids (and masks) of ``texts``, each at most ``max_length`` tokens, special tokens included.

    ``head`` keeps the first ``max_length`` tokens (the tokenizer's own truncation). ``head_tail``
    keeps the first quarter of the budget and the last three quarters of a longer review: the
    closing verdict ("... but I would not buy it again") survives, which the head alone cuts off
    (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?", head+tail best on long
    reviews). The cut keeps the leading and the closing special token. Training, the torch and
    the ONNX Runtime classifiers all encode through here, so a model reads at inference what it
    read in training.

    Raises:
        ValueError: an unknown ``truncation``.
    """
    if truncation == "head":
        return dict(tokenizer(texts, truncation=True, max_length=max_length))
    if truncation != "head_tail":
        raise ValueError(f"sentiment truncation must be one of {', '.join(TRUNCATIONS)}; got {truncation!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = dict(tokenizer(texts, truncation=False, verbose=False))
    head = max(1, int(max_length * HEAD_SHARE))
    tail = max_length - head
    for key, rows in enc.items():
        enc[key] = [row if len(row) <= max_length else list(row[:head]) + list(row[-tail:]) for row in rows]
    return enc


def encode_batch(tokenizer: Any, texts: list[str], max_length: int, truncation: str, return_tensors: str) -> Any:
    """:func:`encode_texts`, padded to the batch's longest text, as ``return_tensors`` (``pt`` | ``np``)."""
    if truncation == "head":  # one tokenizer call, as before head_tail existed
        return tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors=return_tensors)
    encoded = encode_texts(tokenizer, texts, max_length, truncation)
    return tokenizer.pad(encoded, padding=True, return_tensors=return_tensors)
