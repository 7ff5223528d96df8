"""Helpers shared by the modules that read result records (report, plots, recommend, compare)."""
from __future__ import annotations

import math


def number(v) -> float | None:
    """``v`` as a float, or ``None`` for missing, boolean, non-numeric or NaN values."""
    if v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v
