"""The one place the suite touches pytest-benchmark's ``benchmark`` fixture beyond its public API, and why.

The suite times each variant *paired* with its float original, round by round, until the speedup's
interval is narrow enough (:func:`benchmarks.measurement.timing.measure`). pytest-benchmark's public
API cannot express that: ``benchmark(fn)`` and ``benchmark.pedantic(fn, rounds=N)`` time one callable
for a number of rounds fixed in advance, and the fixture may be used once per test. Timing the
variant a second time through ``pedantic`` after the paired rounds would cost half as much time again
and save a different, unpaired measurement under the suite's figures. So the suite owns the timing
and hands its result to the fixture, which then saves, compares and prints it as its own
(``--benchmark-save``, ``--benchmark-compare``, its table):

* :func:`clock`: the fixture's timer (``--benchmark-timer``), so that both sides of every pair are
  timed with the clock pytest-benchmark would use;
* :func:`keep`: one call through the public ``pedantic`` (so the fixture counts as used), then the
  fixture's statistics are replaced by the variant's per-call times of the accepted paired rounds.

Those two need the fixture's private ``_timer`` and ``stats.stats``. :func:`check` refuses, before
anything trains, a pytest-benchmark whose major version the suite was not tested with (4 and 5), and
both functions raise a sentence naming the missing attribute rather than saving wrong figures;
``tests/test_benchmark_fixture.py`` checks the saved JSON holds exactly the paired rounds' times.
"""
from __future__ import annotations

from typing import Callable, Iterable

TESTED_MAJORS = (4, 5)


class FixtureChanged(RuntimeError):
    """pytest-benchmark's fixture no longer has what the suite hands its timings through."""


def check() -> None:
    """:class:`FixtureChanged` for a pytest-benchmark outside :data:`TESTED_MAJORS`."""
    from importlib.metadata import version
    found = version("pytest-benchmark")
    if int(found.split(".")[0]) not in TESTED_MAJORS:
        raise FixtureChanged(
            f"pytest-benchmark {found} is not one the suite was tested with ({', '.join(map(str, TESTED_MAJORS))}.x): "
            f"it hands its paired timings to the benchmark fixture through two of its internals "
            f"(compression_bench/benchmarks/benchmark_fixture.py); install 'pytest-benchmark<6'.")


def clock(benchmark) -> Callable[[], float]:
    """The fixture's timer (``--benchmark-timer``; ``time.perf_counter`` by default)."""
    timer = getattr(benchmark, "_timer", None)
    if not callable(timer):
        raise FixtureChanged("pytest-benchmark's fixture has no timer (_timer) any more: install 'pytest-benchmark<6'.")
    return timer


def keep(benchmark, call: Callable[[], object], samples: Iterable[float]) -> None:
    """Make ``samples`` (seconds per call) the fixture's statistics, after one public ``pedantic`` call of
    ``call``."""
    from pytest_benchmark.stats import Stats
    benchmark.pedantic(call, rounds=1, iterations=1)  # the fixture's one use; its one round is replaced below
    holder = getattr(benchmark, "stats", None)
    if holder is None or not hasattr(holder, "stats"):
        raise FixtureChanged("pytest-benchmark's fixture keeps no statistics (stats.stats) any more: "
                             "install 'pytest-benchmark<6'.")
    stats = Stats()
    for s in samples:
        stats.update(s)
    holder.stats = stats


def statistics(benchmark):
    """The statistics the fixture saves (those :func:`keep` gave it)."""
    return benchmark.stats.stats
