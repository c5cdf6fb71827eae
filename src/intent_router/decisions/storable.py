"""Make any value storable in the decision log, on SQLite and PostgreSQL alike.

A decision row carries text and numbers that came from clients and upstreams: a lone surrogate
(``"\\udfff"`` decoded by ``json.loads``), a NUL, a 10**300 token count, NaN. Each of them made a
database refuse the row. Text is sanitised (NUL and lone surrogates become U+FFFD) and cut to
its column's length; integers are clamped to the columns' 32-bit range; non-finite floats
become None (or 0.0 where the column is NOT NULL). Pure functions, no I/O.
"""

from __future__ import annotations

import math
from typing import Any

from intent_router.text import (
    REPLACEMENT as REPLACEMENT,  # re-exported: the decision log's own names
)
from intent_router.text import clean_text as clean_text

INT_MAX = 2**31 - 1  # PostgreSQL's INTEGER; SQLite's is wider, the same bound keeps them alike
INT_MIN = -(2**31)
FLOAT_MAX = 1e300  # finite and far beyond any real cost or latency


def clean_int(value: Any, default: int | None = 0) -> int | None:
    """An integer within the columns' range; anything else (NaN, a string, a bool) is ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float):
        if not math.isfinite(value):
            return default
        value = int(value)
    return max(INT_MIN, min(INT_MAX, int(value)))


def clean_float(value: Any, default: float | None = 0.0) -> float | None:
    """A finite float within +-1e300; NaN, infinities and non-numbers are ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        return FLOAT_MAX if value > 0 else -FLOAT_MAX
    if not math.isfinite(number):
        return default
    return max(-FLOAT_MAX, min(FLOAT_MAX, number))


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON column's value with every string, number and key cleaned (nested 8 deep at most)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return clean_int(value)
    if isinstance(value, float):
        return clean_float(value, default=None)
    if depth >= 8:
        return None
    if isinstance(value, dict):
        return {clean_text(k): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v, depth + 1) for v in value]
    return clean_text(value)
