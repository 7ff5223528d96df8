"""Peak memory measured for many variants at once: children side by side, each figure cached once, a
failing child reported without stopping the others. The children are stand-ins here (each real child
imports torch for seconds); tests/test_runtimes_end_to_end.py runs real ones."""
from __future__ import annotations

import threading
import time
import types

import pytest
import torch

from compression_bench.benchmarks.variants import memory as peakmem
from compression_bench.benchmarks.runtimes import get_runtime
from compression_bench.zoo import ArtifactCache


def _variant(name: str):
    return types.SimpleNamespace(artifact=name.encode(), artifact_digest=name * 4, model=None,
                                 trained=types.SimpleNamespace(name="M"), method=types.SimpleNamespace(id=name))


def test_measure_many_runs_children_side_by_side_caches_their_figures_and_reports_failures(monkeypatch, tmp_path):
    running, most, lock = [0], [0], threading.Lock()

    def child(form, blob, runtime, x, threads):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        if blob == b"broken":
            raise peakmem._ChildFailed("the child process failed (boom)")
        if blob == b"fault":
            raise OSError("disk full")
        return {"peak_mib": 100.0 + len(blob), "peak_increase_mib": float(len(blob))}

    monkeypatch.setattr(peakmem, "_in_child", child)
    monkeypatch.setattr(peakmem, "workers", lambda: 2)
    cache, rt, x = ArtifactCache(tmp_path), get_runtime("onnxruntime"), torch.zeros(2, 1, 8, 8)
    good = [_variant(n) for n in ("a", "bb", "ccc", "dddd")]
    jobs = [(v, rt, x, 1) for v in [*good, _variant("broken"), _variant("fault")]]
    said, errors = [], []
    made = peakmem.measure_many(jobs, cache, say=said.append, on_error=lambda job, err: errors.append((job, err)))

    assert made == 4 and most[0] == 2
    assert [str(err) for _, err in errors] == ["disk full"] and errors[0][0] is jobs[-1]
    assert said == ["[M/broken@onnxruntime] peak memory not measured: the child process failed (boom)"]
    # the figures are in the cache: measuring again runs no child for them
    assert peakmem.measure(good[2], rt, x, 1, cache) == {"peak_mib": 103.0, "peak_increase_mib": 3.0}
    assert peakmem.measure_many(jobs[:4], cache) == 0
    # without on_error, a failure is raised
    try:
        peakmem.measure_many(jobs[-1:], cache)
    except OSError as err:
        assert str(err) == "disk full"
    else:
        raise AssertionError("the fault was not raised")


def test_children_at_once_follow_the_usable_cores(monkeypatch):
    monkeypatch.setattr(peakmem.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert peakmem.workers() == 2
    monkeypatch.setattr(peakmem.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert peakmem.workers() == peakmem.MAX_WORKERS


def _fx_int8():
    """A small FX INT8 graph (quantized ConvReLU2d and Linear, as ``static_int8`` builds): its quantized
    modules do not unpickle as torch.save writes them."""
    from torch import nn
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()
    x = torch.randn(4, 1, 8, 8)
    prepared = prepare_fx(model, get_default_qconfig_mapping("fbgemm"), (x,))
    prepared(x)
    return convert_fx(prepared), x


def test_an_fx_int8_graph_reaches_its_child_pickled_without_torchscript():
    import io
    import warnings
    model, x = _fx_int8()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        form, blob = peakmem._prepared(types.SimpleNamespace(model=model), True, x)
    jit = [str(w.message)[:80] for w in caught if "jit" in str(w.message)]
    assert jit == [] and form == "pickle"
    loaded = torch.load(io.BytesIO(blob), weights_only=False)  # as the child loads it
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.slow  # a real child: it imports torch for several seconds
def test_a_real_child_measures_an_fx_int8_graph_from_its_pickle(tmp_path):
    model, x = _fx_int8()
    variant = types.SimpleNamespace(model=model, artifact_digest="fx-int8", trained=types.SimpleNamespace(name="M"),
                                    method=types.SimpleNamespace(id="static_int8"))
    said = []
    figures = peakmem.measure(variant, get_runtime("eager"), x, 1, ArtifactCache(tmp_path), say=said.append)
    assert said == [] and figures["form"] == "pickle" and figures["peak_increase_mib"] > 0
