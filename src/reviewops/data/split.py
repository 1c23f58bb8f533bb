"""Train/validation/test split, stratified by sentiment and grouped by product.

Grouping keeps every review of one product in one split, so a model can't score well by
memorising a product it has already seen; stratification keeps the label mix similar.
A held-out split must also represent many products: of the folds that StratifiedGroupKFold
proposes, the one chosen has no product above ``max_product_share`` of its rows when such a fold
exists (a product with a fifth of all reviews otherwise can become the whole test set), and is
the closest to the target size among those.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from reviewops.config import SplitConfig
from reviewops.errors import ReviewOpsError

SPLITS = ("train", "val", "test")


def _carve(
    df: pd.DataFrame, share: float, seed: int, max_product_share: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off about ``share`` of rows as one fold of a StratifiedGroupKFold.

    Folds where one product exceeds ``max_product_share`` of the fold's rows are used only when
    every fold has such a product; ties go to the fold closest to ``share`` of rows, then the
    first one (deterministic for a given seed).
    """
    n_groups = df["product_id"].nunique()
    n_splits = min(max(2, round(1 / share)), n_groups)
    if n_splits < 2:
        raise ReviewOpsError(
            f"cannot split {len(df)} rows grouped by product: only {n_groups} product(s); "
            "need at least 3 distinct product_id values"
        )
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    target = share * len(df)
    best: tuple[np.ndarray, np.ndarray] | None = None
    best_key: tuple[bool, float] | None = None
    for rest_idx, part_idx in folds.split(df, df["label_id"], groups=df["product_id"]):
        top_share = df["product_id"].iloc[part_idx].value_counts().iloc[0] / len(part_idx)
        key = (bool(top_share > max_product_share), abs(len(part_idx) - target))
        if best_key is None or key < best_key:
            best, best_key = (rest_idx, part_idx), key
    assert best is not None  # n_splits >= 2: StratifiedGroupKFold yields at least two folds
    rest_idx, part_idx = best
    return df.iloc[rest_idx], df.iloc[part_idx]


def split(df: pd.DataFrame, cfg: SplitConfig) -> dict[str, pd.DataFrame]:
    """Split clean rows into train/val/test.

    The test fold is carved first (≈ ``test_size`` of rows), then validation from the rest
    (≈ ``val_size`` of all rows). Shares are approximate because whole products move
    together; the report of the split stage shows the real sizes.

    Raises:
        ReviewOpsError: fewer than three products to spread over three splits.
    """
    if len(df) == 0:
        raise ReviewOpsError("nothing to split: the clean data set is empty")
    # Sort first so the same rows give the same split whatever order they arrive in.
    df = df.sort_values("review_id", kind="stable").reset_index(drop=True)
    rest, test = _carve(df, cfg.test_size, cfg.seed, cfg.max_product_share)
    train, val = _carve(
        rest.reset_index(drop=True), cfg.val_size / (1 - cfg.test_size), cfg.seed + 1, cfg.max_product_share
    )
    parts = {"train": train, "val": val, "test": test}
    return {name: part.sort_values("review_id").reset_index(drop=True) for name, part in parts.items()}


def split_report(parts: dict[str, pd.DataFrame]) -> dict:
    """Rows and label counts per split."""
    return {
        name: {
            "rows": len(part),
            "products": int(part["product_id"].nunique()),
            "top_product_share": round(float(part["product_id"].value_counts(normalize=True).iloc[0]), 3)
            if len(part)
            else 0.0,
            "labels": {k: int(v) for k, v in part["label"].value_counts().sort_index().items()},
        }
        for name, part in parts.items()
    }
