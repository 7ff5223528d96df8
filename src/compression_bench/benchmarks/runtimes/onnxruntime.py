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
* QAT: not supported (:meth:`OnnxRuntime.unsupported`);
* layers kept in float (accuracy-aware INT8, ``Source.keep_float``): the BatchNorms are folded into
  their convolutions in torch before the export, so that each exported convolution carries its own
  module's name (the exporter's folding names it after the BatchNorm), and those layers' nodes are
  passed to ``quantize_static`` as ``nodes_to_exclude``; a name not found in the graph fails the build.

Half precision (``Source.precision``): ``fp16`` is the float32 export of the cast variant (its values
are exact in float32) converted by ``onnxruntime.transformers.float16.convert_float_to_float16`` with
float32 input and logits (``keep_io_types``); where the CPU execution provider has no float16 kernel
for an op, ORT runs it in float32 between casts it inserts itself. ``bf16``: ``n/a``, the CPU execution
provider has no bfloat16 Conv, Gemm or MatMul kernels.

Weight-only INT8 (``weight_only_int8``, :func:`weight_only_matmul_nbits`): the eager variant's
weights dequantized (:func:`~compression_bench.compression.weight_request.dequantized`: its INT8 values
times their scales, in float32) are exported, each Linear's Gemm (a 2-D input: a CNN's classifier, a
ViT's head) rewritten as MatMul (:func:`.onnx_weight_only.gemm_as_matmul`), and every MatMul with a constant weight
replaced by ``com.microsoft.MatMulNBits`` by ORT's ``MatMulNBitsQuantizer``: 8 bits, symmetric, one
block per output channel (the block the power of two at or above the layer's input size, at least
16; padding is zeros; MLAS quantizes blocks of at most 256, so a longer row is several blocks of 256
that get the same scale). ORT's quantizer rounds on a grid of its own (the largest magnitude of a channel
maps to -128), not torchao's (scale = largest magnitude / 127.5): re-quantizing the dequantized weights
changed about half of the INT8 values by one step (52% of a random ViTTiny's first ``qkv``) and
doubled the largest logit error against float (0.056 against eager's 0.029 on the 200 images of
tests/test_weight_only.py's ViTTiny). So the nodes it makes then get the eager variant's own INT8
data (zero point 128) and float32 scales, found by the dequantized values of each MatMul's weight:
every runtime runs the same INT8 weights. Activations stay float32 (``accuracy_level`` 1: level 4
would quantize them to INT8 per block).

What is quantized follows the method's :class:`~compression_bench.compression.int8_request.Int8Request`
(per-channel or per-tensor weights, conv and/or linear layers), never its id.

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

from compression_bench.compression.float_request import as_float32, float_request
from compression_bench.compression.int8_request import int8_request, undeclared
from compression_bench.compression.weight_request import dequantized, int8_weights, weight_only_request

from . import Prepared, Source, folded, register_runtime, torch_threads
from .onnx_weight_only import nbits_missing, weight_only_matmul_nbits

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
    _drop_stack_traces(path)


#: node metadata the dynamo exporter writes with the absolute path of every Python file in the call stack
STACK_TRACE = "pkg.torch.onnx.stack_trace"


def _drop_stack_traces(path: str) -> None:
    """Remove the exporter's stack traces from every node of the ONNX file at ``path``: they hold the
    absolute paths of the installation (``/home/me/.venv/lib/...``), so the artifact's size (the Size
    column) depended on where the suite is installed (57 bytes of SimpleCNN_6x2's file, 1,597 of
    EfficientNetB0Custom's, between two clones whose paths differed by one character), and the file
    carried the user's directory names. The other metadata (names, scopes) stay."""
    import onnx
    model = onnx.load(path)
    graphs = [model.graph] + [f for f in model.functions]
    for g in graphs:
        for node in g.node:
            kept = [p for p in node.metadata_props if p.key != STACK_TRACE]
            if len(kept) != len(node.metadata_props):
                del node.metadata_props[:]
                node.metadata_props.extend(kept)
    onnx.save(model, path)


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
                        method: str, *, per_channel: bool = True, op_types: list[str] | None = None,
                        exclude: Iterable[str] = ()) -> int:
    """Static INT8 of the pre-processed model ``src`` into ``dst`` in format ``fmt`` (a key of
    :data:`FORMATS`), ranged by ``method`` (a CalibrationMethod name), with per-channel or per-tensor
    weights, on ``op_types`` (None: every op ORT quantizes), the nodes named in ``exclude`` left in
    float; returns the number of calibration batches."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise ValueError("static INT8 needs calibration batches; source.calibration() yielded none")
    reader = _Calibration(itertools.chain([first], batches))
    activations, weights, reduce_range = FORMATS[fmt]
    quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    reduce_range=reduce_range, weight_type=QuantType[weights],
                    activation_type=QuantType[activations], calibrate_method=CalibrationMethod[method],
                    op_types_to_quantize=op_types, nodes_to_exclude=list(exclude) or None)
    return reader.count


def quantize_dynamic_matmul(src: str, dst: str, per_channel: bool = False) -> None:
    """Dynamic INT8 of the MatMul/Gemm nodes of the pre-processed model ``src`` into ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8,
                     per_channel=per_channel)


#: ONNX ops of each layer type of an Int8Request
OPS = {"conv": ["Conv"], "linear": ["MatMul", "Gemm"]}


def layer_nodes(path: str) -> dict[str, str]:
    """Module name -> ONNX node name for each conv and linear node of the model at ``path``, from the
    module path the dynamo exporter records on each node (``pkg.torch.onnx.name_scopes``; the last
    scope is the op's own). A convolution folded with its BatchNorm by the exporter carries the
    BatchNorm's name: fold the BatchNorms in torch first (:func:`~compression_bench.benchmarks.runtimes.folded`) where names matter."""
    import ast

    import onnx
    out = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        if node.op_type in OPS["conv"] + OPS["linear"]:
            meta = {p.key: p.value for p in node.metadata_props}
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
            if len(scopes) > 1:
                out[scopes[-2]] = node.name
    return out


def to_float16(path: str) -> bytes:
    """The ONNX model at ``path`` with its float32 weights and ops in float16, its input and output
    kept in float32 (ORT's own converter, ``onnxruntime.transformers.float16``)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    model = convert_float_to_float16(onnx.load(path), keep_io_types=True)
    return model.SerializeToString()


def session(artifact: bytes, threads: int):
    """An ``onnxruntime.InferenceSession`` of ``artifact`` on the CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(artifact, sess_options=options, providers=["CPUExecutionProvider"])


def _excluded(path: str, keep_float: Iterable[str]) -> list[str]:
    """The ONNX node names of the layers ``keep_float`` (module names); every one must be found."""
    keep = list(keep_float)
    if not keep:
        return []
    nodes = layer_nodes(path)
    missing = [name for name in keep if name not in nodes]
    if missing:
        raise ValueError(f"onnxruntime: layer(s) to keep in float not found in the exported graph: "
                         f"{', '.join(missing)}")
    return [nodes[name] for name in keep]


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
        """None for float methods and the INT8 requests :meth:`build` lowers; a reason for the others,
        so a new quantization method reads ``n/a`` here, never ``failed``."""
        if undeclared(method):
            return undeclared(method)
        weights = weight_only_request(method)
        if weights is not None:
            return nbits_missing(weights.bits)
        precision = float_request(method)
        if precision is not None and precision.dtype == "bfloat16":
            return ("no bfloat16 kernels in ONNX Runtime's CPU execution provider (Conv, Gemm and MatMul take "
                    "float32 or float16): the fp16 row is this runtime's half precision")
        r = int8_request(method)
        if r is None:
            return None
        if r.training == "qat":
            return ("no QAT graph: ONNX Runtime quantizes after training (quantize_static, the "
                    "static INT8 row); this suite does not export a QAT model")
        if not r.static and "conv" in r.layers:
            return "no dynamic INT8 convolution kernel in ONNX Runtime's CPU build (dynamic INT8 of MatMul/Gemm only)"
        return None

    def build(self, source: Source) -> bytes:
        r = source.request
        reason = self.unsupported(source.method)
        if reason:
            raise ValueError(f"onnxruntime cannot build {source.method.id!r}: {reason}")
        with tempfile.TemporaryDirectory(prefix="compression-bench-onnx-") as tmp:
            tmp = Path(tmp)
            source.say("onnxruntime: exporting the float model to ONNX (dynamo exporter, dynamic batch)")
            model = folded(source.float_model) if source.keep_float else source.float_model
            if source.precision is not None:
                export_float(as_float32(model), source.example, str(tmp / "float.onnx"))
                source.say(f"onnxruntime: {source.precision.describe()} (convert_float_to_float16, keep_io_types)")
                return to_float16(str(tmp / "float.onnx"))
            weights = weight_only_request(source.method)
            if weights is not None:
                export_float(dequantized(model), source.example, str(tmp / "float.onnx"))
                artifact, n = weight_only_matmul_nbits(str(tmp / "float.onnx"), int8_weights(model))
                source.say(f"onnxruntime: {weights.describe()} (MatMulNBitsQuantizer: {n} MatMulNBits nodes)")
                return artifact
            export_float(model, source.example, str(tmp / "float.onnx"))
            if r is None:
                return (tmp / "float.onnx").read_bytes()
            from onnxruntime.quantization import quant_pre_process
            source.say("onnxruntime: quant_pre_process (shape inference, optimisation)")
            quant_pre_process(str(tmp / "float.onnx"), str(tmp / "prepared.onnx"))
            if r.static:
                fmt, why = self.format()
                exclude = _excluded(str(tmp / "prepared.onnx"), source.keep_float)
                source.say(f"onnxruntime: {r.describe()} (QDQ, {fmt}: {why}), calibrating ({CALIBRATION_METHOD})"
                           + (f"; {len(exclude)} node(s) kept float" if exclude else ""))
                ops = None if set(r.layers) == set(OPS) else [op for t in r.layers for op in OPS[t]]
                n = quantize_static_qdq(str(tmp / "prepared.onnx"), str(tmp / "int8.onnx"), source.calibration(),
                                        fmt, CALIBRATION_METHOD, per_channel=r.per_channel, op_types=ops,
                                        exclude=exclude)
                source.say(f"onnxruntime: static INT8 calibrated on {n} batches")
            else:
                source.say(f"onnxruntime: {r.describe()} (MatMul/Gemm)")
                quantize_dynamic_matmul(str(tmp / "prepared.onnx"), str(tmp / "int8.onnx"), r.per_channel)
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
