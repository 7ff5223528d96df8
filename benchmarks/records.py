"""Helpers shared by the modules that read result records (report, plots, recommend, compare, session).

A record here is the dict form of :class:`benchmarks.schema.Record` (what the result files and saved
runs hold). Records are grouped by model and *setting* (batch size and threads) in one place,
:func:`groups`; ratios against the original are derived in one place, :func:`add_ratios`.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, TypeVar

from compression_bench.benchmarks.schema import speedup

T = TypeVar("T")


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
    """(batch size, threads, runtime) of a record: the conditions its latency was measured under
    (records of runs before runtimes existed ran on ``eager``)."""
    return r.get("batch_size"), r.get("threads"), r.get("runtime") or "eager"


def setting_text(setting: tuple) -> str:
    """``batch 64, 1 thread`` (eager), ``batch 64, 1 thread, onnxruntime`` (another runtime)."""
    bs, threads, *rest = setting
    text = f"batch {bs}"
    if threads is not None:
        text += f", {threads} thread{'' if threads == 1 else 's'}"
    if rest and rest[0] not in (None, "eager"):
        text += f", {rest[0]}"
    return text


def setting_sort_key(setting: tuple):
    bs, threads, *rest = setting
    runtime = rest[0] if rest else "eager"
    return (bs is None, bs or 0, threads is None, threads or 0, runtime != "eager", runtime or "")


def _model_and_setting(r: dict) -> tuple:
    return r["model"], setting_of(r)


def groups(items: Iterable[T], key: Callable[[T], tuple] = _model_and_setting) -> list[tuple[str, tuple, list[T]]]:
    """``(model, setting, items)``: models in first-seen order, each model's settings ascending, items
    in their given order. ``key`` gives an item's (model, setting); by default a record's."""
    buckets: dict[tuple, list[T]] = {}
    for item in items:
        buckets.setdefault(key(item), []).append(item)
    models = list(dict.fromkeys(model for model, _ in buckets))
    order = sorted(buckets, key=lambda k: (models.index(k[0]), setting_sort_key(k[1])))
    return [(model, setting, buckets[(model, setting)]) for model, setting in order]


def measured(records: Iterable[dict]) -> list[dict]:
    """The records that hold figures: not those marked ``failed: ...`` or ``n/a: ...`` (``status``)."""
    return [r for r in records if not r.get("status")]


def add_ratios(records: list[dict]) -> list[dict]:
    """Fill accuracy_delta and size_ratio against the original of the same model and setting (any
    batch size and threads of the model on the same runtime when that one was not run), speedup where
    the test did not measure a paired one (records from older runs): the original's median over the
    variant's, same setting only; and speedup_vs_eager: against the eager float original at the same
    batch size and threads (the paired speedup for eager rows). Changes the records in place and
    returns them."""
    rows = measured(records)
    originals = {(r["model"], setting_of(r)): r for r in rows if r["method"] == "original"}
    by_model = {(r["model"], setting_of(r)[2]): r for r in rows if r["method"] == "original"}
    for r in rows:
        if number(r.get("original_accuracy")) is not None:
            r["accuracy_delta"] = r["accuracy"] - r["original_accuracy"]
        o = originals.get((r["model"], setting_of(r))) or by_model.get((r["model"], setting_of(r)[2]))
        if o is None:
            continue
        if number(r.get("accuracy_delta")) is None:
            r["accuracy_delta"] = r["accuracy"] - o["accuracy"]
        if number(r.get("size_ratio")) is None:
            r["size_ratio"] = r["size_mib"] / o["size_mib"] if o["size_mib"] else None
        if number(r.get("speedup")) is None and r["method"] != "original":
            same = setting_of(o) == setting_of(r)
            r["speedup"] = speedup(o.get("latency_median_ms"), r.get("latency_median_ms")) if same else None
    for r in rows:  # against the float model a user would otherwise ship as it is: eager, same batch and threads
        bs, threads, runtime = setting_of(r)
        if runtime == "eager" and r["method"] != "original" and number(r.get("speedup")) is not None:
            r["speedup_vs_eager"] = r["speedup"]
            continue
        e = originals.get((r["model"], (bs, threads, "eager")))
        r["speedup_vs_eager"] = speedup(e.get("latency_median_ms"), r.get("latency_median_ms")) if e else None
    return records
