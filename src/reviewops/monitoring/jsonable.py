"""JSON-safe values for the drift summary: NaN becomes null, numpy scalars and paths plain Python."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def as_number(value: Any) -> Any:
    """``value`` as a float (NaN as None); left as is when it is not a number."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return value
    return None if math.isnan(out) else out


def to_jsonable(obj: Any) -> Any:
    """``obj`` with string keys, numpy scalars as Python numbers, NaN as None and paths as strings."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
