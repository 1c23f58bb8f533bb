"""int8 sentiment with close calls scored again in fp32 (``sentiment.int8_recheck_margin``).

Dynamic int8 changes few predictions (e5 on Fine Food: 8-11 of ~500 held-out rows), but they
are the costly ones: most are 3-star reviews near a class boundary, and with ~30 neutral test
rows each flip moves macro-F1 by about 0.01. The int8 model's own top-two probability margin
finds them without labels: most flipped rows have a small one. :class:`RecheckedClassifier`
scores every row in int8 and only the rows below the margin again with the fp32 model, so those
rows get fp32's probabilities and the rest int8's (benchmarks/int8.py, README "int8 and ONNX
Runtime").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reviewops.models.sentiment import most_probable


def top_two_margin(proba: np.ndarray) -> np.ndarray:
    """Each row's largest probability minus its second largest (0 for a tie, 1 for certainty)."""
    top = np.partition(proba, -2, axis=1)  # the two largest last; (0, 3) gives (0,)
    return top[:, -1] - top[:, -2]


class RecheckedClassifier:
    """``fast`` (int8) for every row; ``exact`` (fp32) again for rows whose int8 margin is below ``margin``.

    Holds no per-call state: threads and Ray actors may share one instance, as they share the two
    classifiers it wraps.
    """

    inference = "int8"

    def __init__(self, fast: Any, exact: Any, margin: float) -> None:
        if not 0.0 < margin <= 1.0:
            raise ValueError(f"int8 recheck margin must be in (0, 1]; got {margin}")
        self.fast = fast
        self.exact = exact
        self.margin = margin
        self.runtime = getattr(fast, "runtime", "torch")
        self.tokenizer = fast.tokenizer
        self.cfg = fast.cfg

    def rechecked_rows(self, proba: np.ndarray) -> np.ndarray:
        """Indices of the rows of int8 ``proba`` that are scored again in fp32."""
        return np.flatnonzero(top_two_margin(proba) < self.margin)

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), 3)``: int8's, fp32's on the close calls."""
        proba = self.fast.predict_proba(texts, batch_size=batch_size)
        redo = self.rechecked_rows(proba)
        if redo.size:
            proba = proba.copy()
            proba[redo] = self.exact.predict_proba([texts[i] for i in redo], batch_size=batch_size)
        return proba

    def predict(self, texts: list[str], batch_size: int = 32) -> list[str]:
        """The most probable label for each text."""
        return most_probable(self.predict_proba(texts, batch_size=batch_size))
