"""Training test data: a processed-split-shaped frame and quick-profile settings around tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.config import Settings
from reviewops.schema import LABEL2ID, LABELS

_TEXTS = {
    "negative": ("Terrible taste, the package arrived broken.", "Bad", "太难吃了，包装也破了。", "很差"),
    "neutral": ("It is okay, nothing special for the price.", "Okay", "一般般，没什么特别的。", "一般"),
    "positive": ("Love it, great flavor and fast delivery!", "Great", "非常好吃，物流很快！", "很好"),
}


def synthetic_processed(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A processed-split-shaped frame (docs/CONTRACTS.md), English and Chinese, all labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        zh = i % 5 == 0
        en_text, en_sum, zh_text, zh_sum = _TEXTS[label]
        rows.append(
            {
                "review_id": f"r-{i:04d}",
                "product_id": f"P{i % 7}",
                "text": (zh_text if zh else en_text) + f" #{int(rng.integers(1000))}",
                "summary": zh_sum if zh else en_sum,
                "rating": {"negative": 1.0, "neutral": 3.0, "positive": 5.0}[label],
                "timestamp": "2024-01-01T00:00:00Z",
                "language": "zh" if zh else "en",
                "category": "food",
                "source_file": "synthetic.csv",
                "source_row": i + 1,
                "label": label,
                "label_id": LABEL2ID[label],
            }
        )
    return pd.DataFrame(rows)


def quick_settings(tmp_path: Path, summarizer: Path, encoder: Path, **profile: object) -> Settings:
    base = Settings()
    prof = base.train.profiles["quick"].model_copy(update=profile)
    return Settings(
        paths={"models_dir": str(tmp_path / "models"), "processed_dir": str(tmp_path / "processed")},
        summarizer={"model": str(summarizer), "max_new_tokens": 4},
        sentiment={"model": str(encoder), "max_length": 32},
        train={"profile": "quick", "profiles": {**base.train.profiles, "quick": prof}},
    )
