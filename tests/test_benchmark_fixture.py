"""The suite hands its paired timings to pytest-benchmark's fixture in one module
(benchmarks/benchmark_fixture.py): a pytest-benchmark it was not tested with stops the run before
anything trains, and a fixture without what it needs is a sentence, not wrong figures."""
from __future__ import annotations

import importlib.metadata
import types

import pytest

from compression_bench.benchmarks import benchmark_fixture


def test_a_pytest_benchmark_of_an_untested_major_version_is_refused_with_the_fix(monkeypatch):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "6.0.0" if name == "pytest-benchmark" else real(name))
    with pytest.raises(benchmark_fixture.FixtureChanged, match=r"pytest-benchmark 6\.0\.0 .*install 'pytest-benchmark<6'"):
        benchmark_fixture.check()
    monkeypatch.setattr(importlib.metadata, "version", real)
    benchmark_fixture.check()  # the installed one passes


def test_the_run_stops_before_anything_trains_on_an_untested_pytest_benchmark(suite_inprocess, monkeypatch):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "6.1" if name == "pytest-benchmark" else real(name))
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--compression-methods", "original")
    assert r.returncode == 4
    assert "install 'pytest-benchmark<6'" in r.stdout + r.stderr
    assert "epoch" not in r.stdout + r.stderr


class _Fixture:
    """What the fixture offers: a timer, one pedantic use, and statistics after it."""

    def __init__(self, keeps_stats=True):
        self._timer, self.calls, self.keeps_stats, self.stats = (lambda: 0.0), 0, keeps_stats, None

    def pedantic(self, fn, rounds, iterations):
        self.calls += 1
        fn()
        self.stats = types.SimpleNamespace(stats=None) if self.keeps_stats else types.SimpleNamespace()


def test_the_fixture_keeps_the_paired_rounds_times_after_one_public_call():
    f = _Fixture()
    benchmark_fixture.keep(f, lambda: None, [0.004, 0.001, 0.002])
    kept = benchmark_fixture.statistics(f)
    assert f.calls == 1 and kept.rounds == 3 and kept.median == pytest.approx(0.002) and kept.min == pytest.approx(0.001)


def test_a_fixture_without_its_timer_or_statistics_is_a_sentence():
    f = _Fixture(keeps_stats=False)
    with pytest.raises(benchmark_fixture.FixtureChanged, match="stats.stats"):
        benchmark_fixture.keep(f, lambda: None, [0.001])
    del f._timer
    with pytest.raises(benchmark_fixture.FixtureChanged, match="_timer"):
        benchmark_fixture.clock(f)
