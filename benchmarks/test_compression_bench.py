"""One benchmark per model x method x batch size: time inference, record every metric, gate accuracy.

Test ids are stable (``test_variant[<model>-<method>-bs<batch>]``): saved runs are matched on them.
Each compressed variant's test also times the original in blocks between its own rounds (see
:mod:`benchmarks.timing`), so its speedup compares two figures taken under the same conditions.
"""
from __future__ import annotations

import math

import torch

from benchmarks import timing
from benchmarks.conftest import RECORD_KEY
from benchmarks.thresholds import accuracy_failures


def _latency_batch(variant, batch_size: int) -> torch.Tensor:
    """A fixed batch of real validation images, the same for every variant of a model."""
    split = variant.trained.data.val
    x = split.first_batch(batch_size)
    if x.shape[0] < batch_size:  # a validation split smaller than the batch: repeat it
        x = x.repeat(math.ceil(batch_size / x.shape[0]), 1, 1, 1)[:batch_size]
    return x.contiguous()


def _speedup(stats, pairing, method_id: str) -> float | None:
    """Original latency / variant latency, both timed in this test (None when nothing was timed)."""
    if stats is None:
        return None
    if method_id == "original":
        return 1.0
    return pairing.median / stats.median if pairing is not None and pairing.median else None


def _runner(model, x: torch.Tensor):
    """One inference of ``model`` on ``x``, as a call without arguments (what pedantic times)."""
    def run():
        with torch.inference_mode():
            return model(x)
    return run


def test_variant(benchmark, bench, variant, model_name, method_id, batch_size, request):
    x = _latency_batch(variant, batch_size)
    config = request.config
    warmup = config.getoption("--latency-warmup")
    target = config.getoption("--latency-target-s")
    infer = _runner(variant.model, x)

    rounds, pairing = 1, None
    if not benchmark.disabled:
        if method_id == "original":
            rounds = timing.rounds_for(timing.time_once(infer), target)
        else:
            # the original, timed in blocks between this variant's rounds: a paired speedup
            reference = _runner(bench.variant(model_name, "original").model, x)
            rounds = timing.rounds_for(timing.time_once(infer), target / 2)
            pairing = timing.Interleaver(reference, infer, warmup_rounds=warmup, rounds=rounds,
                                         reference_rounds=timing.rounds_for(timing.time_once(reference), target / 2))
    out = benchmark.pedantic(infer, setup=pairing, warmup_rounds=warmup, rounds=rounds, iterations=1)
    assert out.shape == (batch_size, variant.trained.data.num_classes)

    m = variant.metrics
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    trained = variant.trained
    record = {
        "model": model_name, "method": method_id, "label": variant.method.label,
        "compression": variant.method.compression, "family": variant.method.family,
        "level": variant.method.level, "profile": bench.profile.name, "dataset": trained.data.name,
        "batch_size": batch_size, "threads": bench.threads,
        "accuracy": m["accuracy"], "original_accuracy": trained.accuracy,
        "params": m["params"], "nonzero_params": m["nonzero_params"], "sparsity": m["sparsity"],
        "size_mib": m["size_mib"], "zero_aware_size_mib": m["zero_aware_size_mib"], "macs": m["macs"],
        "density_weighted_macs": m["density_weighted_macs"],
        "latency_median_ms": None if stats is None else stats.median * 1e3,
        "latency_iqr_ms": None if stats is None else stats.iqr * 1e3,
        "latency_stddev_ms": None if stats is None else stats.stddev * 1e3,
        "latency_rounds": None if stats is None else stats.rounds,
        "reference_latency_median_ms": None if pairing is None else pairing.median * 1e3,
        "reference_latency_rounds": None if pairing is None else len(pairing.samples),
        "speedup": _speedup(stats, pairing, method_id),
    }
    benchmark.extra_info.update({k: v for k, v in record.items() if not k.startswith("latency")})
    request.node.user_properties.append((RECORD_KEY, record))

    gates = bench.thresholds.gates(model_name, method_id, bench.profile.name)
    problems = accuracy_failures(model_name, method_id, m["accuracy"], trained.accuracy, gates)
    assert not problems, "; ".join(problems)
