"""A session's judge: it makes the record of each measurement (or of a variant that has no figures),
judges its accuracy, size and speed gates against the thresholds for this machine's capability class,
and keeps the records and the original's latency in each test so far. No pytest.
"""
from __future__ import annotations

import statistics
from typing import Mapping

from compression_bench import compression
from compression_bench.benchmarks.measurement import stats as stats_
from compression_bench.benchmarks.measurement.ratios import centre
from compression_bench.benchmarks.measurement.tails import percentile
from compression_bench.benchmarks.measurement.timing import Timing
from compression_bench.benchmarks.variants import cached
from compression_bench.benchmarks.settings.config import Config
from compression_bench.benchmarks.results.records import setting_text
from compression_bench.benchmarks.results.schema import METRICS, Record, speedup
from compression_bench.benchmarks.gates.thresholds import (accuracy_failures, size_failures, slowdown_flags,
                                                             speed_verdicts)


def compression_text(spec, metrics: Mapping) -> str:
    """The Compression column: the method's text, and for accuracy-aware INT8 the layers kept in float."""
    kept = metrics.get("float_layers")
    if kept is None:
        return spec.compression
    if not kept:
        return f"{spec.compression}, 0 layers float"
    names = ", ".join(kept[:3]) + (", ..." if len(kept) > 3 else "")
    return f"{spec.compression}, {len(kept)} layer(s) float ({names})"


class Judge:
    """Records and gates for ``config`` (its profile and thresholds) on a machine of ``cpu_class``
    (:func:`benchmarks.measurement.machine.identify`'s ``capability_class``)."""

    def __init__(self, config: Config, cpu_class: str):
        self.config, self.cpu_class = config, cpu_class
        self.records: list[Record] = []
        #: the original's median per (model, runtime, batch, threads, seed) in each test so far (seconds)
        self.originals: dict[tuple, list[float]] = {}

    def unsupported(self, model: str, method: str, runtime: str = "eager") -> str | None:
        """The thresholds file's reason for not running ``method`` on ``model`` on ``runtime``, or None."""
        return self.config.thresholds.unsupported(model, method, self.config.profile.name, runtime, self.cpu_class)

    def status_record(self, model: str, method: str, status: str, *, batch_size: int, threads: int,
                      runtime: str = "eager", seed: int = 0) -> Record:
        """The row of a variant that has no figures: ``failed: ...`` (a gate failure) or ``n/a: ...``."""
        spec = compression.get_method(method)
        r = Record(model=model, method=spec.id, label=spec.label, compression=spec.compression, family=spec.family,
                   level=spec.level, profile=self.config.profile.name, batch_size=batch_size, threads=threads,
                   runtime=runtime, seed=seed, status=status, accuracy=None, params=None, size_mib=None)
        if status.startswith("failed"):
            r.gate_failures = [f"{model} / {method}: {status}"]
        return r

    def typical_original(self, key: tuple) -> float | None:
        """The median of the original's per-test medians so far for ``key`` (model, runtime, batch size,
        threads, seed), in seconds; None before its first test."""
        seen = self.originals.get(key)
        return statistics.median(seen) if seen else None

    def note_original(self, key: tuple, seconds: float) -> None:
        """One more test's median of the original for ``key`` (see :meth:`typical_original`)."""
        self.originals.setdefault(key, []).append(seconds)

    def record(self, variant: cached.Variant, original: cached.Variant, *, batch_size: int, threads: int,
               timing: Timing | None = None, stats=None, runtime: str = "eager", memory: Mapping | None = None,
               timings: int = 1) -> Record:
        """The record of one measurement, its gates judged (:meth:`gate`). ``timing`` is the accepted
        timing (None when not timed); ``stats`` (default: ``timing``) gives the variant's latency
        statistics in seconds (``median``, ``iqr``, ``stddev``, ``rounds``), e.g. pytest-benchmark's;
        ``timings``: how many timings were made (2: timed again because the machine changed state)."""
        stats = timing if stats is None else stats
        m, trained, spec = variant.metrics, variant.trained, variant.method
        ms = lambda s: None if s is None else s * 1e3  # noqa: E731
        o_size = original.metrics["size_mib"]
        paired = timing is not None and bool(timing.reference_samples)
        tails = timing.tails if timing is not None else []  # single calls after the rounds: p90, p99 per call
        r = Record(model=trained.name, method=spec.id, label=spec.label, compression=compression_text(spec, m),
                   family=spec.family, level=spec.level, profile=self.config.profile.name, dataset=trained.data.name,
                   batch_size=batch_size, threads=threads, runtime=runtime, seed=trained.seed,
                   # against the same runtime's float original, measured on the same images
                   original_accuracy=original.metrics["accuracy"],
                   **{k: m.get(k) for k in METRICS},
                   latency_median_ms=ms(stats.median) if stats else None,
                   latency_p90_ms=ms(percentile(tails, 90)), latency_p99_ms=ms(percentile(tails, 99)),
                   tail_calls=len(tails) or None,
                   peak_mib=(memory or {}).get("peak_mib"), peak_increase_mib=(memory or {}).get("peak_increase_mib"),
                   latency_iqr_ms=ms(stats.iqr) if stats else None,
                   latency_stddev_ms=ms(stats.stddev) if stats else None,
                   latency_rounds=stats.rounds if stats else None,
                   reference_latency_median_ms=ms(timing.reference_median) if paired else None,
                   reference_latency_rounds=len(timing.reference_samples) if paired else None,
                   reference_noise=timing.reference_noise if paired else None,
                   timing_seconds=timing.seconds if timing else None,
                   timings=timings if timing else None,
                   size_ratio=m["size_mib"] / o_size if o_size else None)
        if timing is not None and timing.samples:
            r.latency_low_ms, r.latency_high_ms = (ms(v) for v in timing.median_interval)
        if paired:  # the centre of the per-round ratios, with its interval
            r.speedup, r.speedup_low, r.speedup_high = timing.speedup, timing.speedup_low, timing.speedup_high
            r.speedup_half_width, r.speedup_method = timing.half_width, timing.method
            r.speed_slices, r.dispersion = len(timing.slices) or 1, timing.dispersion
            if len(timing.slices) > 1:
                r.slice_speedups = [round(centre(s), 4) for s in timing.slice_log_ratios]
        else:
            r.speedup = speedup(r.reference_latency_median_ms, r.latency_median_ms)
        if m.get("predictions") is not None:  # the interval, and the paired test against the original
            stats_.annotate(r, m["predictions"], original.metrics.get("predictions"), trained.data.report.labels.tolist())
        return self.gate(r)

    def gate(self, r: Record) -> Record:
        """Judge the record's accuracy, size and speed gates (``thresholds`` for this machine's class); fills
        ``gate_failures``, ``inconclusive`` (a speed gate whose interval straddles it with the estimate
        on the wrong side) and ``flags`` (slower than what it replaces)."""
        where = f"{r.model} / {r.method} @ {setting_text((r.batch_size, r.threads, r.runtime))}"
        gates = self.config.thresholds.gates(r.model, r.method, self.config.profile.name, r.runtime or "eager",
                                             self.cpu_class)
        problems = accuracy_failures(r.model, r.method, r.accuracy, r.original_accuracy, gates, r.delta_p_value)
        if r.method != "original":
            problems += size_failures(where, r.size_ratio, gates)
        speed, inconclusive = speed_verdicts(where, r.speedup, gates, r.speedup_low, r.speedup_high)
        r.flags = slowdown_flags(r, self._parent_record(r), self.cpu_class)
        if r.flags and gates.get("fail_if_slower"):
            problems += [f"{where}: {flag} (fail_if_slower is set for class {self.cpu_class})" for flag in r.flags]
        r.gate_failures, r.inconclusive = problems + speed, inconclusive
        return r

    def _parent_record(self, r: Record) -> Record | None:
        """The record of a composition's pruned parent in the same setting, when this session has it."""
        spec = compression.get_method(r.method)
        if not spec.steps:
            return None
        parent = "+".join(s.id for s in spec.steps[:-1])
        return next((p for p in self.records if p.model == r.model and p.method == parent and p.runtime == r.runtime
                     and p.batch_size == r.batch_size and p.threads == r.threads and p.seed == r.seed), None)

    def add(self, record: Record) -> None:
        """One more record of the session (a test's, handed over by the plugin)."""
        self.records.append(record)
