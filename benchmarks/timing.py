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
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable

MIN_ROUNDS = 10
MAX_ROUNDS = 300
BLOCKS = 8  # reference blocks per test: enough to follow a change of machine speed within a test


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
        self._calls = 0

    def __call__(self) -> None:
        call, self._calls = self._calls, self._calls + 1
        timed_round = call - self.warmup_rounds
        if timed_round < 0 or timed_round % self.block_size:
            return None
        self.reference()
        for _ in range(self.per_block):
            t0 = self.clock()
            self.reference()
            self.samples.append(self.clock() - t0)
        self.variant()
        return None  # pedantic calls the target with its own (empty) arguments

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def spread(values: list[float]) -> float | None:
    """(max - min) / median of a list of medians: how far one figure wandered within a run."""
    values = [v for v in values if v]
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)
