"""Plain JSON values from numerical results: numpy scalars to Python, NaN / inf to None, tuples and arrays to lists."""

from __future__ import annotations

import math

import numpy as np


def finite_or_none(value: float) -> float | None:
    """float(value), or None where `value` is None, NaN or infinite (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(float(value)) else None


def json_safe(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return finite_or_none(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


__all__ = ["json_safe", "finite_or_none"]
