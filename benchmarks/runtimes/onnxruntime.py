"""``onnxruntime``: the model exported to ONNX by torch's dynamo exporter and run by ONNX Runtime's
CPU execution provider.

One artifact serves every batch size: the batch dimension is dynamic (input ``input``, output
``logits``; the exporter's optimiser folds BatchNorm into the layers before it). A float method's
artifact is its float variant. An INT8 method's is the float model its quantization starts from,
quantized by ORT's own toolchain after ``quant_pre_process`` (shape inference, graph optimisation):

* static: ``quantize_static``, QDQ format, per-channel symmetric INT8 weights, asymmetric UINT8
  activations, MinMax ranges observed on the batches the eager static row calibrated on;
* dynamic: ``quantize_dynamic`` of MatMul/Gemm only (eager quantizes Linear only, and ORT's CPU
  build has no dynamic INT8 convolution kernel), INT8 weights, activations quantized per batch;
* QAT: not supported (:meth:`OnnxRuntime.unsupported`).

The choices, measured on a 2-core AMD EPYC with AVX-512 VNNI, batch 64, one thread, median of 20
runs (random weights for speed; the default profile's digits-trained models, 450 validation
images, for accuracy):

* UINT8 activations, not INT8: the same top-1 on all four models, but INT8 (S8S8) convolutions run
  far slower here: EfficientNetB0Custom 32 vs 286 ms, ResNet50Custom 86 vs 216 ms. ORT advises
  ``reduce_range`` for U8S8 on x86 CPUs without VNNI (saturation risk); not set, so an artifact
  does not depend on the machine that built it.
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

from compression_bench.zoo.keys import package_versions

from . import Prepared, Source, register_runtime, torch_threads

INPUT, OUTPUT = "input", "logits"
#: activation type of static INT8 ("QUInt8" or "QInt8", a name of onnxruntime.quantization.QuantType)
ACTIVATIONS = "QUInt8"
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


def quantize_static_qdq(src: str, dst: str, batches: Iterable[torch.Tensor], activations: str,
                        method: str) -> int:
    """Static INT8 of the pre-processed model ``src`` into ``dst`` with ``activations`` (a QuantType
    name) ranged by ``method`` (a CalibrationMethod name); returns the number of calibration batches."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise ValueError("static INT8 needs calibration batches; source.calibration() yielded none")
    reader = _Calibration(itertools.chain([first], batches))
    quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType[activations],
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

    def versions(self) -> dict[str, str]:
        return package_versions(*self.requires)

    def unsupported(self, method) -> str | None:
        if method.quantized and method.kinds[-1] == "qat":
            return ("no QAT graph: ONNX Runtime quantizes after training (quantize_static, the "
                    "static INT8 row); this suite does not export a QAT model")
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
                source.say(f"onnxruntime: static INT8 (QDQ, per channel, {ACTIVATIONS} activations), "
                           f"calibrating ({CALIBRATION_METHOD})")
                n = quantize_static_qdq(str(tmp / "prepared.onnx"), str(tmp / "int8.onnx"),
                                         source.calibration(), ACTIVATIONS, CALIBRATION_METHOD)
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
