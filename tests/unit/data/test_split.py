"""Grouped, stratified split: no product leaks across splits."""

import numpy as np
import pandas as pd
import pytest

from reviewops.config import SplitConfig
from reviewops.data.split import split
from reviewops.errors import ReviewOpsError


def _clean(n=2000, products=120, seed=0):
    rng = np.random.default_rng(seed)
    label_id = rng.choice([0, 1, 2], size=n, p=[0.2, 0.1, 0.7])
    return pd.DataFrame(
        {
            "review_id": [f"r{i:05d}" for i in range(n)],
            "product_id": [f"P{p:03d}" for p in rng.integers(0, products, size=n)],
            "text": ["t"] * n,
            "label_id": label_id,
            "label": np.array(["negative", "neutral", "positive"])[label_id],
        }
    )


def test_no_product_in_two_splits_and_nothing_lost():
    df = _clean()
    parts = split(df, SplitConfig(val_size=0.1, test_size=0.15, seed=1))
    ids = [set(p["product_id"]) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(p) for p in parts.values()) == len(df)
    assert set().union(*(set(p["review_id"]) for p in parts.values())) == set(df["review_id"])


def test_sizes_and_label_mix_close_to_targets():
    df = _clean(n=5000, products=400)
    parts = split(df, SplitConfig(val_size=0.1, test_size=0.15, seed=3))
    shares = {k: len(v) / len(df) for k, v in parts.items()}
    assert 0.10 <= shares["test"] <= 0.20
    assert 0.06 <= shares["val"] <= 0.16
    overall = df["label"].value_counts(normalize=True)
    for part in parts.values():
        mix = part["label"].value_counts(normalize=True)
        assert (mix - overall).abs().max() < 0.05


def test_split_is_deterministic():
    df = _clean()
    a = split(df, SplitConfig(seed=5))
    b = split(df.sample(frac=1, random_state=2), SplitConfig(seed=5))
    # Same seed and same rows (any order) give the same membership.
    assert all(a[k]["review_id"].tolist() == b[k]["review_id"].tolist() for k in a)
    c = split(df, SplitConfig(seed=6))
    assert any(a[k]["review_id"].tolist() != c[k]["review_id"].tolist() for k in a)


def test_too_few_products_is_a_clear_error():
    df = _clean(n=10, products=1)
    with pytest.raises(ReviewOpsError, match="product"):
        split(df, SplitConfig())


def test_one_big_product_does_not_become_the_test_split():
    # A product with a fifth of all reviews (as in the Amazon sample) must not be the whole test set.
    df = _clean(n=800, products=150, seed=4)
    big = _clean(n=220, products=1, seed=5).assign(review_id=lambda d: "b" + d["review_id"], product_id="BIG")
    df = pd.concat([df, big], ignore_index=True)
    for seed in range(6):
        parts = split(df, SplitConfig(val_size=0.1, test_size=0.2, seed=seed, max_product_share=0.25))
        for name in ("val", "test"):
            top = parts[name]["product_id"].value_counts(normalize=True).iloc[0]
            assert top <= 0.25, (seed, name, top)
        assert "BIG" in set(parts["train"]["product_id"])
        assert sum(len(p) for p in parts.values()) == len(df)


def test_product_share_cap_gives_way_when_no_fold_meets_it():
    # Three products only: every fold is one product, so the cap can't hold; the split still works.
    df = _clean(n=90, products=3, seed=7)
    parts = split(df, SplitConfig(max_product_share=0.1))
    assert sum(len(p) for p in parts.values()) == len(df)
    assert all(len(p) for p in parts.values())
