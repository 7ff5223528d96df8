"""Comparing two runs' speed: a change is significant only when its interval excludes no change and it
is larger than the noise floor. Timed on a fake clock with noise, so the outcome does not depend on the
machine that runs the test."""
from __future__ import annotations

import random

import pytest

from compression_bench.benchmarks.reporting import compare, saved
from compression_bench.benchmarks.measurement import timing
from compression_bench.benchmarks.settings.options import OptionError, drop_fraction


class _NoisyMachine:
    """A fake clock: a call of nominal cost c takes c times a random factor (3% spread, a few slow spikes)."""

    def __init__(self, seed: int):
        self.now, self.rng = 0.0, random.Random(seed)

    def clock(self) -> float:
        return self.now

    def model(self, cost: float, extra: float = 0.0):
        def call():
            spike = 1.5 if self.rng.random() < 0.02 else 1.0
            self.now += (cost + extra) * self.rng.lognormvariate(0, 0.03) * spike
        return call


def _run(seed: int, extra: float = 0.0) -> dict:
    """One saved record of a variant 4x faster than its original, its calls ``extra`` seconds slower."""
    m = _NoisyMachine(seed)
    t = timing.measure(m.model(0.010, extra), m.model(0.040), warmup=2, target_s=5.0, clock=m.clock)
    lo, hi = t.median_interval
    return {"model": "M", "method": "static_int8", "batch_size": 64, "threads": 1, "runtime": "eager",
            "accuracy": 97.0, "size_mib": 1.0, "params": 10, "speedup": t.speedup, "speedup_low": t.speedup_low,
            "speedup_high": t.speedup_high, "latency_median_ms": t.median * 1e3, "latency_low_ms": lo * 1e3,
            "latency_high_ms": hi * 1e3}


def test_two_runs_of_the_same_code_show_no_significant_change():
    for seed in range(5):
        c = compare.compare_records([_run(seed)], [_run(100 + seed)], "A", "B")
        (p,) = c.pairs
        change = p.speedup_change()
        assert change.low <= 1.0 <= change.high or abs(change.ratio - 1) <= compare.SPEEDUP_NOISE, change
        assert not change.significant and compare.speedup_regressions(c, 0.05) == []


@pytest.mark.parametrize("slowdown", [0.10, 0.20])
def test_a_variant_made_slower_on_purpose_is_a_significant_drop(slowdown, capsys):
    c = compare.compare_records([_run(1)], [_run(2, extra=0.010 * slowdown)], "A", "B")
    (p,) = c.pairs
    change = p.speedup_change()
    print(f"{slowdown:.0%} slower: speedup B/A {change.text()}")  # the interval, in the test's output
    assert change.significant and change.high < 1.0
    assert change.ratio == pytest.approx(1 / (1 + slowdown), rel=0.03)
    (msg,) = compare.speedup_regressions(c, 0.05)
    assert "a significant drop of more than 5%" in msg and "▼" in msg
    assert compare.speedup_regressions(c, slowdown + 0.05) == []  # smaller than the allowed drop: passes
    assert "speedup changed significantly" in "\n".join(c.summary())


def test_a_run_saved_without_intervals_is_compared_but_never_called_significant():
    old = dict(_run(1), speedup_low=None, speedup_high=None)
    c = compare.compare_records([old], [_run(2, extra=0.005)], "A", "B")
    change = c.pairs[0].speedup_change()
    assert change.low is None and not change.significant and change.text() == f"{change.ratio:.2f}x"
    assert compare.speedup_regressions(c, 0.05) == []


@pytest.mark.parametrize("text, value", [("10%", 0.1), ("0.2", 0.2), (" 5% ", 0.05), ("0", 0.0)])
def test_the_allowed_drop_reads_as_a_percentage_or_a_fraction(text, value):
    assert drop_fraction(text, "--x") == pytest.approx(value)


@pytest.mark.parametrize("text", ["ten", "100%", "-5%", "1.5"])
def test_a_bad_allowed_drop_names_the_option(text):
    with pytest.raises(OptionError, match="--compare-fail-speedup takes a relative drop such as 10%"):
        drop_fraction(text, "--compare-fail-speedup")


def test_runs_from_machines_of_another_class_are_compared_with_a_warning(tmp_path):
    import json
    from compression_bench.benchmarks.__main__ import main as cli

    def saved_run(name, key):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"format": 1, "header": {"Profile": "default", "Machine key": key},
                                    "results": [_run(1)]}))
        return str(path)
    a, b = saved_run("a", "x86-avx512-vnni-72f1cb45"), saved_run("b", "x86-avx2-0badc0de")
    c = compare.compare_runs(saved.load_run(a), saved.load_run(b))
    (note,) = c.notes
    assert "different machines (x86-avx512-vnni-72f1cb45 → x86-avx2-0badc0de)" in note
    assert "another capability class (x86-avx512-vnni → x86-avx2)" in note
    same = compare.compare_runs(saved.load_run(a), saved.load_run(saved_run("c", "x86-avx512-vnni-72f1cb45")))
    assert same.notes == []
    assert cli(["compare", a, b, "--compare-fail-speedup", "10%"]) == 0  # the same figures: nothing fell


class _StateMachine(_NoisyMachine):
    """A noisy machine that, during one burst of ``burst`` seconds, runs the small INT8 variant 60%
    slower and the float original 30% slower (a neighbour's memory traffic hurts them unequally)."""

    def __init__(self, seed: int, burst: tuple[float, float]):
        super().__init__(seed)
        self.burst = burst

    def model(self, cost: float, extra: float = 0.0, hurt: float = 0.0):
        plain = super().model(cost, extra)

        def call():
            before = self.now
            plain()
            if self.burst[0] <= before < self.burst[1]:
                self.now += (self.now - before) * hurt
        return call


def test_a_test_timed_while_the_machine_changed_state_is_timed_again_and_agrees_with_the_others():
    """The suite's remedy for a state change that pairing cannot cancel: the original's median, far from
    its median in the session's earlier tests, makes the test time again; the timing kept is the one in
    the usual state, and its speedup is the true 4x. Timed once, the same test reads 3.45x, its interval below 4x."""
    m = _StateMachine(3, burst=(0.0, 2.0))  # the first timing falls in the burst; the retry does not
    measure_once = lambda: timing.measure(m.model(0.010, hurt=0.6), m.model(0.040, hurt=0.3), warmup=2,  # noqa: E731
                                          target_s=2.0, clock=m.clock)
    typical = 0.040  # the original's median in the earlier tests
    t, made = timing.measure_in_state(measure_once, typical)
    assert made == 2 and t.speedup == pytest.approx(4.0, rel=0.03) and t.reference_median == pytest.approx(0.040, rel=0.05)
    m2 = _StateMachine(3, burst=(0.0, 2.0))
    once = timing.measure(m2.model(0.010, hurt=0.6), m2.model(0.040, hurt=0.3), warmup=2, target_s=2.0,
                          clock=m2.clock)
    assert once.speedup < 0.93 * 4.0  # what a single timing would have said (most rounds in the burst)
    assert once.speedup_high < 4.0  # and its interval would not have held the truth


def test_a_test_in_the_usual_state_is_timed_once_and_the_first_test_has_nothing_to_compare():
    m = _NoisyMachine(4)
    once = lambda: timing.measure(m.model(0.010), m.model(0.040), warmup=2, target_s=1.0, clock=m.clock)  # noqa: E731
    assert timing.measure_in_state(once, 0.040)[1] == 1
    assert timing.measure_in_state(once, None)[1] == 1
    # a state that lasts: timed again once, then the closer of the two is kept and the test goes on
    slow = lambda: timing.measure(m.model(0.010), m.model(0.060), warmup=2, target_s=1.0, clock=m.clock)  # noqa: E731
    t, made = timing.measure_in_state(slow, 0.040)
    assert made == 2 and t.reference_median == pytest.approx(0.060, rel=0.05)
