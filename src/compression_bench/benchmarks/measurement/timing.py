"""Paired latency: a variant and its original timed alternately, round by round, and the speedup as the
centre of the per-round ratios with a 95% bootstrap interval. No pytest.

Why: on a shared machine the speed of the whole machine wanders, by 10-20% between processes a
minute apart and for seconds at a time within one (measured on the 2-core VMs this suite runs on,
figures in docs/methodology.md). A ratio of two medians taken at different moments carries
that wander. Here every *round* times both sides back to back, in the order reference-variant on
even rounds and variant-reference on odd ones (A B B A ...), so both sides of each round's ratio come
from the same fraction of a second and a steady drift cancels over two rounds. Each side of a round
is a *block* of one or more calls sized to :data:`BLOCK_S` (a 2 ms model is called 10 times a block,
a 150 ms model once), and its per-call time is the block's time over its calls.

**The estimate** is the geometric centre of the per-round ratios: the 10%-trimmed mean of their
logarithms, exponentiated (:func:`centre`). The trimmed mean keeps a round that another process
interrupted (one ratio off by 30% or more) from moving the figure, which the plain mean does not, and
is steadier than the median, which uses one or two rounds out of many.

**The interval** is a percentile bootstrap of that estimator over rounds (:func:`interval`), a moving
block bootstrap when neighbouring rounds are correlated (their lag-1 autocorrelation is significant),
so that slow noise is not counted as independent evidence. When the machine changes state for a
fifth of the test or longer (the means of five consecutive segments differ significantly), the
interval is at least as wide as the segments' spread says (:func:`segment_half_width`). It covers
the noise within the test; a state that lasts through the whole test (another process for tens of
seconds) is not in it. Where the original's latency shows such a state, the suite times the test
again (:func:`measure_in_state`).

**Slices**: a test can also be timed in several short timings (slices) at different moments of a
session, pooled by :func:`pooled`: the speedup is the geometric mean of the slices' estimates, and
its interval is widened by :func:`dispersion`, how much more the slices of the session's tests
disagree than their own intervals say (the suite times each compressed variant so,
``--speed-slices``; the session runs the slices, this module only pools them).

**Stopping**: timing stops when the time budget ``target_s`` is spent (after at least
:data:`MIN_ROUNDS` rounds), or, after :data:`EARLY_ROUNDS` rounds, as soon as the interval's half-width
is at most ``precision`` (2% by default), or after :data:`MAX_ROUNDS` rounds. From few rounds the
bootstrap interval is widened by Student's t (:func:`small_sample_factor`): in two runs back to back,
intervals from 10 rounds held the other run's estimate less often than their width promised. The
half-width during timing comes from the normal approximation and the segments (cheap); the reported
interval from the bootstrap and the segments at the end.

**Tails** (p90, p99) are per call, from a pass of single calls after the paired timing: see
:mod:`benchmarks.measurement.tails`.

:func:`measure` is the whole protocol as one plain function; the pytest suite runs it with
pytest-benchmark's timer and hands pytest-benchmark the variant's per-call times as its statistics.

    from compression_bench.benchmarks.measurement.timing import measure
    t = measure(lambda: int8(x), lambda: fp32(x))
    print(t.speedup, t.speedup_low, t.speedup_high, t.rounds)

The estimator, its intervals and the slices' pooling are plain statistics of numbers and live in
:mod:`benchmarks.measurement.ratios` (``centre``, ``interval``, ``segment_half_width``, ``dispersion``,
...); this module is the protocol that times the rounds, stops, and turns them into a :class:`Timing`.
Its length (about 330 lines, 60 of them this explanation) is that one concern: the rounds, the
stopping rule, the timing of a test again in another machine state, and the pooling of slices; the
per-call tails, timed apart from the rounds, are in :mod:`benchmarks.measurement.tails`.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from compression_bench.benchmarks.measurement.ratios import (centre, half_width, interval, median_interval,
                                                              normal_half_width, pooled_interval, slice_summary)

MIN_ROUNDS = 10       # rounds before the budget may stop timing
EARLY_ROUNDS = 20     # rounds before a narrow interval may stop it: ten rounds can look quiet by chance
MAX_ROUNDS = 400
BLOCK_S = 0.02        # seconds of calls per side of a round ("tens of milliseconds")
PRECISION = 0.02      # stop when the speedup's 95% half-width is at most this (relative)
METHOD = ("10%-trimmed geometric mean of per-round ratios (A B B A), 95% percentile bootstrap over rounds, "
          "widened to the spread of 5 consecutive segments when they differ")
METHOD_SLICED = ("geometric mean of the estimates of {k} slices timed at different moments of the session (each: "
                 + METHOD + "); 95% interval from their standard errors widened by the session's dispersion "
                 "(x{ratio:.2f} in variance)")
SLICE_MIN_ROUNDS = 6  # rounds of one slice at least, when a test is timed in slices


# ---------------------------------------------------------------- the protocol

def time_once(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds taken by one call of ``fn`` after one untimed call (one-time allocations, packing)."""
    fn()
    t0 = clock()
    fn()
    return max(clock() - t0, 1e-9)


def calls_per_block(seconds_per_call: float, block_s: float = BLOCK_S) -> int:
    """How many calls make a block of about ``block_s`` seconds (at least one)."""
    return max(1, min(1000, round(block_s / max(seconds_per_call, 1e-9))))


def _block(fn: Callable[[], object], calls: int, clock: Callable[[], float]) -> float:
    t0 = clock()
    for _ in range(calls):
        fn()
    return (clock() - t0) / calls


@dataclass
class Timing:
    """The timing of one variant (seconds per call): one sample per round, the reference's samples of
    the same rounds (empty without a reference), and the speedup's estimate and 95% interval."""
    samples: list[float]
    reference_samples: list[float] = field(default_factory=list)
    calls: tuple[int, int] = (1, 1)          # calls per block: variant, reference
    seconds: float = 0.0                     # wall time of the timed rounds
    precision: float = PRECISION
    #: the rounds of each slice, in order, when the timing pools slices made at different moments of
    #: the session (:func:`pooled`); empty for one timing
    slices: tuple[int, ...] = ()
    #: how much more the slices' estimates disagree than their own intervals say (:func:`dispersion`),
    #: and the degrees of freedom it was estimated from
    dispersion: float = 1.0
    dispersion_df: int = 0
    #: seconds of each single call of the tail pass made after the timing (:func:`single_calls`), which
    #: the p90 and p99 come from; empty when none was made
    tails: list[float] = field(default_factory=list)

    def __post_init__(self):
        self._ci = None
        self._summary = None

    @property
    def summary(self) -> tuple[float, float]:
        """This timing's :func:`slice_summary`: (estimate, standard error), in logs."""
        if self._summary is None:
            self._summary = slice_summary(self.log_ratios)
        return self._summary

    @property
    def rounds(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return q3 - q1

    @property
    def stddev(self) -> float:
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    @property
    def median_interval(self) -> tuple[float, float]:
        lo, hi = median_interval(self.samples)
        return min(lo, self.median), max(hi, self.median)

    @property
    def reference_median(self) -> float | None:
        return statistics.median(self.reference_samples) if self.reference_samples else None

    @property
    def log_ratios(self) -> list[float]:
        return [math.log(r / v) for r, v in zip(self.reference_samples, self.samples)]

    @property
    def slice_log_ratios(self) -> list[list[float]]:
        """The per-round log ratios of each slice (one list for a single timing)."""
        logs, out, i = self.log_ratios, [], 0
        for n in self.slices or (len(logs),):
            out.append(logs[i:i + n])
            i += n
        return out

    def _interval(self) -> tuple[float, float, int]:
        if self._ci is None:
            if len(self.slices) > 1:
                self._ci = pooled_interval([slice_summary(s) for s in self.slice_log_ratios], self.dispersion,
                                           self.dispersion_df)
            else:
                self._ci = interval(self.log_ratios)
        return self._ci

    @property
    def speedup(self) -> float | None:
        """The reference's per-call time over the variant's: the centre of the per-round ratios (of a
        pooled timing, the geometric mean of its slices' centres)."""
        if not self.reference_samples:
            return None
        if len(self.slices) > 1:
            return math.exp(statistics.fmean(math.log(centre(s)) for s in self.slice_log_ratios))
        return centre(self.log_ratios)

    @property
    def speedup_low(self) -> float | None:
        return self._interval()[0] if self.reference_samples else None

    @property
    def speedup_high(self) -> float | None:
        return self._interval()[1] if self.reference_samples else None

    @property
    def bootstrap_block(self) -> int | None:
        return self._interval()[2] if self.reference_samples else None

    @property
    def half_width(self) -> float | None:
        return half_width(self.speedup_low, self.speedup_high)

    @property
    def method(self) -> str:
        """How the speedup and its interval were made (:data:`METHOD`, or :data:`METHOD_SLICED`)."""
        if len(self.slices) > 1:
            return METHOD_SLICED.format(k=len(self.slices), ratio=self.dispersion)
        return METHOD

    @property
    def reference_noise(self) -> float | None:
        """Round-to-round variation of the reference's per-call time: the standard deviation of its
        logarithm (0.03: about 3%), the machine's noise as this test saw it."""
        if len(self.reference_samples) < 2:
            return None
        return statistics.stdev(math.log(s) for s in self.reference_samples)


# ---------------------------------------------------------------- slices spread over a session

def pooled(slices: Sequence["Timing"], ratio: float = 1.0, df: int = 0) -> "Timing":
    """One timing of the variant from ``slices`` (paired timings of the same variant and original at
    different moments of the session, oldest first): the rounds of all, the speedup the geometric mean
    of the slices' estimates, its interval :func:`pooled_interval` with the session's
    :func:`dispersion` ``ratio`` on ``df`` degrees of freedom. One slice is returned as it is."""
    if len(slices) == 1:
        return slices[0]
    out = Timing([s for t in slices for s in t.samples], [s for t in slices for s in t.reference_samples],
                 slices[-1].calls, sum(t.seconds for t in slices), slices[-1].precision,
                 slices=tuple(t.rounds for t in slices), dispersion=ratio, dispersion_df=df)
    out._ci = pooled_interval([t.summary for t in slices], ratio, df)  # the slices' summaries, not bootstrapped again
    return out


#: how far (relative) the original's median in one test may be from its median over the session's
#: earlier tests before the test is timed again (see :func:`measure_in_state`)
STATE_TOLERANCE = 0.10


def measure_in_state(measure_once: Callable[[], "Timing"], typical: float | None,
                     tolerance: float = STATE_TOLERANCE, retries: int = 1) -> tuple["Timing", int]:
    """``measure_once()``, timed again (up to ``retries`` times) when its original ran more than
    ``tolerance`` away from ``typical``, its median over the session's earlier tests; keeps the timing
    whose original is closest to ``typical``. Returns (that timing, the number of timings made).

    Why: on a shared VM the machine sometimes changes speed for a few seconds (a neighbour's burst of
    memory traffic), and not by the same factor for every model: measured on a 2-core VM
    (2026-12-04), one test's EnhancedLeNet5 original ran 23.0 ms against 17.7-18.7 ms in every other
    test of two runs, and in the same rounds its composition variant ran 3.57 ms against 2.19 ms, so
    even the paired speedup fell 21% (8.09x to 6.43x) while its interval stayed ±1.2%. Pairing cancels
    a uniform change, not one that slows a small INT8 model more than its float original; the
    original's own median, compared with the rest of the session, shows that the machine was in
    another state. The timing of the original itself (unpaired) is checked the same way."""
    result = measure_once()
    made = 1
    if typical is None or typical <= 0:
        return result, made

    def off(t: "Timing") -> float:
        return abs(math.log((t.reference_median or t.median) / typical))
    limit = math.log1p(tolerance)
    while off(result) > limit and made <= retries:
        again = measure_once()
        made += 1
        result = min((result, again), key=off)
    return result, made


def measure(variant: Callable[[], object], reference: Callable[[], object] | None = None, *, warmup: int = 3,
            target_s: float = 2.0, precision: float = PRECISION, min_rounds: int = MIN_ROUNDS,
            max_rounds: int = MAX_ROUNDS, block_s: float = BLOCK_S,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time ``variant`` (a call without arguments), paired round by round with ``reference`` when one
    is given (see the module doc): ``warmup`` untimed calls of each, then rounds until the speedup's
    half-width is at most ``precision`` (after ``min_rounds``), ``target_s`` seconds of rounds are spent,
    or ``max_rounds`` are done. Unpaired, rounds of the variant alone until ``target_s`` (at least
    ``min_rounds``)."""
    t_var = time_once(variant, clock)
    k_var = calls_per_block(t_var, block_s)
    if reference is None:
        for _ in range(warmup):
            variant()
        samples: list[float] = []
        start = clock()
        while len(samples) < max_rounds and (len(samples) < min_rounds or clock() - start < target_s):
            samples.append(_block(variant, k_var, clock))
        return Timing(samples, [], (k_var, 0), clock() - start, precision)
    t_ref = time_once(reference, clock)
    k_ref = calls_per_block(t_ref, block_s)
    for _ in range(warmup):
        reference()
        variant()
    var_s: list[float] = []
    ref_s: list[float] = []
    logs: list[float] = []
    start = clock()
    while len(var_s) < max_rounds:
        if len(var_s) % 2 == 0:
            r = _block(reference, k_ref, clock)
            v = _block(variant, k_var, clock)
        else:
            v = _block(variant, k_var, clock)
            r = _block(reference, k_ref, clock)
        var_s.append(max(v, 1e-12))
        ref_s.append(max(r, 1e-12))
        logs.append(math.log(ref_s[-1] / var_s[-1]))
        n = len(var_s)
        # stop on an even count, so that each order (A B, B A) has as many rounds as the other
        if n >= min_rounds and n % 2 == 0 and (clock() - start >= target_s or
                                               (n >= max(min_rounds, EARLY_ROUNDS) and normal_half_width(logs) <= precision)):
            break
    return Timing(var_s, ref_s, (k_var, k_ref), clock() - start, precision)


def spread(values: list[float]) -> float | None:
    """(max - min) / median of a list of medians: how far one figure wandered within a run."""
    values = [v for v in values if v]
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def samples_of(stats) -> list:
    """The timed rounds (seconds) behind latency statistics: a :class:`Timing`'s ``samples`` or
    pytest-benchmark's ``Stats.data``."""
    return list(getattr(stats, "samples", None) or getattr(stats, "data", None) or [])
