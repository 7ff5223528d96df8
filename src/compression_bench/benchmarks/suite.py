"""One benchmark per model x method x runtime x batch size x threads: time, record every metric, assert
every gate.

Test ids are stable (``test_variant[<model>-<method>-bs<batch>-t<threads>]`` on eager,
``test_variant[<model>-<method>-<runtime>-bs<batch>-t<threads>]`` on another runtime, ``-seed<k>`` after
the runtime for the seeds after the first): saved runs are matched on them. On a runtime other than eager, the original timed beside each variant is the same
runtime's float original, and accuracy comes from running the runtime's artifact. The timing protocol is :func:`benchmarks.measurement.timing.measure`: each compressed variant's test times the
variant and the original alternately, round by round, with pytest-benchmark's timer on both sides,
until the speedup's 95% interval is narrow enough or the test's budget is spent; pytest-benchmark
keeps (and saves) the variant's per-round times as its statistics. The session builds the record and
judges the gates on the interval (:meth:`benchmarks.session.judge.Judge.record`); they are all asserted
here, so the test that fails is the one whose variant missed its gate, whichever tests were selected.
A speed gate whose interval straddles it, with the estimate on the wrong side, is reported as
inconclusive instead of failed.

A model or method that cannot be built or run (FX cannot trace the model, Torch-Pruning cannot group a
layer) fails its own test with ``failed: <first line of the error>`` in its row, and the rest of the
matrix goes on; a method the thresholds file declares ``unsupported`` for the model is skipped with
``n/a: <reason>`` in its row, as is a method the runtime cannot express (ONNX Runtime has no QAT path).
"""
from __future__ import annotations

import pytest

from compression_bench.benchmarks import benchmark_fixture
from compression_bench.benchmarks.measurement import tails, timing
from compression_bench.benchmarks.variants.cached import bound, latency_batch
from compression_bench.benchmarks.variants.runtime_variants import RuntimeUnsupported
from compression_bench.benchmarks.session.slices import slice_budget
from compression_bench.benchmarks.runtimes import get_runtime
from compression_bench.benchmarks.errors import SessionError, VariantFailure
from compression_bench.benchmarks.session.session import RECORD_KEY


def _time(benchmark, infer, reference, bench, key, method) -> tuple[timing.Timing, int]:
    """:func:`timing.measure` with pytest-benchmark's timer. A compressed variant timed in slices
    (``--speed-slices``, :mod:`benchmarks.session.slices`) times its last slice here and pools it with
    those timed before the tests; otherwise the test is timed again when the original ran far from its
    median in the session's earlier tests (:func:`timing.measure_in_state`). pytest-benchmark keeps (and
    saves) the variant's per-call times of the accepted paired rounds as its statistics. After the
    accepted timing, and outside its rounds, a short pass of single calls of the variant gives the
    per-call tails (:func:`tails.single_calls`, the timing's ``tails``). Returns the timing and the
    number of timings made in this test."""
    c, judge, clock = bench.config, bench.judge, benchmark_fixture.clock(benchmark)
    model, runtime, batch_size, threads, seed = key
    if reference is not None and c.slices > 1:
        case = (model, method, runtime, batch_size, threads, seed)
        bench.slices.add(case, timing.measure(infer, reference, warmup=c.warmup,
                                              target_s=slice_budget(c.target_s, c.slices), precision=c.precision,
                                              min_rounds=timing.SLICE_MIN_ROUNDS, clock=clock))
        result, made = bench.slices.pooled(case), 1
    else:
        result, made = timing.measure_in_state(
            lambda: timing.measure(infer, reference, warmup=c.warmup, target_s=c.target_s,
                                   precision=c.precision, clock=clock),
            judge.typical_original(key))
    judge.note_original(key, result.reference_median or result.median)
    result.tails = tails.single_calls(infer, clock=clock)
    benchmark_fixture.keep(benchmark, infer, result.samples)
    return result, made


def _built(bench, model: str, method: str, runtime: str, batch_size: int, seed: int):
    """The variant as ``runtime`` runs it, trained and built on first use (then from the cache)."""
    try:
        return bench.workspace.on_runtime(model, method, runtime, batch_size, seed)
    except SessionError as err:  # bad input (4) or a cache fault (7): the whole run stops
        pytest.exit(str(err), returncode=err.code)


def _keep(request, record) -> None:
    request.node.user_properties.append((RECORD_KEY, record.to_dict()))


def test_variant(benchmark, bench, model_name, method_id, runtime, zoo_seed, batch_size, threads, request):
    def not_run(status: str):
        _keep(request, bench.judge.status_record(model_name, method_id, status, batch_size=batch_size,
                                                 threads=threads, runtime=runtime, seed=zoo_seed))

    reason = bench.judge.unsupported(model_name, method_id, runtime)
    if reason:  # declared in the thresholds file: not run, not a failure
        not_run(f"n/a: {reason}")
        pytest.skip(f"n/a: {reason}")
    rt = get_runtime(runtime)
    try:
        original = _built(bench, model_name, "original", runtime, batch_size, zoo_seed)
        variant = _built(bench, model_name, method_id, runtime, batch_size, zoo_seed)
        x = latency_batch(variant.trained, batch_size)
        with rt.threads(threads) as in_force:
            infer = bound(variant, x, in_force)
            reference = None if method_id == "original" else bound(original, x, in_force)
            made = 0
            if benchmark.disabled:
                benchmark.pedantic(infer, rounds=1, iterations=1)
                result = None
            else:
                result, made = _time(benchmark, infer, reference, bench,
                                     (model_name, runtime, batch_size, in_force, zoo_seed), method_id)
            out = infer()
        memory = bench.workspace.peak_memory(variant, rt, x, in_force)
    except RuntimeUnsupported as why:  # the runtime cannot express this method: a row that says so
        not_run(f"n/a: {why}")
        pytest.skip(f"n/a: {why}")
    except VariantFailure as failure:
        status = failure.status
    except pytest.exit.Exception:  # the run stops (bad input, cache fault): not this variant's failure
        raise
    except Exception as err:  # noqa: BLE001 - the variant was built but does not run: its row says why
        status = VariantFailure("running it: ", err).status
    else:
        status = None
    if status is not None:
        not_run(status)
        pytest.fail(f"{model_name} / {method_id} on {runtime}: {status}", pytrace=False)
    assert out.shape == (batch_size, variant.trained.data.num_classes)

    record = bench.judge.record(variant, original, batch_size=batch_size, threads=in_force, timing=result,
                                stats=benchmark_fixture.statistics(benchmark) if result else None, runtime=runtime, memory=memory,
                                timings=made)
    benchmark.extra_info.update(record.extra_info())
    _keep(request, record)

    if record.inconclusive:
        request.node.warn(pytest.PytestWarning("; ".join(record.inconclusive)))
    assert not record.gate_failures, "; ".join(record.gate_failures)
