"""An independent check of the suite's runtime figures: float and static INT8 latency of each model on
eager PyTorch, Inductor, ONNX Runtime and OpenVINO, and of the model with half its channels pruned (Torch-Pruning,
kept counts rounded to 8) on eager, built, quantized and timed here with nothing of the suite's
pipeline or timing code (only its architecture definitions: ``compression_bench.zoo.build``).

    python tools/runtime_check.py [--models ResNet50Custom,...] [--batch 64] [--threads 1] [--json out.json]

Weights are random (latency does not depend on their values); INT8 is calibrated on 8 batches of
standard-normal inputs. Each path is the plain recipe of its toolkit:

* eager: torch.ao FX ``prepare_fx``/``convert_fx`` with the x86 qconfig mapping;
* inductor: ``torch.compile`` (not the suite's AOTInductor packages) with freezing, under
  ``no_grad``; INT8 through torchao's PT2E (``prepare_pt2e``/``convert_pt2e``, X86InductorQuantizer);
* onnxruntime: ``torch.onnx.export(dynamo=True)``, ``quant_pre_process``, ``quantize_static`` (QDQ,
  per-channel, U8 activations / S8 weights, 7-bit weights with ``reduce_range`` where /proc/cpuinfo
  shows no VNNI), CPU provider, one intra-op thread, sequential;
* openvino: ``openvino.convert_model`` of the module with the timed batch (static shape), ``nncf.quantize``
  on the calibration batches, compiled for the CPU with ``--threads`` inference threads, f32 precision,
  the latency hint; called through the compiled model (not an infer request);
* structured_50 (``--structured``): ``torch_pruning.pruner.MagnitudePruner`` removing half the channels
  of every layer but the classifier, ``round_to=8``, on eager.

Latency is the median of ``--rounds`` timed calls after 3 warm-up calls, per batch, in milliseconds;
float and compressed are each timed three times in turn (F C F C F C) and the speedup is the ratio of
the medians of all their calls.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from compression_bench.zoo import build, get_model_info, list_models

warnings.filterwarnings("ignore")


def times_s(fn, x, rounds: int) -> list:
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return times


def medians_ms(f, q, x, rounds: int) -> tuple[float, float]:
    """Medians of float and compressed, each timed in three turns of ``rounds`` calls, alternately."""
    ft, qt = [], []
    for _ in range(3):
        ft += times_s(f, x, rounds)
        qt += times_s(q, x, rounds)
    return statistics.median(ft) * 1e3, statistics.median(qt) * 1e3


def no_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx2" in flags and "avx512_vnni" not in flags and "avx_vnni" not in flags


def structured(model, x, calib, classes: int = 10):
    import torch_pruning as tp
    pruned = copy.deepcopy(model)
    heads = [m for m in pruned.modules() if isinstance(m, torch.nn.Linear) and m.out_features == classes]
    tp.pruner.MagnitudePruner(pruned, x[:2], importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.5,
                              ignored_layers=heads, round_to=8).step()
    return eager(model, x, calib, quantize=False)[0], eager(pruned.eval(), x, calib, quantize=False)[0]


def eager(model, x, calib, quantize: bool = True):
    def run(m):
        def call(t):
            with torch.inference_mode():
                return m(t)
        return call
    if not quantize:
        return run(model), None
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (x[:2],))
    with torch.no_grad():
        for b in calib:
            prepared(b)
    q = convert_fx(prepared)
    return run(model), run(q)


def inductor(model, x, calib):
    import torch._inductor.config as cfg
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    cfg.freezing = True
    with torch.no_grad():
        f = torch.compile(copy.deepcopy(model))
        f(x)
        ep = torch.export.export(copy.deepcopy(model), (x,), strict=True).module()
        quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(ep, quantizer)
        for b in calib:
            prepared(b)
        q = torch.compile(convert_pt2e(prepared))
        q(x)

    def run(m):
        def call(t):
            with torch.no_grad():
                return m(t)
        return call
    return run(f), run(q)


def onnxruntime_(model, x, calib, threads: int):
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": b.numpy()} for b in calib])

        def get_next(self):
            return next(self.it, None)

    d = Path(tempfile.mkdtemp())
    torch.onnx.export(copy.deepcopy(model), (x,), str(d / "f.onnx"), dynamo=True, input_names=["input"],
                      output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    quant_pre_process(str(d / "f.onnx"), str(d / "p.onnx"))
    quantize_static(str(d / "p.onnx"), str(d / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=no_vnni())

    def session(path):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return lambda t: s.run(None, {"input": np.ascontiguousarray(t.numpy())})[0]
    return session(d / "f.onnx"), session(d / "q.onnx")


def openvino_(model, x, calib, threads: int):
    import nncf
    import openvino as ov
    core = ov.Core()
    with torch.no_grad():
        fm = ov.convert_model(copy.deepcopy(model), example_input=x)
    qm = nncf.quantize(fm, nncf.Dataset([b.numpy() for b in calib]), subset_size=len(calib))
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}

    def compiled(m):
        c = core.compile_model(m, "CPU", config)
        return lambda t: c(t.numpy())[0]
    return compiled(fm), compiled(qm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(list_models()))
    ap.add_argument("--runtimes", default="eager,inductor,onnxruntime", help="of eager, inductor, onnxruntime, openvino")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--structured", action="store_true", help="also time structured_50 against float on eager")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    print(f"{'model':22} {'variant':26} {'float ms':>9} {'variant ms':>10} {'speedup':>8} {'build s':>8}",
          flush=True)
    for name in args.models.split(","):
        model = build(name).eval()
        shape = get_model_info(name).input_shape
        x = torch.randn(args.batch, *shape)
        calib = [torch.randn(64, *shape) for _ in range(8)]
        cases = [(f"static_int8 on {r}", r) for r in args.runtimes.split(",")]
        cases += [("structured_50 on eager", "structured")] if args.structured else []
        for what, runtime in cases:
            t0 = time.perf_counter()
            if runtime == "eager":
                f, q = eager(model, x, calib)
            elif runtime == "inductor":
                f, q = inductor(model, x, calib)
            elif runtime == "structured":
                f, q = structured(model, x, calib)
            elif runtime == "openvino":
                f, q = openvino_(model, x, calib, args.threads)
            else:
                f, q = onnxruntime_(model, x, calib, args.threads)
            built = time.perf_counter() - t0
            fm, qm = medians_ms(f, q, x, args.rounds)
            rows.append(dict(model=name, variant=what, float_ms=fm, variant_ms=qm, speedup=fm / qm, build_s=built))
            print(f"{name:22} {what:26} {fm:9.2f} {qm:10.2f} {fm / qm:7.2f}x {built:8.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
