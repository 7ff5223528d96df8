"""p90 and p99 are per-call tails: percentiles of single timed calls of the variant, made after its
paired timing, not of the rounds' block means (a 2 ms model's block averages about 10 calls, which
hides a slow call in ten). On a fake clock, so the figures are exact and the test takes no time."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from compression_bench.benchmarks import suite
from compression_bench.benchmarks.measurement import tails
from compression_bench.benchmarks.reporting import report
from compression_bench.benchmarks.results import schema
from compression_bench.benchmarks.settings.config import Config
from compression_bench.benchmarks.session.session import Session


class _Spiky:
    """A fake clock and a model on it whose every 10th call takes 11 ms, the others 1 ms: its mean
    is 2 ms, its p99 per call 11 ms."""

    def __init__(self):
        self.now, self.calls = 0.0, 0

    def clock(self) -> float:
        return self.now

    def variant(self):
        self.calls += 1
        self.now += 0.011 if self.calls % 10 == 0 else 0.001

    def reference(self):
        self.now += 0.008


def _session(tmp_path, slices: int) -> Session:
    config = Config.from_options({"zoo_profile": "smoke", "zoo_cache": str(tmp_path / "cache"),
                                  "report_dir": str(tmp_path / "report"), "zoo_models": "EnhancedLeNet5",
                                  "compression_methods": "original,static_int8", "speed_slices": slices})
    return Session(config, say=lambda message: None)


def _variant(method_id: str, size: float):
    trained = SimpleNamespace(name="EnhancedLeNet5", accuracy=97.0, seed=0,
                              data=SimpleNamespace(name="digits", report=SimpleNamespace(labels=torch.tensor([]))))
    spec = SimpleNamespace(id=method_id, label=method_id, compression="INT8", family="quantization", level=None)
    return SimpleNamespace(trained=trained, method=spec, metrics={"accuracy": 97.0, "params": 10, "size_mib": size})


@pytest.mark.parametrize("slices", [1, 2])
def test_tail_percentiles_come_from_single_calls_not_from_block_means(tmp_path, slices):
    m, s = _Spiky(), _session(tmp_path, slices)
    benchmark = SimpleNamespace(_timer=m.clock, pedantic=lambda fn, rounds, iterations: fn(),
                                stats=SimpleNamespace(stats=None))
    bench = SimpleNamespace(config=s.config, judge=s.judge, slices=s.slices)
    result, _ = suite._time(benchmark, m.variant, m.reference, bench, ("EnhancedLeNet5", "eager", 64, 1, 0),
                            "static_int8")
    # every round's block holds two slow calls in twenty: its mean is 2 ms, and so is any percentile of them
    assert tails.percentile(result.samples, 99) == pytest.approx(0.002)
    r = s.judge.record(_variant("static_int8", 1.0), _variant("original", 4.0), batch_size=64, threads=1,
                       timing=result, stats=benchmark.stats.stats)
    assert r.latency_median_ms == pytest.approx(2.0)   # the paired protocol's figures are unchanged
    assert r.latency_p99_ms == pytest.approx(11.0)     # the slow call, seen per call
    assert r.latency_p90_ms < r.latency_p99_ms
    assert r.tail_calls == len(result.tails) >= tails.TAIL_MIN_CALLS and "tail_calls" in schema.FIELDS
    # the table says what the figures are, and from how many calls
    p99 = dict(schema.COLUMNS)["latency_p99_ms"]
    assert "per call" in p99.header
    assert report.cell(r.to_dict(), "latency_p99_ms", p99) == f"11.00 (n={r.tail_calls})"


def test_the_tail_pass_is_bounded_by_its_budget_and_its_minimum_count():
    clock = [0.0]

    def model(seconds):
        def call():
            clock[0] += seconds
        return call

    now = lambda: clock[0]  # noqa: E731
    assert abs(len(tails.single_calls(model(0.002), clock=now)) - tails.TAIL_S / 0.002) <= 1
    # a slow model gets its minimum count even past the budget, a very slow one stops at the limit
    assert len(tails.single_calls(model(0.1), clock=now)) == tails.TAIL_MIN_CALLS
    assert len(tails.single_calls(model(1.0), clock=now)) == round(tails.TAIL_MAX_S)
    # a very fast one stops at the largest count
    assert len(tails.single_calls(model(1e-6), clock=now)) == tails.TAIL_MAX_CALLS
    assert set(round(t, 9) for t in tails.single_calls(model(0.003), clock=now)) == {0.003}  # each call's own time
