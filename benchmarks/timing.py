"""Paired latency: the original timed in short blocks between a variant's timed rounds. No pytest.

Why: on a shared machine the speed of the whole machine wanders. Measured here (2-core VM, one
thread, warm cache): the same 40 tests run twice, one after the other, gave medians up to 13%
apart, a whole model's tests at a time (slower in the first half of one run and in the second
half of the other), while the spread inside each test stayed at 1-5%. With two threads
EfficientNet also switched between a 60 ms and an 85 ms mode for seconds at a time. A speedup
computed from two medians taken at different moments carries that wander. Timing the original
in blocks interleaved with the variant's rounds puts both under the same conditions, so their
ratio does not drift with the machine even when the absolute figures do.

:class:`Interleaver` is a ``setup`` hook for ``benchmark.pedantic``: pytest-benchmark calls it
before every warm-up and timed round and does not time it. Before every ``block_size``-th timed
round it calls the reference once untimed (to warm its caches), times it ``per_block`` times,
then calls the variant once untimed, so that the variant's next timed round starts warm again.
Both sides are timed with the same clock: in the suite, pytest-benchmark's timer
(``--benchmark-timer``), so changing that option cannot skew a ratio.

The reference's blocks also show whether the machine's speed moved during the test: the original
never changes, so when its block medians differ by more than :data:`MAX_DRIFT` the machine
was busy with something else, and :func:`paired` is repeated (at most :data:`MAX_ATTEMPTS` times
in all) before a speed gate is judged on it.

:func:`measure` is that whole protocol (round counts from the time budget, the paired timing, the
retries) as one plain function; the pytest suite runs the same function, handing it
``benchmark.pedantic`` for the first timing so that pytest-benchmark records its statistics.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from compression_bench.benchmarks.schema import speedup as _speedup

MIN_ROUNDS = 10
MAX_ROUNDS = 300
BLOCKS = 8  # reference blocks per test: enough to follow a change of machine speed within a test
#: Largest (max - min) / median of the reference's block medians for which a test's timing is trusted
#: (``--max-timing-drift``). In quiet one-thread runs here the blocks of one test agreed within a few
#: percent (figures in the README).
MAX_DRIFT = 0.20
MAX_ATTEMPTS = 3  # timings of one test in all, the first included, before its speed gates are inconclusive


def time_once(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds taken by one call of ``fn`` after one untimed call (one-time allocations, packing)."""
    fn()
    t0 = clock()
    fn()
    return max(clock() - t0, 1e-6)


def rounds_for(seconds_per_call: float, budget_s: float, lo: int = MIN_ROUNDS, hi: int = MAX_ROUNDS) -> int:
    """How many timed rounds fill ``budget_s``, kept between ``lo`` and ``hi``."""
    return int(min(hi, max(lo, math.ceil(budget_s / max(seconds_per_call, 1e-9)))))


class Interleaver:
    """Times ``reference`` in blocks spread over the timed rounds of ``variant`` (see the module doc).

    ``warmup_rounds`` and ``rounds`` must be those given to ``benchmark.pedantic``; about
    ``reference_rounds`` reference timings are taken in all, in at most ``blocks`` blocks.
    """

    def __init__(self, reference: Callable[[], object], variant: Callable[[], object], *, warmup_rounds: int,
                 rounds: int, reference_rounds: int, blocks: int = BLOCKS,
                 clock: Callable[[], float] = time.perf_counter):
        if rounds < 1 or reference_rounds < 1 or blocks < 1 or warmup_rounds < 0:
            raise ValueError("rounds, reference_rounds and blocks must be positive, warmup_rounds not negative")
        self.reference, self.variant, self.clock = reference, variant, clock
        self.warmup_rounds = warmup_rounds
        self.block_size = math.ceil(rounds / min(blocks, rounds))
        self.blocks = math.ceil(rounds / self.block_size)
        self.per_block = math.ceil(reference_rounds / self.blocks)
        self.samples: list[float] = []
        self.block_medians: list[float] = []
        self._calls = 0

    def __call__(self) -> None:
        call, self._calls = self._calls, self._calls + 1
        timed_round = call - self.warmup_rounds
        if timed_round < 0 or timed_round % self.block_size:
            return None
        self.reference()
        block = []
        for _ in range(self.per_block):
            t0 = self.clock()
            self.reference()
            block.append(self.clock() - t0)
        self.samples += block
        self.block_medians.append(statistics.median(block))
        self.variant()
        return None  # pedantic calls the target with its own (empty) arguments

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def steadiness(self) -> float | None:
        """How far the reference's block medians spread, (max - min) / median: the machine's speed change."""
        return spread(self.block_medians)


class Paired:
    """One paired timing: the variant's round times, and the reference timed beside them."""

    def __init__(self, variant_samples: list[float], pairing: Interleaver, max_drift: float = MAX_DRIFT):
        self.samples = list(variant_samples)
        self.pairing = pairing
        self.max_drift = max_drift

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def reference_median(self) -> float | None:
        return self.pairing.median

    @property
    def speedup(self) -> float | None:
        return _speedup(self.pairing.median, self.median) if self.samples else None

    @property
    def steadiness(self) -> float | None:
        return self.pairing.steadiness

    @property
    def steady(self) -> bool:
        s = self.steadiness
        return s is None or s <= self.max_drift


def paired(reference: Callable[[], object], variant: Callable[[], object], *, warmup_rounds: int, rounds: int,
           reference_rounds: int, clock: Callable[[], float] = time.perf_counter,
           max_drift: float = MAX_DRIFT) -> Paired:
    """The suite's timing protocol without pytest: ``warmup_rounds`` untimed calls of ``variant``, then
    ``rounds`` timed ones, with ``reference`` timed in blocks between them (see the module doc).

    ``Paired.speedup`` is the reference's median over the variant's. What pytest-benchmark's
    ``pedantic`` does with an :class:`Interleaver` as its ``setup``, as a plain loop."""
    pairing = Interleaver(reference, variant, warmup_rounds=warmup_rounds, rounds=rounds,
                          reference_rounds=reference_rounds, clock=clock)
    return Paired(run_rounds(variant, pairing, warmup_rounds, rounds, clock), pairing, max_drift)


def run_rounds(fn: Callable[[], object], setup: Optional[Callable[[], object]], warmup_rounds: int, rounds: int,
               clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """``warmup_rounds`` untimed calls of ``fn``, then ``rounds`` timed ones, ``setup`` (untimed) before
    each: what ``benchmark.pedantic(fn, setup=setup, ...)`` does. Returns the timed rounds in seconds."""
    samples = []
    for i in range(warmup_rounds + rounds):
        if setup is not None:
            setup()
        t0 = clock()
        fn()
        if i >= warmup_rounds:
            samples.append(clock() - t0)
    return samples


#: How the first timing of :func:`measure` runs: given the number of timed rounds and the setup hook
#: (an :class:`Interleaver`, or None without a reference), run them and return their seconds.
FirstTiming = Callable[[int, Optional[Interleaver]], list]


@dataclass
class Timing:
    """The accepted timing of one variant (seconds): its timed rounds, the reference's rounds timed
    between them (empty without a reference), and the reference's drift in each timing taken, the
    accepted one last (None where nothing was paired)."""
    samples: list[float]
    reference_samples: list[float] = field(default_factory=list)
    drifts: list[Optional[float]] = field(default_factory=lambda: [None])
    max_drift: float = MAX_DRIFT

    @property
    def rounds(self) -> int:
        return len(self.samples)

    @property
    def attempts(self) -> int:
        return len(self.drifts)

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
    def reference_median(self) -> float | None:
        return statistics.median(self.reference_samples) if self.reference_samples else None

    @property
    def speedup(self) -> float | None:
        """The reference's median over the variant's: see :func:`benchmarks.schema.speedup`."""
        return _speedup(self.reference_median, self.median)

    @property
    def drift(self) -> float | None:
        return self.drifts[-1] if self.drifts else None

    @property
    def steady(self) -> bool:
        """Whether the accepted timing's speed gates can be judged (the reference did not drift too far)."""
        return self.drift is None or self.drift <= self.max_drift


def measure(variant: Callable[[], object], reference: Callable[[], object] | None = None, *, warmup: int = 3,
            target_s: float = 2.0, max_drift: float = MAX_DRIFT, clock: Callable[[], float] = time.perf_counter,
            first: FirstTiming | None = None) -> Timing:
    """Time ``variant`` (a call without arguments), paired with ``reference`` when one is given: the
    suite's protocol without pytest.

    Round counts fill ``target_s`` seconds (split between the two sides when paired; see
    :func:`rounds_for`). Unpaired, one timing. Paired, the reference is timed in blocks between the
    variant's rounds (:class:`Interleaver`); while its blocks drift by more than ``max_drift`` the
    pair is timed again with :func:`paired`, at most :data:`MAX_ATTEMPTS` times in all, and the last
    timing is returned (``Timing.steady`` says whether it settled). ``first`` runs the first timing
    (default :func:`run_rounds`); the pytest suite passes one that runs ``benchmark.pedantic``."""
    if first is None:
        def first(rounds: int, setup: Optional[Interleaver]) -> list:
            return run_rounds(variant, setup, warmup, rounds, clock)
    if reference is None:
        rounds = rounds_for(time_once(variant, clock), target_s)
        return Timing(list(first(rounds, None)), [], [None], max_drift)
    rounds = rounds_for(time_once(variant, clock), target_s / 2)
    ref_rounds = rounds_for(time_once(reference, clock), target_s / 2)
    pairing = Interleaver(reference, variant, warmup_rounds=warmup, rounds=rounds, reference_rounds=ref_rounds,
                          clock=clock)
    result = Paired(first(rounds, pairing), pairing, max_drift)
    drifts = [result.steadiness]
    while not result.steady and len(drifts) < MAX_ATTEMPTS:
        result = paired(reference, variant, warmup_rounds=warmup, rounds=rounds, reference_rounds=ref_rounds,
                        clock=clock, max_drift=max_drift)
        drifts.append(result.steadiness)
    return Timing(result.samples, list(result.pairing.samples), drifts, max_drift)


def spread(values: list[float]) -> float | None:
    """(max - min) / median of a list of medians: how far one figure wandered within a run."""
    values = [v for v in values if v]
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def percentile(samples, q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``samples``, interpolated between the two nearest ranks (as
    ``numpy.percentile`` does by default); None without samples. From fewer than about 100 rounds the
    99th percentile is close to the slowest round."""
    xs = sorted(samples or ())
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def samples_of(stats) -> list:
    """The timed rounds (seconds) behind latency statistics: a :class:`Timing`'s ``samples`` or
    pytest-benchmark's ``Stats.data``."""
    return list(getattr(stats, "samples", None) or getattr(stats, "data", None) or [])
