"""Helpers shared by the modules that read result records (report, plots, recommend, compare, session).

A record here is the dict form of :class:`benchmarks.results.schema.Record` (what the result files and saved
runs hold). Records are grouped by model and *setting* (batch size and threads) in one place,
:func:`groups`; ratios against the original are derived in one place, :func:`add_ratios`.
"""
from __future__ import annotations

import math
import statistics
from typing import Callable, Iterable, TypeVar

from compression_bench.benchmarks.results.schema import NUMERIC, number, speedup

T = TypeVar("T")


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
    seed = lambda r: r.get("seed") or 0  # noqa: E731 - each seed of a model against its own original
    originals = {(r["model"], setting_of(r), seed(r)): r for r in rows if r["method"] == "original"}
    by_model = {(r["model"], setting_of(r)[2], seed(r)): r for r in rows if r["method"] == "original"}
    for r in rows:
        if number(r.get("original_accuracy")) is not None:
            r["accuracy_delta"] = r["accuracy"] - r["original_accuracy"]
        o = (originals.get((r["model"], setting_of(r), seed(r)))
             or by_model.get((r["model"], setting_of(r)[2], seed(r))))
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
        e = originals.get((r["model"], (bs, threads, "eager"), seed(r)))
        r["speedup_vs_eager"] = speedup(e.get("latency_median_ms"), r.get("latency_median_ms")) if e else None
    return records


#: fields whose spread across seeds the tables show (``<field>_sd`` in an :func:`across_seeds` row; for a
#: :data:`RATIOS` field ``<field>_log_sd``, on the log scale)
SEED_SPREAD = ("accuracy", "accuracy_delta", "speedup", "speedup_vs_eager")
#: fields that are ratios: averaged across seeds by their geometric mean, so that 2x in one seed and 0.5x in
#: the other average to 1x (no gain), not 1.25x; their spread is the standard deviation of their logarithm
RATIOS = ("speedup", "speedup_low", "speedup_high", "speedup_vs_eager", "size_ratio", "dispersion")


def _mean(key: str, values: list[float]) -> float | None:
    """The arithmetic mean, or for a :data:`RATIOS` field the geometric one (None for a ratio that is not
    positive in some seed, which no measurement gives)."""
    if key not in RATIOS:
        return sum(values) / len(values)
    return math.exp(sum(map(math.log, values)) / len(values)) if all(v > 0 for v in values) else None


def _spread(key: str, values: list[float]) -> tuple[str, float | None]:
    """``(name, value)`` of the seeds' spread of ``key``: the sample standard deviation, of the
    logarithm for a ratio; None for a single seed (a group of one has no spread)."""
    if key in RATIOS:
        key, values = key + "_log", ([math.log(v) for v in values] if all(v > 0 for v in values) else [])
    return key + "_sd", (statistics.stdev(values) if len(values) > 1 else None)


def across_seeds(records: list[dict]) -> list[dict]:
    """The records as the tables show them: unchanged when they hold one seed per model; else one row per
    model, setting and method with every numeric field averaged over its seeds (ratios geometrically,
    :data:`RATIOS`), the seeds' spread of :data:`SEED_SPREAD` fields as ``<field>_sd`` (sample standard
    deviation; ``<field>_log_sd`` of a ratio's logarithm), the per-class change averaged, ``seeds`` (how
    many), ``significant_seeds`` (in how many the change against the original was significant) and every
    seed's gate failures. A method that failed or was not run for some seed shows that seed's row. A method
    left with one seed (``-x`` stopped the run, ``-k`` deselected the others) is that seed's record as it is,
    intervals included, with ``seeds`` 1 and no spread: one measurement has none.
    The result files keep every seed's own record; only tables, recommendations and plots average."""
    if len({r.get("seed") or 0 for r in records}) <= 1:
        return records
    buckets: dict[tuple, list[dict]] = {}
    for r in records:
        buckets.setdefault((r["model"], setting_of(r), r["method"]), []).append(r)
    out = []
    for rows in buckets.values():
        bad = [r for r in rows if r.get("status")]
        if bad:
            out.append(bad[0])
            continue
        if len(rows) == 1:
            out.append(dict(rows[0], seeds=1, significant_seeds=int(bool(rows[0].get("delta_significant")))))
            continue
        row = dict(rows[0], seeds=len(rows), seed=None, accuracy_low=None, accuracy_high=None, delta_p_value=None,
                   delta_significant=None,
                   significant_seeds=sum(bool(r.get("delta_significant")) for r in rows),
                   gate_failures=[g for r in rows for g in r.get("gate_failures") or []],
                   inconclusive=[g for r in rows for g in r.get("inconclusive") or []])
        for k in NUMERIC:
            values = [number(r.get(k)) for r in rows]
            if k != "seed" and all(v is not None for v in values):
                if len(set(values)) > 1:  # the same value in every seed keeps its type (64, not 64.0)
                    row[k] = _mean(k, values)
                if k in SEED_SPREAD:
                    name, sd = _spread(k, values)
                    row[name] = sd
        classes = [r.get("per_class_delta") or {} for r in rows]
        if all(classes):
            row["per_class_delta"] = {c: sum(d.get(c, 0.0) for d in classes) / len(classes) for c in classes[0]}
        out.append(row)
    return out
