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
        model = AutoModelForSequenceClassification.from_pretrained(str(path)).to(device).eval()
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
