"""Row-level quarantine: exporter repeats collapsed, failing rows split off with their reasons.

A quarantined row's ``quarantine_reason`` is the sorted ``;``-joined set of the rules it broke
(:mod:`reviewops.data.rules`); records the reader set aside (``field_count_mismatch``) join
the quarantine with their own reason. Repeats (same ``review_id``, same content) are not
quarantined: they are kept aside and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reviewops.errors import ReviewOpsError

REASON_COLUMN = "quarantine_reason"
# Working columns that describe a row's trouble; valid rows carry no trouble, so they drop them.
TROUBLE_COLUMNS = ("rating_raw",)
# A row that breaks the first rule also breaks the second by construction; its reason names
# only the first (an unreadable "five stars!" is not a missing rating).
SUPERSEDES = {"rating_unparseable": "rating_not_null"}
REPEAT_KIND = "repeated_row"


def split_repeats(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collapse rows an exporter repeated: same ``review_id`` and same content, keep the first.

    Content is every column except where the row came from (``source_file``/``source_row``);
    rows without an id are never repeats (nothing says they are the same review).

    Returns:
        ``(kept, repeats)``: ``repeats`` are the later copies with ``duplicate_kind`` =
        ``repeated_row`` and ``duplicate_of`` = ``<source_file>:<source_row>`` of the kept copy.
    """
    content = [c for c in frame.columns if c not in ("source_file", "source_row")]
    none = frame.iloc[0:0].assign(duplicate_kind=pd.Series(dtype=object), duplicate_of=pd.Series(dtype=object))
    if not len(frame) or "review_id" not in frame.columns:
        return frame, none
    ids = frame["review_id"]
    # Only rows whose id occurs twice can be repeats: compare content on those few rows.
    candidates = (ids.notna() & ids.duplicated(keep=False)).to_numpy()
    if not candidates.any():
        return frame, none
    sub = frame.loc[candidates, content]
    group = sub.groupby(content, dropna=False, sort=False).ngroup().to_numpy()
    repeated_sub = pd.Series(group).duplicated(keep="first").to_numpy()
    if not repeated_sub.any():
        return frame, none
    where = (
        frame["source_file"].astype(str) + ":" + frame["source_row"].astype(str)
        if {"source_file", "source_row"} <= set(frame.columns)
        else pd.Series(frame.index.astype(str), index=frame.index)
    )
    sub_where = where[candidates].to_numpy()
    first_of_group: dict[int, str] = {}
    for g, w in zip(group, sub_where, strict=True):
        first_of_group.setdefault(int(g), w)
    positions = np.flatnonzero(candidates)[repeated_sub]
    repeats = frame.iloc[positions].assign(
        duplicate_kind=REPEAT_KIND, duplicate_of=[first_of_group[int(g)] for g in group[repeated_sub]]
    )
    keep = np.ones(len(frame), dtype=bool)
    keep[positions] = False
    return frame.loc[keep].reset_index(drop=True), repeats.reset_index(drop=True)


def quarantine_rows(
    frame: pd.DataFrame, row_rules: dict[str, list[np.ndarray]], malformed: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """``(valid, quarantined, failures)``: the rows split by the rules, the reader's malformed records added."""
    valid, quarantined, failures = split_by_rules(frame, row_rules)
    valid = valid.drop(columns=[c for c in TROUBLE_COLUMNS if c in valid.columns])
    if malformed is not None and len(malformed):
        quarantined = pd.concat([quarantined, malformed], ignore_index=True)
        for reason, count in malformed[REASON_COLUMN].value_counts().items():
            failures[reason] = failures.get(reason, 0) + int(count)
        failures = dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))
    return valid, quarantined, failures


def split_by_rules(
    frame: pd.DataFrame, row_rules: dict[str, list[np.ndarray]]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split rows into valid / quarantined and count rows per rule (most frequent first).

    Each row's failed rules are packed into one integer (bit i = i-th rule in sorted
    order), so building the reason strings costs one dict lookup per *distinct* failure
    combination instead of string concatenation per row (1M bad rows: ~0.2 s, not ~2 s).
    """
    names = sorted(row_rules)
    if len(names) > 62:
        raise ReviewOpsError(f"too many validation rules to pack ({len(names)} > 62)")
    n = len(frame)
    codes = np.zeros(n, dtype=np.int64)
    failures: dict[str, int] = {}
    for bit, name in enumerate(names):
        hit = np.zeros(n, dtype=bool)
        hit[np.concatenate(row_rules[name])] = True  # union over the rule's expectations
        failures[name] = int(hit.sum())
        codes |= hit.astype(np.int64) << bit
    failures = dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))

    for winner, loser in SUPERSEDES.items():
        if winner in names and loser in names:
            w, lo = np.int64(1) << names.index(winner), np.int64(1) << names.index(loser)
            both = (codes & w != 0) & (codes & lo != 0)
            codes[both] &= ~lo
            failures[loser] -= int(both.sum())
            if failures[loser] == 0:
                del failures[loser]
            failures = dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))

    bad = codes != 0
    valid = frame.loc[~bad].reset_index(drop=True)
    quarantined = frame.loc[bad].reset_index(drop=True)
    bad_codes = codes[bad]
    labels = {
        int(code): ";".join(name for bit, name in enumerate(names) if code >> bit & 1) for code in np.unique(bad_codes)
    }
    quarantined[REASON_COLUMN] = pd.Series(bad_codes, dtype=np.int64).map(labels).astype(object).to_numpy()
    return valid, quarantined, failures
