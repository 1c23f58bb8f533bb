"""Three-class review sentiment (negative / neutral / positive) over any encoder checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reviewops.config import SentimentConfig
from reviewops.schema import LABELS


def _column_order(id2label: dict[Any, str] | None, num_labels: int) -> list[int]:
    """Model output index for each of :data:`LABELS`.

    Uses the checkpoint's ``id2label`` when it names our labels; otherwise the model is assumed
    to have been trained with ``schema.LABEL2ID`` order (generic ``LABEL_0`` names).
    """
    if num_labels != len(LABELS):
        raise ValueError(f"sentiment model has {num_labels} outputs; expected {len(LABELS)} ({LABELS})")
    names = {str(v).lower(): int(k) for k, v in (id2label or {}).items()}
    if all(label in names for label in LABELS):
        return [names[label] for label in LABELS]
    return list(range(len(LABELS)))


POOLING_ATTR = "reviewops_pooling"  # written into the checkpoint's config.json by training


def _mean_pooler(original: Any) -> Any:
    """Stand-in for a BERT-family ``pooler``: the attention-masked mean of the token states.

    Sentence-transformer checkpoints (all-MiniLM-L6-v2 among them) were trained to be read by
    mean pooling; their ``[CLS]`` pooler output is a poor feature (a logistic-regression probe on
    it scored macro-F1 0.28–0.44 on the Amazon sample vs 0.48–0.51 on the mean). The original
    ``dense`` layer is kept, unused, so the checkpoint's weight names stay the same. The mask
    comes from a forward pre-hook (:func:`apply_pooling`): BERT passes the pooler only states.
    """
    import torch

    class MaskedMeanPooler(torch.nn.Module):
        def __init__(self, dense: Any) -> None:
            super().__init__()
            self.dense = dense
            self.mask: Any = None

        def forward(self, hidden_states: Any) -> Any:
            mask = self.mask
            if mask is None or tuple(mask.shape) != tuple(hidden_states.shape[:2]):
                return hidden_states.mean(dim=1)
            weights = mask.unsqueeze(-1).to(hidden_states.dtype)
            return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    return MaskedMeanPooler(getattr(original, "dense", None))


def pooling_for_base(base_config: Any, requested: str) -> str:
    """The pooling to train with, given the base checkpoint's config.

    A sentiment classifier this project fine-tuned before the pooling was recorded (its
    ``id2label`` names our labels, no :data:`POOLING_ATTR`) read ``[CLS]``: with ``auto`` a
    re-tune starting from it keeps ``cls``. Otherwise ``requested`` is returned unchanged.
    """
    if requested != "auto" or getattr(base_config, POOLING_ATTR, None):
        return requested
    names = {str(v).lower() for v in (getattr(base_config, "id2label", None) or {}).values()}
    return "cls" if names == set(LABELS) else requested


def supports_mean_pooling(model: Any) -> bool:
    """True when the classifier head reads ``base_model.pooler`` (BERT-family models)."""
    return getattr(getattr(model, "base_model", None), "pooler", None) is not None


def apply_pooling(model: Any, pooling: str) -> str:
    """Set the sequence classifier's pooling (``auto`` | ``cls`` | ``mean``); return the one used.

    ``auto`` keeps the pooling a fine-tuned checkpoint records (a re-tune starting from a
    champion must read it the way it was trained); for a base encoder it is ``mean`` where the
    architecture allows it, else ``cls``. The choice is recorded in ``model.config`` so
    :meth:`SentimentClassifier.load` applies it again after saving.

    Raises:
        ValueError: ``mean`` on an architecture whose head does not read a pooler module.
    """
    if pooling == "auto":
        architecture = "mean" if supports_mean_pooling(model) else "cls"
        recorded = getattr(model.config, POOLING_ATTR, None)
        pooling = recorded if recorded in ("cls", "mean") else architecture
    if pooling == "mean":
        if not supports_mean_pooling(model):
            raise ValueError(f"sentiment.pooling=mean needs a BERT-family encoder with a pooler; "
                             f"{type(model).__name__} has none: use sentiment.pooling=cls")
        base = model.base_model
        if not hasattr(base.pooler, "mask"):
            base.pooler = _mean_pooler(base.pooler)

            def keep_mask(_module: Any, args: tuple, kwargs: dict) -> None:
                mask = kwargs.get("attention_mask")
                if mask is None and len(args) > 1:
                    mask = args[1]
                base.pooler.mask = mask

            model.register_forward_pre_hook(keep_mask, with_kwargs=True)
    setattr(model.config, POOLING_ATTR, pooling)
    return pooling


class SentimentClassifier:
    """Predict sentiment probabilities in :data:`reviewops.schema.LABELS` column order."""

    def __init__(self, model: Any, tokenizer: Any, cfg: SentimentConfig) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self._order = _column_order(model.config.id2label, model.config.num_labels)

    @classmethod
    def load(cls, path: Path | str, cfg: SentimentConfig | None = None) -> SentimentClassifier:
        """Load a fine-tuned sequence classifier and its tokenizer from a local HF directory."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForSequenceClassification.from_pretrained(str(path))
        apply_pooling(model, getattr(model.config, POOLING_ATTR, None) or "cls")
        model = model.to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(model, tokenizer, cfg or SentimentConfig())

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), 3)``; each row sums to 1."""
        import torch

        texts = [str(t) if t is not None else "" for t in texts]
        if not texts:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        # Length-sorted batches waste less compute on padding; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=self.cfg.max_length,
                                 padding=True, return_tensors="pt").to(self.model.device)
            with torch.no_grad():
                logits = self.model(**enc).logits.float()
            probs = torch.softmax(logits, dim=-1)[:, self._order].cpu().numpy()
            out[idx] = probs
        return out

    def predict(self, texts: list[str], batch_size: int = 32) -> list[str]:
        """The most probable label for each text."""
        proba = self.predict_proba(texts, batch_size=batch_size)
        return [LABELS[i] for i in proba.argmax(axis=1)]
