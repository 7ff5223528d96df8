"""The result schema: one :class:`Record` per (model, method, runtime, batch size, threads) measurement. No pytest.

Every consumer of results reads the field list from here instead of listing keys of its own:

- ``FIELDS``: what ``results.json`` and ``results.csv`` hold (``files=True``);
- ``COLUMNS`` / ``HEADERS``: the session-end table, one column per field with a :class:`Column`;
- ``REQUIRED`` / ``NUMERIC``: what a saved run must carry to be compared, and which fields are numbers;
- ``EXTRA_INFO``: what goes into pytest-benchmark's ``extra_info`` (not the latency statistics,
  which pytest-benchmark saves itself in ``stats``);
- ``METRICS``: fields copied from a variant's measured metrics (``cached.Variant.metrics``).

In memory and in files a record is also a plain dict (:meth:`Record.to_dict`): the report, plot,
recommendation and comparison functions take such dicts, so that saved runs of any age read the same
way. :meth:`Record.from_dict` reads one back, filling fields that older runs did not have with their
defaults and ignoring keys it does not know.

**Adding a metric** is one field plus its computation. A figure measured on the variant: add it to
the dict that ``cached.measure`` returns and declare a field here with ``metric=True``; it is then
copied into every record, written to the files and to ``extra_info``, and shown in the table if you
give it a ``column``. A figure derived from other records (a ratio against the original): declare the
field and compute it in :func:`benchmarks.results.records.add_ratios`.

The speedup of a variant is :func:`speedup`, the one definition the suite uses.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


class SchemaError(ValueError):
    """A dict cannot be read as a record (a required field is missing)."""


@dataclass(frozen=True)
class Column:
    """How a field shows in the session-end table: header text, format spec (empty: shown as it is),
    a divisor (1e6: millions), a suffix, and what the original's row shows instead (a template such as
    ``**{}**``, or a fixed text such as ``–``); ``render``, when given, makes the cell from the whole
    record (a figure with its interval or its significance)."""
    header: str
    spec: str = ""
    scale: float = 1.0
    suffix: str = ""
    original: str | None = None
    render: Callable[[Mapping], str] | None = None


def number(v) -> float | None:
    """``v`` as a float, or ``None`` for missing, boolean, non-numeric or NaN values."""
    if v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _sd(r: Mapping, key: str, spec: str) -> str:
    """`` ± 0.31`` for a row averaged over seeds (``<key>_sd``); for a ratio, whose spread is on the log
    scale (``<key>_log_sd``), the factor `` ×/÷ 1.05``; else nothing."""
    sd, log_sd = number(r.get(key + "_sd")), number(r.get(key + "_log_sd"))
    if (r.get("seeds") or 1) < 2 or (sd is None and log_sd is None):
        return ""
    return f" ± {sd:{spec}}" if sd is not None else f" ×/÷ {math.exp(log_sd):{spec}}"


def accuracy_cell(r: Mapping) -> str:
    """``98.67 (97.1–99.4)``: the accuracy and its 95% Wilson interval; ``98.67 ± 0.31`` averaged over seeds."""
    acc, lo, hi = number(r.get("accuracy")), number(r.get("accuracy_low")), number(r.get("accuracy_high"))
    if acc is None:
        return "–"
    if (r.get("seeds") or 1) > 1:
        return f"{acc:.2f}{_sd(r, 'accuracy', '.2f')}"
    return f"{acc:.2f}" + ("" if lo is None or hi is None else f" ({lo:.1f}–{hi:.1f})")


def speedup_cell(key: str):
    """``4.68x (4.55-4.80)``: a speedup and its 95% interval (``<key>_low``/``<key>_high``) where there is
    one; `` slower`` marks a speed-purpose variant flagged as slower than its float original."""
    def cell(r: Mapping) -> str:
        v = number(r.get(key))
        if v is None:
            return "–"
        lo, hi = number(r.get(key + "_low")), number(r.get(key + "_high"))
        text = f"{v:.2f}x{_sd(r, key, '.2f')}"
        if lo is not None and hi is not None and (r.get("seeds") or 1) < 2:
            text += f" ({lo:.2f}-{hi:.2f})"
        if key == "speedup" and r.get("flags"):
            text += " ⚠"
        return text
    return cell


def latency_cell(r: Mapping) -> str:
    """``37.18 (37.0-37.4)``: the median latency and its 95% interval."""
    v, lo, hi = number(r.get("latency_median_ms")), number(r.get("latency_low_ms")), number(r.get("latency_high_ms"))
    if v is None:
        return "–"
    return f"{v:.2f}" + ("" if lo is None or hi is None or (r.get("seeds") or 1) > 1 else f" ({lo:.1f}-{hi:.1f})")


def tail_cell(r: Mapping) -> str:
    """``3.41 (n=250)``: the 99th percentile of single calls and how many calls it comes from (from
    fewer than about 100 it is close to the slowest call)."""
    v, n = number(r.get("latency_p99_ms")), number(r.get("tail_calls"))
    if v is None:
        return "–"
    return f"{v:.2f}" + ("" if n is None else f" (n={n:.0f})")


def delta_cell(r: Mapping) -> str:
    """``-3.11 (p<0.001)`` for a significant change, ``+0.44 (n.s.)`` for one that is not; averaged over
    seeds, ``-0.15 ± 0.20 (sig. in 1/3)``."""
    d = number(r.get("accuracy_delta"))
    if d is None:
        return "–"
    if (r.get("seeds") or 1) > 1:
        return f"{d:+.2f}{_sd(r, 'accuracy_delta', '.2f')} (sig. in {r.get('significant_seeds') or 0}/{r['seeds']})"
    p = number(r.get("delta_p_value"))
    if p is None:
        return f"{d:+.2f}"
    from compression_bench.benchmarks.measurement.stats import ALPHA, p_text
    return f"{d:+.2f} ({p_text(p)})" if p < ALPHA else f"{d:+.2f} (n.s.)"


_MISSING: Any = dataclasses.MISSING


# Field metadata: ``numeric`` (a number), ``required`` (0: optional; else the field's place in the list of
# what a saved run must hold, as error messages name them), ``column`` (a :class:`Column` of the table),
# ``files`` (written to results.json / results.csv), ``extra_info`` (saved by pytest-benchmark) and
# ``metric`` (copied from the variant's measured metrics).


def _field(default=_MISSING, *, factory=_MISSING, numeric: bool = False, required: int = 0,
           column: Column | None = None, files: bool = True, extra_info: bool = True, metric: bool = False):
    meta = {"numeric": numeric, "required": required, "column": column, "files": files,
            "extra_info": extra_info, "metric": metric}
    if required:
        return field(metadata=meta)
    if factory is not _MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=None if default is _MISSING else default, metadata=meta)


def _number(**kw):
    return _field(numeric=True, **kw)


@dataclass(kw_only=True)
class Record:
    """One measurement: what was measured, the figures, the timing and the gates. Sizes in MiB,
    latencies in milliseconds (medians per batch), accuracies in percent."""
    # what was measured
    model: str = _field(required=1)
    method: str = _field(required=2)
    label: str | None = _field(column=Column("Method", original="**{}**"))
    compression: str | None = _field(column=Column("Compression"))
    family: str | None = _field()
    level: float | None = _field(numeric=True)
    profile: str | None = _field()
    dataset: str | None = _field()
    batch_size: int | None = _number()
    threads: int | None = _number()
    runtime: str = _field("eager")
    seed: int = _field(0, numeric=True)   # which seed of the model (--zoo-seeds); 0 is the recipe's own
    # None when measured; "failed: <first line of the error>" or "n/a: <reason>" when it could not be
    status: str | None = _field()
    # the variant's figures
    # top-1 on the reported split (the test split where the dataset has one), with its 95% Wilson interval
    accuracy: float = _field(required=3, numeric=True, metric=True,
                             column=Column("Accuracy (%) [95% CI]", render=accuracy_cell))
    accuracy_split: str | None = _field(metric=True)              # "test" or "validation"
    accuracy_images: int | None = _number(metric=True)            # images the accuracy counts
    accuracy_low: float | None = _number()
    accuracy_high: float | None = _number()
    original_accuracy: float | None = _number(files=False)
    # against the original on the same images: the change, its exact McNemar p-value and significance
    accuracy_delta: float | None = _number(extra_info=False, column=Column("Δ acc (pts)", original="–",
                                                                         render=delta_cell))
    delta_p_value: float | None = _number()
    delta_significant: bool | None = _field()
    # percent of images on which the variant predicts the original's class; per class: accuracy change (pts)
    agreement: float | None = _number(column=Column("Agree (%)", ".1f", original="–"))
    per_class_delta: dict | None = _field()
    params: int = _field(required=5, numeric=True, metric=True,
                         column=Column("Num of params (M)", ".3f", scale=1e6))
    nonzero_params: int | None = _number(metric=True, column=Column("Nonzero (M)", ".3f", scale=1e6))
    sparsity: float | None = _number(metric=True)
    # structured pruning: the fraction of channels really removed (kept counts are rounded to a multiple)
    channels_pruned: float | None = _number(metric=True, column=Column("Channels pruned", ".1%"))
    # accuracy-aware INT8: the layers kept in float (the Compression text says how many)
    float_layers: list | None = _field(metric=True)
    size_mib: float = _field(required=4, numeric=True, metric=True, column=Column("Size (MiB)", ".2f"))
    zero_aware_size_mib: float | None = _number(metric=True, column=Column("Zero-aware (MiB)", ".2f"))
    macs: int | None = _number(metric=True, column=Column("MACs (M)", ".1f", scale=1e6))
    density_weighted_macs: int | None = _number(metric=True)
    # seconds to build this row's artifact: the variant (compress, fine-tune) on eager; export, quantize
    # and compile on another runtime (its float base is built once, on eager, and not counted again)
    build_seconds: float | None = _number(metric=True, column=Column("Build (s)", ".1f"))
    # peak resident memory of loading and running the variant once, in a process of its own (benchmarks.variants.memory):
    # the whole process, and the increase over the process with torch and the runtime imported
    peak_mib: float | None = _number()
    peak_increase_mib: float | None = _number(column=Column("Peak mem (MiB)", ".1f"))
    # timing: the variant's accepted rounds (pytest-benchmark saves these in its own stats)
    latency_median_ms: float | None = _number(extra_info=False, column=Column("Latency (ms) [95% CI]",
                                                                             render=latency_cell))
    latency_low_ms: float | None = _number()
    latency_high_ms: float | None = _number()
    # the tails, per call: percentiles of single timed calls made after the paired rounds, and how many
    # (tails.single_calls); not of the rounds, whose blocks average up to 1,000 calls each
    latency_p90_ms: float | None = _number(column=Column("p90 (ms, per call)", ".2f"))
    latency_p99_ms: float | None = _number(column=Column("p99 (ms, per call)", render=tail_cell))
    tail_calls: int | None = _number()
    latency_iqr_ms: float | None = _number(extra_info=False)
    latency_stddev_ms: float | None = _number(extra_info=False)
    latency_rounds: int | None = _number(extra_info=False)
    # the original timed beside the variant in the same test, round by round (benchmarks.measurement.timing)
    reference_latency_median_ms: float | None = _number(column=Column("Ref. latency (ms)", ".2f"))
    reference_latency_rounds: int | None = _number()
    reference_noise: float | None = _number()             # round-to-round variation of the original (sd of log)
    timing_seconds: float | None = _number()              # wall time of the timed rounds
    # timings made: 2 when the original ran >10% off its session median and the test was timed again
    timings: int | None = _number()
    # the centre of the per-round ratios and its 95% bootstrap interval (timing.METHOD)
    speedup: float | None = _number(column=Column("Speedup [95% CI]", render=speedup_cell("speedup")))
    speedup_low: float | None = _number()
    speedup_high: float | None = _number()
    speedup_half_width: float | None = _number()          # relative: sqrt(high / low) - 1
    speedup_method: str | None = _field()
    # slices pooled into the speedup (timing.pooled; 1: timed once), and the session's dispersion that
    # widened its interval (ratios.dispersion; 1: the slices agreed as their intervals said)
    speed_slices: int | None = _number()
    dispersion: float | None = _number()
    # each slice's own speedup estimate, oldest first (empty: timed once)
    slice_speedups: list = _field(factory=list)
    # against the eager float original at the same batch size and threads (records.add_ratios): the gain
    # over shipping the float model as it is; for another runtime's original, what that runtime alone buys
    speedup_vs_eager: float | None = _number(column=Column("vs eager float", render=speedup_cell("speedup_vs_eager")))
    size_ratio: float | None = _number(column=Column("Size ratio", ".3f", suffix="x"))
    # a variant meant for speed that runs slower than its float original (or a composition slower than its
    # pruned parent), with the likely cause; a failure only where the thresholds set fail_if_slower
    flags: list = _field(factory=list)
    # gates
    gate_failures: list = _field(factory=list)
    inconclusive: list = _field(factory=list)
    # the test id (saved runs are matched on it); not written to the result files
    name: str | None = _field(files=False, extra_info=False)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Record":
        """A record from a dict of any version: missing optional fields get their defaults, unknown
        keys are ignored; :class:`SchemaError` when a required field is missing."""
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise SchemaError(f"a record needs {', '.join(REQUIRED)}; this one lacks {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def extra_info(self) -> dict:
        """What pytest-benchmark saves with the benchmark: every :data:`EXTRA_INFO` field."""
        return {k: getattr(self, k) for k in EXTRA_INFO}


def speedup(reference, latency) -> float | None:
    """How many times faster than the reference: reference latency / latency (any one unit), or None
    when either is missing or not positive."""
    try:
        reference, latency = float(reference), float(latency)
    except (TypeError, ValueError):
        return None
    return reference / latency if reference > 0 and latency > 0 else None


_FIELDS = {f.name: f for f in dataclasses.fields(Record)}


def _names(flag: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Record) if f.metadata[flag])


FIELDS: list[str] = list(_names("files"))
REQUIRED: tuple[str, ...] = tuple(sorted(_names("required"), key=lambda k: _FIELDS[k].metadata["required"]))
NUMERIC: tuple[str, ...] = _names("numeric")
EXTRA_INFO: tuple[str, ...] = _names("extra_info")
METRICS: tuple[str, ...] = _names("metric")
COLUMNS: list[tuple[str, Column]] = [(f.name, f.metadata["column"]) for f in dataclasses.fields(Record)
                                     if f.metadata["column"] is not None]
HEADERS: list[str] = [c.header for _, c in COLUMNS]
