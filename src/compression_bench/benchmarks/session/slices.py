"""Speed slices: each compressed variant's paired timing is made in several short slices spread over the
session, and its speedup pools them (:func:`benchmarks.measurement.timing.pooled`). All slices but the
last are timed here, in passes over every selected test before the first one runs; the last is timed
in the variant's own test, which judges its gates on the pooled figure. No pytest.

Why: on a shared VM the machine changes state for seconds to tens of seconds (another tenant), and a
small INT8 model is slowed by such a state more than its float original, so a speedup timed within two
seconds carries the state it fell in, whatever its interval says. Slices minutes apart fall in
different states; their mean moves less between runs, and how much they disagree, measured over the
whole session, widens every interval to what the slices show (:func:`ratios.dispersion`).
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from compression_bench import compression
from compression_bench.benchmarks.errors import SessionError
from compression_bench.benchmarks.measurement import timing
from compression_bench.benchmarks.measurement.ratios import dispersion
from compression_bench.benchmarks.runtimes import get_runtime
from compression_bench.benchmarks.variants.cached import bound, latency_batch


class Slices:
    """The slices timed so far in a session, per case (model, method, runtime, batch size, threads, seed)."""

    def __init__(self):
        self.timed: dict[tuple, list[timing.Timing]] = {}

    def add(self, key: tuple, t: timing.Timing) -> None:
        """One more paired timing (slice) of the variant of ``key``."""
        self.timed.setdefault(key, []).append(t)

    def pooled(self, key: tuple) -> timing.Timing:
        """The slices of ``key`` so far as one timing (:func:`timing.pooled`), widened by the dispersion of
        the session's slices of its kind: those of INT8 variants apart from the others, since a change of
        machine state moves an INT8 variant's ratio more (:func:`ratios.dispersion`)."""
        kind = compression.get_method(key[1]).quantized
        ratio, df = dispersion([t.summary for t in ts] for k, ts in self.timed.items()
                               if compression.get_method(k[1]).quantized == kind)
        return timing.pooled(self.timed[key], ratio, df)


def slice_budget(target_s: float, slices: int) -> float:
    """Seconds of paired rounds in one slice: the test's budget shared by its slices."""
    return target_s / slices


def time_slices(session, cases: Iterable[tuple], clock: Callable[[], float] = time.perf_counter) -> int:
    """Build every case (model, method, runtime, seed, batch size, threads) whose method is not the
    original, measure the peak memory of it and of its original (:meth:`Workspace.peak_memory_many`),
    then time ``session.config.slices - 1`` slices of each, pass after pass, into ``session.slices``
    (a :class:`Slices`). A case that cannot be built or run is left to its
    test, which reports it; a :class:`SessionError` (bad input, a cache fault) stops the session as in a
    test. Returns the number of slices timed."""
    c, judge, space = session.config, session.judge, session.workspace
    cases = [case for case in dict.fromkeys(cases) if case[1] != "original"
             and not judge.unsupported(case[0], case[1], case[2])]
    passes = c.slices - 1
    if passes < 1 or not cases:
        return 0
    budget = slice_budget(c.target_s, c.slices)
    session.say(f"speed slices: timing {len(cases)} compressed variant(s) {passes} time(s) each before the tests "
                f"({budget:.2f} s of paired rounds a slice); each test times one more slice and pools them")

    def skip(case, err: Exception) -> None:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        session.say(f"  [{case[0]}/{case[1]}@{case[2]}] not timed before its test ({first[:200]}); its test "
                    f"times it once")

    # everything is built (a cold run: trained, compressed, exported) before anything is timed, so that
    # no slice is timed right after a build
    built = {}
    for case in cases:
        model, method, runtime, seed, batch_size, _ = case
        try:
            built[case] = (space.on_runtime(model, "original", runtime, batch_size, seed),
                           space.on_runtime(model, method, runtime, batch_size, seed))
        except SessionError:
            raise
        except Exception as err:  # noqa: BLE001 - unbuildable or unsupported: its own test says why
            skip(case, err)
    # and their peak memory measured, several child processes at a time, while nothing is being timed
    memory = {}
    for case, pair in built.items():
        model, method, runtime, seed, batch_size, threads = case
        rt = get_runtime(runtime)
        x = latency_batch(pair[1].trained, batch_size)
        with rt.threads(threads) as in_force:
            pass
        for variant in pair:
            memory.setdefault((id(variant), runtime, batch_size, in_force), (variant, rt, x, in_force))
    space.peak_memory_many(memory.values())
    made, t0, failed = 0, time.perf_counter(), set()
    for p in range(passes):
        for case, (original, variant) in built.items():
            model, method, runtime, seed, batch_size, threads = case
            if case in failed:
                continue
            try:
                x = latency_batch(variant.trained, batch_size)
                with get_runtime(runtime).threads(threads) as in_force:
                    t = timing.measure(bound(variant, x, in_force), bound(original, x, in_force),
                                       warmup=c.warmup, target_s=budget,
                                       precision=c.precision, min_rounds=timing.SLICE_MIN_ROUNDS, clock=clock)
            except Exception as err:  # noqa: BLE001 - the variant does not run: its own test says why
                failed.add(case)
                skip(case, err)
                continue
            session.slices.add((model, method, runtime, batch_size, in_force, seed), t)
            made += 1
        session.say(f"speed slices: pass {p + 1} of {passes} done ({time.perf_counter() - t0:.0f} s)")
    return made
