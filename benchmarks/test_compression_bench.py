"""One benchmark per model x method x batch size x threads: time, record every metric, assert every gate.

Test ids are stable (``test_variant[<model>-<method>-bs<batch>-t<threads>]``): saved runs are matched
on them. Each compressed variant's test also times the original in blocks between its own rounds
(see :mod:`benchmarks.timing`), with pytest-benchmark's timer on both sides, so its speedup compares
two figures taken under the same conditions with the same clock. When the original's blocks show
that the machine's speed moved during the test, the paired timing is repeated (a bounded number of
times) before any speed gate is judged; if it never settles, the speed gates are reported as
inconclusive instead of failed. Accuracy, size and speed gates are all asserted here, so the test
that fails is the one whose variant missed its gate, whichever tests were selected.
"""
from __future__ import annotations

import math

import pytest
import torch
from pytest_benchmark.stats import Stats

from compression_bench.benchmarks import timing
from compression_bench.benchmarks.conftest import RECORD_KEY
from compression_bench.benchmarks.records import setting_text
from compression_bench.benchmarks.thresholds import accuracy_failures, size_failures, speed_failures


def _latency_batch(variant, batch_size: int) -> torch.Tensor:
    """A fixed batch of real validation images, the same for every variant of a model."""
    split = variant.trained.data.val
    x = split.first_batch(batch_size)
    if x.shape[0] < batch_size:  # a validation split smaller than the batch: repeat it
        x = x.repeat(math.ceil(batch_size / x.shape[0]), 1, 1, 1)[:batch_size]
    return x.contiguous()


def _runner(model, x: torch.Tensor):
    """One inference of ``model`` on ``x``, as a call without arguments (what pedantic times)."""
    def run():
        with torch.inference_mode():
            return model(x)
    return run


def _use_samples(benchmark, samples: list[float]) -> None:
    """Make pytest-benchmark report (and save) the accepted retiming's rounds, not the first ones."""
    stats = Stats()
    for s in samples:
        stats.update(s)
    benchmark.stats.stats = stats


def _time(benchmark, infer, reference, warmup: int, target: float, max_drift: float):
    """Time ``infer`` with pytest-benchmark; with a ``reference``, paired (and repeated while the machine
    is unsteady). Returns (the accepted paired timing or None, the drift seen in each timing taken)."""
    clock = benchmark._timer  # pytest-benchmark's timer (--benchmark-timer): the same on both sides
    if reference is None:
        rounds = timing.rounds_for(timing.time_once(infer, clock), target)
        benchmark.pedantic(infer, warmup_rounds=warmup, rounds=rounds, iterations=1)
        return None, [None]
    rounds = timing.rounds_for(timing.time_once(infer, clock), target / 2)
    ref_rounds = timing.rounds_for(timing.time_once(reference, clock), target / 2)
    pairing = timing.Interleaver(reference, infer, warmup_rounds=warmup, rounds=rounds,
                                 reference_rounds=ref_rounds, clock=clock)
    benchmark.pedantic(infer, setup=pairing, warmup_rounds=warmup, rounds=rounds, iterations=1)
    result = timing.Paired(benchmark.stats.stats.data, pairing, max_drift)
    drifts = [result.steadiness]
    while not result.steady and len(drifts) < timing.MAX_ATTEMPTS:
        result = timing.paired(reference, infer, warmup_rounds=warmup, rounds=rounds, reference_rounds=ref_rounds,
                               clock=clock, max_drift=max_drift)
        drifts.append(result.steadiness)
        _use_samples(benchmark, result.samples)
    return result, drifts


def test_variant(benchmark, bench, variant, model_name, method_id, batch_size, threads, request):
    x = _latency_batch(variant, batch_size)
    original = bench.variant(model_name, "original")
    infer = _runner(variant.model, x)
    reference = None if method_id == "original" else _runner(original.model, x)

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        in_force = torch.get_num_threads()
        if benchmark.disabled:
            benchmark.pedantic(infer, rounds=1, iterations=1)
            paired, drifts = None, []
        else:
            paired, drifts = _time(benchmark, infer, reference, bench.warmup, bench.target_s, bench.max_drift)
        out = infer()
    finally:
        torch.set_num_threads(before)
    assert out.shape == (batch_size, variant.trained.data.num_classes)

    m, trained = variant.metrics, variant.trained
    stats = getattr(getattr(benchmark, "stats", None), "stats", None) if drifts else None
    size_ratio = m["size_mib"] / original.metrics["size_mib"] if original.metrics["size_mib"] else None
    record = {
        "model": model_name, "method": method_id, "label": variant.method.label,
        "compression": variant.method.compression, "family": variant.method.family,
        "level": variant.method.level, "profile": bench.profile.name, "dataset": trained.data.name,
        "batch_size": batch_size, "threads": in_force,
        "accuracy": m["accuracy"], "original_accuracy": trained.accuracy,
        "params": m["params"], "nonzero_params": m["nonzero_params"], "sparsity": m["sparsity"],
        "size_mib": m["size_mib"], "zero_aware_size_mib": m["zero_aware_size_mib"], "macs": m["macs"],
        "density_weighted_macs": m["density_weighted_macs"],
        "latency_median_ms": None if stats is None else stats.median * 1e3,
        "latency_iqr_ms": None if stats is None else stats.iqr * 1e3,
        "latency_stddev_ms": None if stats is None else stats.stddev * 1e3,
        "latency_rounds": None if stats is None else stats.rounds,
        "reference_latency_median_ms": None if paired is None else paired.reference_median * 1e3,
        "reference_latency_rounds": None if paired is None else len(paired.pairing.samples),
        "reference_spread": None if paired is None else paired.steadiness,
        "reference_spreads": [d for d in drifts if d is not None],  # one per timing taken
        "timing_attempts": len(drifts),
        "speedup": None if paired is None else paired.speedup,
        "size_ratio": size_ratio,
    }

    where = f"{model_name} / {method_id} @ {setting_text((batch_size, in_force))}"
    gates = bench.thresholds.gates(model_name, method_id, bench.profile.name)
    problems = accuracy_failures(model_name, method_id, m["accuracy"], trained.accuracy, gates)
    if method_id != "original":
        problems += size_failures(where, size_ratio, gates)
    speed = speed_failures(where, record["speedup"], gates)
    inconclusive = []
    if speed and paired is not None and not paired.steady:
        inconclusive = [f"inconclusive: the machine was too busy to measure ({msg}; the original's own timing moved "
                        f"by {', '.join(f'{d:.0%}' for d in drifts)} within the test in {len(drifts)} timings, each more than "
                        f"{bench.max_drift:.0%})" for msg in speed]
    else:
        problems += speed
    record["gate_failures"], record["inconclusive"] = problems, inconclusive
    benchmark.extra_info.update({k: v for k, v in record.items() if not k.startswith("latency")})
    request.node.user_properties.append((RECORD_KEY, record))

    if inconclusive:
        request.node.warn(pytest.PytestWarning("; ".join(inconclusive)))
    assert not problems, "; ".join(problems)
