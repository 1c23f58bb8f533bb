"""Compact sets of 64-bit hashes: what the streaming preparation remembers about rows already seen.

Deduplicating a stream across chunks needs to know whether a key (a review id, a dedup key) was
seen in an earlier chunk without keeping the rows. A :class:`KeySet` holds one 8-byte hash per
distinct key, in a few sorted numpy runs (log-structured: a new run is merged into the previous
one while they are of similar size, so there are at most ~log2(n) runs and a lookup is one
binary search per run). A Python ``set`` of ints would cost ~70 bytes a key.

Hashes are pandas' SipHash (``pd.util.hash_array``, fixed key), so they are the same in every
process and run. Two different keys collide with probability ~n²/2⁶⁵ (about 3e-6 at 10 million
keys): a collision would take one row for a duplicate of another, an accepted risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# What a missing cell hashes as (pandas would hash None as the string "None").
_NULL = "\x00reviewops-null\x00"


def hash_strings(values: pd.Series | np.ndarray | list) -> np.ndarray:
    """One uint64 hash per value, values taken as strings (None/NaN hash as one reserved value)."""
    arr = np.asarray(values, dtype=object)
    if not len(arr):
        return np.zeros(0, dtype=np.uint64)
    arr = np.where(pd.isna(arr), _NULL, arr).astype(object)
    return pd.util.hash_array(arr, categorize=False)


def hash_rows(frame: pd.DataFrame) -> np.ndarray:
    """One uint64 hash per row over all of ``frame``'s columns, in their order.

    Rows with equal values (None equals None, NaN equals NaN, as ``groupby(dropna=False)``
    groups them) hash equally, whichever chunk they come from: object columns are hashed as
    strings, numeric columns by value with one NaN.
    """
    if not len(frame):
        return np.zeros(0, dtype=np.uint64)
    columns: dict[str, np.ndarray] = {}
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        if pd.api.types.is_float_dtype(col.dtype):
            values = col.to_numpy(dtype=float, copy=True)
            values[np.isnan(values)] = np.nan  # one NaN bit pattern
            columns[str(i)] = values
        elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            columns[str(i)] = col.to_numpy(dtype=float)
        else:
            columns[str(i)] = np.where(pd.isna(col.to_numpy(dtype=object)), _NULL, col.astype(str)).astype(object)
    return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy(dtype=np.uint64)


class KeySet:
    """A growing set of uint64 keys, 8 bytes per distinct key (see the module docstring)."""

    def __init__(self) -> None:
        """An empty set."""
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        """Distinct keys held."""
        return sum(len(run) for run in self._runs)

    @property
    def nbytes(self) -> int:
        """Memory the keys take."""
        return sum(run.nbytes for run in self._runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """A boolean mask: which of ``keys`` are in the set."""
        keys = np.asarray(keys, dtype=np.uint64)
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, keys)
            pos[pos == len(run)] = len(run) - 1
            found |= run[pos] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        """Add ``keys`` (repeats and keys already held are ignored)."""
        new = np.unique(np.asarray(keys, dtype=np.uint64))
        new = new[~self.contains(new)]
        if not len(new):
            return
        self._runs.append(new)
        # Keep each run at least twice the next one: O(log n) runs, O(n log n) merging in all.
        while len(self._runs) > 1 and len(self._runs[-2]) < 2 * len(self._runs[-1]):
            last = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), last])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            self._runs.append(merged)
