"""Helpers of the benchmark scripts whose figures the README quotes."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from reviewops.config import SplitConfig
from tests.unit.data.test_split import _clean

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipes_module():
    return _module("sentiment_recipes")


def test_recipe_benchmark_folds_score_every_row_once_without_product_leaks():
    """benchmarks/sentiment_recipes.py --folds: each row is a dev-test row exactly once, and no
    product of a fold's test rows is in its train or validation part (the recipe choice rests
    on this)."""
    module = _recipes_module()
    df = _clean(n=800, products=90, seed=5)
    folds = module.fold_parts(df, 5, SplitConfig(test_size=0.2, val_size=0.1))
    assert len(folds) == 5
    tested = [rid for f in folds for rid in f["test"]["review_id"]]
    assert sorted(tested) == sorted(df["review_id"]) and len(set(tested)) == len(df)
    for f in folds:
        test_products = set(f["test"]["product_id"])
        assert not test_products & set(f["train"]["product_id"])
        assert not test_products & set(f["val"]["product_id"])
        assert not set(f["train"]["product_id"]) & set(f["val"]["product_id"])
        assert len(f["train"]) + len(f["val"]) + len(f["test"]) == len(df)
        assert 0.05 <= len(f["val"]) / (len(f["train"]) + len(f["val"])) <= 0.25


def test_recipe_benchmark_overrides_are_valid_settings(tmp_path):
    module = _recipes_module()
    got = {name: module.recipe_settings(tmp_path, over) for name, over in module.RECIPES.items()}
    assert got["current"].split.test_size == 0.2 and got["current"].train.profile == "cpu"
    assert got["current"].sentiment.augment_with_summaries is False
    assert got["titles"].sentiment.augment_with_summaries is True
    assert got["cls-titles"].sentiment.pooling == "cls"
    assert got["previous"].train.active.sentiment_max_steps == 100
    assert got["previous"].train.active.sentiment_patience == 3


def _recipes_json(preds_by_recipe, labels):
    return {
        "results": [{"recipe": name, "labels": labels, "predictions": preds} for name, preds in preds_by_recipe.items()]
    }


def test_bootstrap_recipe_intervals_are_paired():
    ci = _module("bootstrap_ci")
    labels = ["negative", "neutral", "positive"] * 20
    perfect = list(labels)
    worse = ["positive"] * len(labels)
    rows = ci.recipe_intervals(_recipes_json({"a": perfect, "b": perfect, "c": worse}, labels), "a", 200, 0)
    got = {name: (value, low, high) for name, value, low, high in rows}
    assert got["a pooled macro-F1"] == (1.0, 1.0, 1.0)
    assert got["b - a"] == (0.0, 0.0, 0.0)  # same predictions: every paired resample differs by 0
    value, low, high = got["c - a"]
    assert value == pytest.approx(0.5 / 3 - 1.0) and low <= value <= high < 0


def test_bootstrap_refuses_unpaired_rows_and_unknown_baseline():
    ci = _module("bootstrap_ci")
    data = _recipes_json({"a": ["positive"] * 3}, ["positive", "negative", "neutral"])
    data["results"].append({"recipe": "b", "labels": ["negative"] * 3, "predictions": ["negative"] * 3})
    with pytest.raises(SystemExit, match="not paired"):
        ci.recipe_intervals(data, "a", 10, 0)
    with pytest.raises(SystemExit, match="not in the file"):
        ci.recipe_intervals(data, "zzz", 10, 0)


def test_bootstrap_interval_contains_the_mean_of_a_constant():
    ci = _module("bootstrap_ci")
    d = np.full(50, 0.25)
    assert ci.paired_bootstrap(len(d), lambda i: d[i].mean(), 100, 0) == pytest.approx((0.25, 0.25))
