"""Per-call tail latency (p90, p99): a pass of single timed calls of a variant, made after its paired
timing (:func:`benchmarks.measurement.timing.measure`), and their percentiles. No pytest.

The tails come from single calls, not from the paired rounds: a round's block is the mean of up to
1,000 calls (about 10 for a 2 ms model), which averages a slow call away, and users read p99 as the
latency of one inference (as MLPerf and optimum-benchmark report it). The pass (:func:`single_calls`:
:data:`TAIL_S` seconds, at least :data:`TAIL_MIN_CALLS` calls) is outside the rounds, so it changes
neither the median nor the speedup.
"""
from __future__ import annotations

import time
from typing import Callable

TAIL_S = 0.5          # seconds of single calls for the tails (p90, p99), after the paired timing
TAIL_MIN_CALLS = 20   # single calls at least, past TAIL_S if need be (a 100 ms model: 2 s) ...
TAIL_MAX_S = 5.0      # ... but no longer than this (a 1 s model: 5 calls)
TAIL_MAX_CALLS = 2000  # and no more calls than this (a model of microseconds)


def single_calls(fn: Callable[[], object], *, budget_s: float = TAIL_S, min_calls: int = TAIL_MIN_CALLS,
                 max_s: float = TAIL_MAX_S, max_calls: int = TAIL_MAX_CALLS,
                 clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds of each of a run of single timed calls of ``fn`` (warm: call it after its timing): until
    ``budget_s`` is spent and ``min_calls`` are made, or ``max_s`` is spent, or ``max_calls`` are made.
    The tails come from these (see the module doc): from n calls the 99th percentile is close to the
    slowest when n is under about 100, so the count goes with the figures."""
    out: list[float] = []
    start = clock()
    while len(out) < max_calls:
        t0 = clock()
        fn()
        t1 = clock()
        out.append(max(t1 - t0, 1e-12))
        spent = t1 - start
        if spent >= max_s or (spent >= budget_s and len(out) >= min_calls):
            break
    return out


def percentile(samples, q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``samples``, interpolated between the two nearest ranks (as
    ``numpy.percentile`` does by default); None without samples. From fewer than about 100 samples the
    99th percentile is close to the slowest one."""
    xs = sorted(samples or ())
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
