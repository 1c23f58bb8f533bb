"""Unit tests for the compact hash sets the streaming preparation remembers rows with."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reviewops.scoring.keys import KeySet, hash_rows, hash_strings


def test_key_set_finds_every_key_added_and_no_other():
    rng = np.random.default_rng(0)
    keys = KeySet()
    added = []
    for _ in range(40):
        batch = rng.integers(0, 2**63, 500, dtype=np.uint64)
        keys.add(np.concatenate([batch, batch[:10]]))  # repeats inside a batch count once
        added.append(batch)
    everything = np.concatenate(added)
    assert len(keys) == len(np.unique(everything)) and keys.nbytes == 8 * len(keys)
    assert keys.contains(everything).all()
    assert not keys.contains(rng.integers(0, 2**63, 1000, dtype=np.uint64)).any()
    assert len(keys._runs) <= 6  # log-structured: few sorted runs, not one per batch


def test_key_set_ignores_keys_already_held():
    keys = KeySet()
    keys.add(np.array([3, 1, 2], dtype=np.uint64))
    keys.add(np.array([2, 3, 4], dtype=np.uint64))
    assert len(keys) == 4
    assert keys.contains(np.array([0, 1, 4, 5], dtype=np.uint64)).tolist() == [False, True, True, False]
    assert KeySet().contains(np.array([1], dtype=np.uint64)).tolist() == [False]


def test_hashes_are_stable_and_treat_missing_values_as_one_value():
    assert hash_strings(["a", None, float("nan")]).tolist() == hash_strings(["a", None, None]).tolist()
    assert hash_strings(["None"])[0] != hash_strings([None])[0]
    assert hash_strings(["review"]).tolist() == [15653467762604404644]  # the same in every process
    a = pd.DataFrame({"id": ["x", None, "y"], "rating": [1.0, np.nan, 2.0]})
    b = pd.DataFrame({"id": ["y", None], "rating": [2.0, float("nan")]})
    ha, hb = hash_rows(a), hash_rows(b)
    assert ha[2] == hb[0] and ha[1] == hb[1] and ha[0] != hb[0]
    assert len(hash_rows(a.iloc[0:0])) == 0
