"""``onnxruntime``: the model exported to ONNX by torch's dynamo exporter and run by ONNX Runtime's
CPU execution provider.

One artifact serves every batch size: the batch dimension is dynamic (input ``input``, output
``logits``; the exporter's optimiser folds BatchNorm into the layers before it). A float method's
artifact is its float variant. An INT8 method's is the float model its quantization starts from,
quantized by ORT's own toolchain after ``quant_pre_process`` (shape inference, graph optimisation):

* static: ``quantize_static``, QDQ format, per-channel symmetric weights, asymmetric UINT8
  activations, MinMax ranges observed on the batches the eager static row calibrated on; the weight
  format depends on the CPU's capability class (:func:`int8_format`);
* dynamic: ``quantize_dynamic`` of MatMul/Gemm only (eager quantizes Linear only, and ORT's CPU
  build has no dynamic INT8 convolution kernel), INT8 weights, activations quantized per batch;
* QAT: not supported (:meth:`OnnxRuntime.unsupported`).

The choices, measured on a 2-core AMD EPYC with AVX-512 VNNI, batch 64, one thread, median of 20
runs (random weights for speed; the default profile's digits-trained models, on the 450
images then held out for validation, for accuracy):

* UINT8 activations, not INT8: the same top-1 on all four models, but INT8 (S8S8) convolutions run
  far slower here: EfficientNetB0Custom 32 vs 286 ms, ResNet50Custom 86 vs 216 ms.
* INT8 weights at full range (U8S8) only where the CPU has VNNI (or ARM's dot product). Without
  VNNI, MLAS multiplies UINT8 by INT8 with AVX2's ``vpmaddubsw``, which adds each pair of products
  into a saturating 16-bit value: 2 x 255 x 127 overflows, and on an AVX2 CPU the U8S8 model of
  ``tests/test_runtime_onnxruntime.py`` agreed with float on 73.8% of inputs (94.5% with 7-bit
  weights, the same as with VNNI). ONNX Runtime's quantization guide gives two
  remedies, ``reduce_range`` (7-bit weights, 2 x 255 x 64 fits) and U8U8; the suite uses
  ``reduce_range`` there (U8S8-rr), which keeps the fast kernel (figures of all four formats in the
  docs/methodology.md). The format follows the capability class, an approximated one included: MLAS picks its
  kernels from the CPU itself (no environment variable caps it), so under ``ONEDNN_MAX_CPU_ISA=AVX2``
  on a VNNI CPU the U8S8-rr model runs VNNI kernels, but it is the same file an AVX2 CPU gets, and
  with 7-bit weights nothing saturates on either, so its accuracy is the AVX2 CPU's. The format is
  part of the artifact's cache key.
* MinMax calibration: Percentile and Entropy were within two images (0.4 points) of it on every
  model, in no consistent direction (Entropy gave MinMax's scales exactly), so the default stays.
* A dynamic batch costs nothing measurable: within 1% of a static-batch export, float and INT8
  (ResNet50Custom float 182 vs 181 ms, INT8 83 vs 84 ms), so ``batch_specific`` is False.
"""
from __future__ import annotations

import copy
import itertools
import tempfile
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from compression_bench.benchmarks.measurement import machine
from compression_bench.zoo.keys import package_versions

from . import Prepared, Source, register_runtime, torch_threads

INPUT, OUTPUT = "input", "logits"
#: static INT8 formats: name -> (activation type, weight type, reduce_range); types are names of
#: onnxruntime.quantization.QuantType
FORMATS = {"U8S8": ("QUInt8", "QInt8", False), "U8S8-rr": ("QUInt8", "QInt8", True),
           "U8U8": ("QUInt8", "QUInt8", False), "S8S8": ("QInt8", "QInt8", False)}
#: range estimation of static INT8 (a name of onnxruntime.quantization.CalibrationMethod)
CALIBRATION_METHOD = "MinMax"


def _numpy(x: torch.Tensor):
    """A batch as the contiguous float32 array ORT reads."""
    import numpy as np
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def export_float(model: nn.Module, example: torch.Tensor, path: str) -> None:
    """``model`` (a copy, on the CPU, in eval mode) written to ``path`` as ONNX with a dynamic batch."""
    model = copy.deepcopy(model).cpu().eval()
    x = example.detach().cpu()
    if x.shape[0] < 2:  # torch.export specialises a dimension of size 1: trace on two rows
        x = x[:1].expand(2, *x.shape[1:]).contiguous()
    torch.onnx.export(model, (x,), path, dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False,
                      verbose=False)


class _Calibration:
    """ORT's CalibrationDataReader over float tensors (ORT accepts any object with ``get_next``)."""

    def __init__(self, batches: Iterable[torch.Tensor]):
        self._batches = iter(batches)
        self.count = 0

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.count += 1
        return {INPUT: _numpy(batch)}


def int8_format(cpu_class: str) -> tuple[str, str]:
    """The static INT8 format (a key of :data:`FORMATS`) for a CPU of ``cpu_class`` (see
    :mod:`benchmarks.measurement.machine`), and why."""
    if cpu_class.startswith("x86") and cpu_class not in machine.FAST_INT8:
        return "U8S8-rr", (f"{cpu_class} has no VNNI: full-range U8S8 can saturate AVX2's 16-bit pair sums, "
                           f"so weights use 7 bits (reduce_range)")
    return "U8S8", f"{cpu_class} multiplies INT8 into 32 bits: no saturation, full-range weights"


def quantize_static_qdq(src: str, dst: str, batches: Iterable[torch.Tensor], fmt: str,
                        method: str) -> int:
    """Static INT8 of the pre-processed model ``src`` into ``dst`` in format ``fmt`` (a key of
    :data:`FORMATS`), ranged by ``method`` (a CalibrationMethod name); returns the number of
    calibration batches."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise ValueError("static INT8 needs calibration batches; source.calibration() yielded none")
    reader = _Calibration(itertools.chain([first], batches))
    activations, weights, reduce_range = FORMATS[fmt]
    quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                    weight_type=QuantType[weights], activation_type=QuantType[activations],
                    calibrate_method=CalibrationMethod[method])
    return reader.count


def quantize_dynamic_matmul(src: str, dst: str) -> None:
    """Dynamic INT8 of the MatMul/Gemm nodes of the pre-processed model ``src`` into ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)


def session(artifact: bytes, threads: int):
    """An ``onnxruntime.InferenceSession`` of ``artifact`` on the CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(artifact, sess_options=options, providers=["CPUExecutionProvider"])


class OnnxRuntime:
    name = "onnxruntime"
    description = "ONNX Runtime on the CPU (dynamo ONNX export; INT8 by onnxruntime.quantization, QDQ)"
    requires = ("onnxruntime", "onnx", "onnxscript")
    install = "pip install onnxruntime onnx onnxscript"
    batch_specific = False
    native = False

    def versions(self) -> dict[str, str]:
        # the INT8 format depends on the CPU's class: an artifact built for another class is rebuilt
        return {**package_versions(*self.requires), "int8_format": self.format()[0]}

    @staticmethod
    def format() -> tuple[str, str]:
        """This machine's static INT8 format and why (:func:`int8_format` of its capability class)."""
        return int8_format(machine.identify()["capability_class"])

    def unsupported(self, method) -> str | None:
        """None for float methods and the INT8 kinds :meth:`build` lowers (static, dynamic); a reason
        for every other INT8 kind, so a new quantization method reads ``n/a`` here, never ``failed``."""
        kind = method.kinds[-1] if method.quantized else None
        if kind == "qat":
            return ("no QAT graph: ONNX Runtime quantizes after training (quantize_static, the "
                    "static INT8 row); this suite does not export a QAT model")
        if kind not in (None, "static", "dynamic"):
            return f"no onnxruntime.quantization recipe for INT8 kind {kind!r} (static and dynamic only)"
        return None

    def build(self, source: Source) -> bytes:
        kind = source.quantization
        if kind not in (None, "static", "dynamic"):
            raise ValueError(f"onnxruntime cannot build {getattr(source.method, 'id', kind)!r}: "
                             f"{self.unsupported(source.method)}")
        with tempfile.TemporaryDirectory(prefix="compression-bench-onnx-") as tmp:
            tmp = Path(tmp)
            source.say("onnxruntime: exporting the float model to ONNX (dynamo exporter, dynamic batch)")
            export_float(source.float_model, source.example, str(tmp / "float.onnx"))
            if kind is None:
                return (tmp / "float.onnx").read_bytes()
            from onnxruntime.quantization import quant_pre_process
            source.say("onnxruntime: quant_pre_process (shape inference, optimisation)")
            quant_pre_process(str(tmp / "float.onnx"), str(tmp / "prepared.onnx"))
            if kind == "static":
                fmt, why = self.format()
                source.say(f"onnxruntime: static INT8 (QDQ, per channel, {fmt}: {why}), calibrating "
                           f"({CALIBRATION_METHOD})")
                n = quantize_static_qdq(str(tmp / "prepared.onnx"), str(tmp / "int8.onnx"),
                                         source.calibration(), fmt, CALIBRATION_METHOD)
                source.say(f"onnxruntime: static INT8 calibrated on {n} batches")
            else:
                source.say("onnxruntime: dynamic INT8 of MatMul/Gemm")
                quantize_dynamic_matmul(str(tmp / "prepared.onnx"), str(tmp / "int8.onnx"))
            return (tmp / "int8.onnx").read_bytes()

    def load(self, artifact: bytes, threads: int) -> Prepared:
        sess = session(artifact, threads)
        name = sess.get_inputs()[0].name

        def run(x: torch.Tensor) -> torch.Tensor:
            (logits,) = sess.run(None, {name: _numpy(x)})
            return torch.from_numpy(logits)
        run.session = sess  # kept alive by the closure; exposed for inspection
        return run

    def threads(self, count: int):
        # torch's threads for what runs around the session; ORT's own are set in load()
        return torch_threads(count)


ONNXRUNTIME = register_runtime(OnnxRuntime())
