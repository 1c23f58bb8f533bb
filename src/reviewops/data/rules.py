"""The validation rules: one table drives both the GX suite and the pandas fallback masks.

Each rule is one Great Expectations expectation with a stable name (stored in the
expectation's ``meta["rule"]``, and what a quarantined row's ``quarantine_reason`` lists)
plus a pandas twin of its row condition, written to GX's semantics. The suite itself is
built from these rules in :mod:`reviewops.data.gx`; :mod:`reviewops.data.validation` runs it
and quarantines the rows that break them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import ValidationConfig
from reviewops.schema import REQUIRED_COLUMNS
from reviewops.text import VISIBLE_CHAR_PATTERN

RULE_KEY = "rule"
TIMESTAMP_REGEX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
# At least one character that shows: whitespace, NUL and zero-width characters alone are empty.
NOT_EMPTY_REGEX = VISIBLE_CHAR_PATTERN


def _null_mask(col: pd.Series) -> pd.Series:
    return col.isna()


def _non_null_failing(col: pd.Series, ok: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """GX column-map semantics: nulls are skipped (never unexpected), ``ok`` runs on the rest."""
    present = col.notna().to_numpy()
    failing = np.zeros(len(col), dtype=bool)
    if present.any():
        failing[present] = ~np.asarray(ok(col[present]), dtype=bool)
    return pd.Series(failing, index=col.index)


@dataclass(frozen=True)
class Rule:
    """One expectation with its stable rule name and a pandas twin of its row condition.

    ``failing`` returns a boolean Series (True = row breaks the rule) computed exactly as
    GX's pandas engine does (same null filtering, ``astype(str)``, ``str.contains``,
    ``duplicated(keep=False)``). It is the fallback when GX returns no
    ``unexpected_index_list`` for an expectation, and the reference the GX counts are
    checked against.
    """

    name: str
    expectation: str
    kwargs: dict[str, Any]
    table_level: bool = False
    failing: Callable[[pd.DataFrame], pd.Series] | None = None

    @property
    def column(self) -> str:
        """The column the expectation checks."""
        return self.kwargs["column"]


def build_rules(cfg: ValidationConfig) -> list[Rule]:
    """The ``reviews_canonical`` rules, parameterised by :class:`ValidationConfig`.

    Column-map rules ignore nulls (GX semantics); each required column has its own
    ``<column>_not_null`` rule so a missing value is reported once, under its own name.
    The order is the suite's order (the committed suite JSON lists them so).
    """
    return [*_presence_rules(), *_id_and_rating_rules(cfg), *_text_and_metadata_rules(cfg)]


def _not_null_rule(column: str) -> Rule:
    return Rule(
        f"{column}_not_null",
        "ExpectColumnValuesToNotBeNull",
        {"column": column},
        failing=lambda df: _null_mask(df[column]),
    )


def _presence_rules() -> list[Rule]:
    """Every required column exists (table level) and has a value in every row."""
    exists = [
        Rule(f"column_exists:{c}", "ExpectColumnToExist", {"column": c}, table_level=True) for c in REQUIRED_COLUMNS
    ]
    return exists + [_not_null_rule(c) for c in REQUIRED_COLUMNS]


def _id_and_rating_rules(cfg: ValidationConfig) -> list[Rule]:
    """One content per review id; a rating that was readable and is in range."""
    return [
        # Identical repeats are collapsed before the suite runs, so a repeated id left here
        # carries different content: a conflict, every copy quarantined.
        Rule(
            "review_id_conflict",
            "ExpectColumnValuesToBeUnique",
            {"column": "review_id"},
            failing=lambda df: _non_null_failing(df["review_id"], lambda s: ~s.duplicated(keep=False)),
        ),
        # The cell was there but is not a rating (``great``, ``8/10``); ingest kept it as written.
        Rule(
            "rating_unparseable",
            "ExpectColumnValuesToBeNull",
            {"column": "rating_raw"},
            failing=lambda df: (
                df["rating_raw"].notna() if "rating_raw" in df.columns else pd.Series(False, index=df.index)
            ),
        ),
        Rule(
            "rating_in_range",
            "ExpectColumnValuesToBeBetween",
            {"column": "rating", "min_value": cfg.rating_min, "max_value": cfg.rating_max},
            failing=lambda df: _non_null_failing(df["rating"], lambda s: (s >= cfg.rating_min) & (s <= cfg.rating_max)),
        ),
    ]


def _text_and_metadata_rules(cfg: ValidationConfig) -> list[Rule]:
    """Text that shows and fits, an ISO-8601 timestamp, an allowed language, a short summary."""
    lo, hi = cfg.min_text_chars, cfg.max_text_chars
    allowed = sorted(cfg.allowed_languages)
    return [
        Rule(
            "text_not_empty",
            "ExpectColumnValuesToMatchRegex",
            {"column": "text", "regex": NOT_EMPTY_REGEX},
            failing=lambda df: _non_null_failing(df["text"], lambda s: s.astype(str).str.contains(NOT_EMPTY_REGEX)),
        ),
        # str.len() counts code points, so 20 Chinese characters are 20, not 60 bytes.
        Rule(
            "text_length",
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "text", "min_value": lo, "max_value": hi},
            failing=lambda df: _non_null_failing(df["text"], lambda s: s.astype(str).str.len().between(lo, hi)),
        ),
        Rule(
            "timestamp_iso8601",
            "ExpectColumnValuesToMatchRegex",
            {"column": "timestamp", "regex": TIMESTAMP_REGEX},
            failing=lambda df: _non_null_failing(
                df["timestamp"], lambda s: s.astype(str).str.contains(TIMESTAMP_REGEX)
            ),
        ),
        Rule(
            "language_allowed",
            "ExpectColumnValuesToBeInSet",
            {"column": "language", "value_set": allowed},
            failing=lambda df: _non_null_failing(df["language"], lambda s: s.isin(allowed)),
        ),
        # summary is optional (None for inference-only batches); nulls are skipped.
        Rule(
            "summary_length",
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "summary", "max_value": cfg.max_summary_chars},
            failing=lambda df: _non_null_failing(
                df["summary"], lambda s: s.astype(str).str.len() <= cfg.max_summary_chars
            ),
        ),
    ]
