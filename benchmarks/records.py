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


def setting_of(r: dict) -> tuple:
    """(batch size, threads) of a record: the conditions its latency was measured under."""
    return r.get("batch_size"), r.get("threads")


def setting_text(setting: tuple) -> str:
    """``batch 64, 1 thread``."""
    bs, threads = setting
    text = f"batch {bs}"
    if threads is not None:
        text += f", {threads} thread{'' if threads == 1 else 's'}"
    return text


def setting_sort_key(setting: tuple):
    bs, threads = setting
    return (bs is None, bs or 0, threads is None, threads or 0)
