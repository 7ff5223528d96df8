"""``openvino``: the model converted to OpenVINO's IR by ``openvino.convert_model`` and run by the
OpenVINO CPU plugin; static INT8 by NNCF's post-training quantization.

* float: ``convert_model`` of the float model with the timed batch as the example input, its batch
  dimension then made dynamic (one artifact serves every batch size, as on ONNX Runtime). The IR is
  converted from the PyTorch module directly (not through the ONNX file of the ``onnxruntime``
  runtime), so a conversion problem of one runtime does not hide the other's.
* static INT8: ``nncf.quantize`` of that IR on the batches the eager static row calibrated on
  (NNCF's defaults: symmetric INT8 weights per channel, activations per tensor, fast bias correction;
  per-tensor weights when the method's request asks for them).
* layers kept in float (accuracy-aware INT8): NNCF's ``IgnoredScope`` of those modules' ops; the
  BatchNorms are then folded in torch before the conversion (the converter's own folding renames the
  convolution after it), and a name that matches no op fails the build.
* dynamic INT8: ``n/a``. NNCF's ``compress_weights`` quantizes weights only and leaves activations in
  float, which is not what the dynamic rows of the other runtimes measure: that is the
  ``weight_only_int8`` row.
* weight-only INT8 (``weight_only_int8``): the eager variant's weights dequantized
  (:func:`~compression_bench.compression.weight_request.dequantized`: its INT8 values times their
  scales, in float32) converted as a float model, then ``nncf.compress_weights`` in ``INT8_SYM`` mode
  (one scale per output channel) on its MatMul layers only: convolutions, which NNCF's INT8 modes
  compress too (ViTTiny's stem), are an ignored scope (:data:`NOT_LINEAR`). The IR stores the INT8
  weights and the plugin dequantizes them in the graph (NNCF's decompression computes in float16:
  INT8 values times a float16 scale, then float32). NNCF rounds on a grid of its own, not torchao's
  (scale = largest magnitude / 127.5): re-quantizing the dequantized weights changed about half of the
  INT8 values by one step and doubled the largest logit error against float (0.053 against eager's
  0.029 on the 200 images of tests/test_weight_only.py's ViTTiny). So its INT8 constants and scales
  are then replaced by the eager variant's (:func:`_set_int8_weights`; the scales rounded to float16).
  Activations stay float32: the artifact is compiled with ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` 0, since
  the CPU plugin otherwise quantizes the activations of a MatMul with compressed weights per group of
  32 (its default here), which is dynamic INT8, another method (largest logit error against float
  0.083 with it, 0.030 without).
* QAT: ``n/a``. NNCF's QAT fine-tunes a PyTorch model of its own making; this suite does not export one.
* half precision (``Source.precision``): the float32 model (the cast variant's values, exact in
  float32) converted as a float one, and compiled with ``INFERENCE_PRECISION_HINT`` ``bf16`` or ``f16``
  instead of ``f32``; the hint travels in the artifact (``config.json``). The FP16 IR stores its
  weights in float16 (``compress_to_fp16``: half the bytes, as the eager row's state); the BF16 IR keeps
  them in float32 (``save_model`` compresses weights to float16 only; the plugin casts them when it
  compiles). ``n/a``
  where the CPU plugin does not list the precision among its ``OPTIMIZATION_CAPABILITIES`` (it would
  not honour the hint, and the row would time float), and under an ISA cap that leaves the type
  emulated (``ONEDNN_MAX_CPU_ISA=AVX2``, the AVX2 approximation): the plugin still lists it from CPUID,
  but its oneDNN, capped too, has no kernel for it and the compile fails, as the hint would be
  unavailable on a real AVX2 CPU.

The artifact is the IR (``.xml`` and ``.bin``) in one uncompressed zip; it does not depend on the CPU
(the plugin compiles it for the CPU when it is loaded), so its key holds the OpenVINO and NNCF
versions only. Loading compiles for the CPU with ``threads`` inference threads, the latency hint and
f32 inference precision (the plugin's default on a CPU with bf16 instructions is bf16), or the
precision a half-precision artifact carries; a weight-only artifact carries
``DYNAMIC_QUANTIZATION_GROUP_SIZE`` 0.
Install with ``pip install 'compression-bench[openvino]'``.
"""
from __future__ import annotations

import functools
import io
import json
import zipfile

import numpy as np
import torch

from compression_bench.zoo.keys import package_versions

from compression_bench.compression.float_request import as_float32, float_request
from compression_bench.compression.int8_request import int8_request, undeclared
from compression_bench.compression.weight_request import dequantized, int8_weights, weight_only_request

from compression_bench.benchmarks.measurement import machine
from . import Prepared, Source, folded, register_runtime, torch_threads

XML, BIN, CONFIG = "model.xml", "model.bin", "config.json"
#: OpenVINO op types with weights that are not a Linear layer's: NNCF's INT8 weight compression would
#: compress them too, and a weight-only request names linear layers only
NOT_LINEAR = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData",
              "Gather")
#: a half-precision request's dtype -> the plugin's inference precision and its OPTIMIZATION_CAPABILITIES name
PRECISIONS = {"bfloat16": ("bf16", "BF16"), "float16": ("f16", "FP16")}
#: a half-precision request's dtype -> its key in machine.identify()["half_precision"]
HALF_NAMES = {"bfloat16": "bf16", "float16": "fp16"}


def _pack(model, config: dict | None = None, fp16_weights: bool = False) -> bytes:
    """The IR of ``model`` as one zip of its .xml and .bin (float weights kept in float32, or stored in
    float16 with ``fp16_weights``) and the compile ``config`` it asks for, if any."""
    import tempfile
    from pathlib import Path

    import openvino as ov
    with tempfile.TemporaryDirectory(prefix="compression-bench-openvino-") as tmp:
        ov.save_model(model, str(Path(tmp) / XML), compress_to_fp16=fp16_weights)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
            for name in (XML, BIN):
                z.write(Path(tmp) / name, name)
            if config:
                z.writestr(CONFIG, json.dumps(config))
    return buffer.getvalue()


def _unpack(artifact: bytes):
    """The ``openvino.Model`` read back from :func:`_pack`'s bytes, in memory, and its compile config."""
    import openvino as ov
    with zipfile.ZipFile(io.BytesIO(artifact)) as z:
        xml, weights = z.read(XML), z.read(BIN)
        config = json.loads(z.read(CONFIG)) if CONFIG in z.namelist() else {}
    model = ov.Core().read_model(model=xml.decode("utf-8"), weights=ov.Tensor(np.frombuffer(weights, dtype=np.uint8)))
    return model, config


@functools.lru_cache(maxsize=None)
def cpu_capabilities() -> tuple[str, ...]:
    """The CPU plugin's ``OPTIMIZATION_CAPABILITIES`` on this machine (``FP32``, ``BF16``, ``FP16``, ``INT8``, ...)."""
    import openvino as ov
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def ignored_scope(model, keep_float: list[str]):
    """NNCF's ``IgnoredScope`` of the ops converted from the modules ``keep_float`` (the converter names
    each op ``__module.<module name>/aten::<op>/<Op>``); every name must match an op of ``model``."""
    import re

    import nncf
    ops = [op.get_friendly_name() for op in model.get_ordered_ops()]
    patterns = [rf"__module\.{re.escape(name)}/aten::.*" for name in keep_float]
    missing = [n for n, p in zip(keep_float, patterns) if not any(re.fullmatch(p, o) for o in ops)]
    if missing:
        raise ValueError(f"openvino: layer(s) to keep in float not found in the converted model: {', '.join(missing)}")
    return nncf.IgnoredScope(patterns=patterns)


def _quantize(model, source: Source, r):
    """``nncf.quantize`` of the converted ``model`` as the request ``r`` asks, on the calibration batches."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters
    batches = [x.detach().cpu().numpy() for x in source.calibration()]
    if not batches:
        raise ValueError("static INT8 needs calibration batches; source.calibration() yielded none")
    keep = list(source.keep_float)
    extra = {} if r.per_channel else {"advanced_parameters": AdvancedQuantizationParameters(
        weights_quantization_params=QuantizationParameters(per_channel=False))}
    if keep:
        extra["ignored_scope"] = ignored_scope(model, keep)
    source.say(f"openvino: {r.describe()} by nncf.quantize on {len(batches)} calibration batches"
               + (f"; {len(keep)} layer(s) kept float" if keep else ""))
    return nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches), **extra)


def _compress_weights(model, source: Source, request):
    """``nncf.compress_weights`` of the converted ``model``'s MatMul weights as the weight-only
    ``request`` asks (INT8, symmetric, per output channel), then given the INT8 data and scales of
    the eager variant (``source.float_model``) by :func:`_set_int8_weights`."""
    import nncf
    source.say(f"openvino: {request.describe()} by nncf.compress_weights (INT8_SYM, MatMul layers)")
    model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM,
                                  ignored_scope=nncf.IgnoredScope(types=list(NOT_LINEAR), validate=False))
    return _set_int8_weights(model, int8_weights(source.float_model))


def _set_int8_weights(model, weights: dict):
    """``model`` (compressed by NNCF, in place) with each INT8 weight constant replaced by the INT8
    data of its layer in ``weights`` (module name -> (INT8 data, scale per output channel)) and the
    scale constant of its decompression (``Convert`` -> ``Multiply``) by that layer's scales in float16,
    the type NNCF's decompression computes in. A constant is found by its name (the converter names a
    parameter ``self.<module>.weight``); one that is no layer's, or a layer without one, fails the build."""
    import openvino as ov
    from openvino import opset13 as opset
    left = dict(weights)
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant" or op.get_element_type() != ov.Type.i8:
            continue
        name = op.get_friendly_name()
        layer = left.pop(name.removeprefix("self.").removesuffix(".weight"), None)
        if layer is None:
            raise ValueError(f"openvino: INT8 constant {name!r} is no weight-only INT8 layer's")
        qdata, scale = (t.numpy() for t in layer)
        convert = next(iter(op.output(0).get_target_inputs())).get_node()
        multiply = next(iter(convert.output(0).get_target_inputs())).get_node()
        scales = [i.get_source_output().get_node() for i in multiply.inputs()
                  if i.get_source_output().get_node().get_type_name() == "Constant"]
        if (convert.get_type_name() != "Convert" or multiply.get_type_name() != "Multiply" or len(scales) != 1
                or tuple(op.get_output_shape(0)) != qdata.shape or tuple(scales[0].get_output_shape(0)) != scale.shape):
            raise ValueError(f"openvino: {name!r} is not decompressed as Convert -> Multiply by a scale per output "
                             f"channel of its {qdata.shape} layer")
        for old, value in ((op, qdata), (scales[0], scale.astype(np.float16))):
            new = opset.constant(value, dtype=old.get_element_type(), name=old.get_friendly_name())
            old.output(0).replace(new.output(0))
    if left:
        raise ValueError(f"openvino: no INT8 constant for layer(s) {', '.join(sorted(left))}")
    return model


class OpenVINO:
    name = "openvino"
    description = "OpenVINO on the CPU (convert_model; INT8 by NNCF post-training quantization)"
    requires = ("openvino", "nncf")
    install = "pip install 'compression-bench[openvino]'  (openvino and nncf)"
    batch_specific = False
    native = False

    def versions(self) -> dict[str, str]:
        return package_versions("openvino", "nncf")

    def unsupported(self, method) -> str | None:
        if undeclared(method):
            return undeclared(method)
        precision = float_request(method)
        if precision is not None:
            hint, capability = PRECISIONS[precision.dtype]
            if capability not in cpu_capabilities():
                return (f"the OpenVINO CPU plugin has no {capability} inference on this CPU (its capabilities: "
                        f"{' '.join(cpu_capabilities())}): it would not honour INFERENCE_PRECISION_HINT={hint}")
            info = machine.identify()
            if info["approximated"] and not info["half_precision"].get(HALF_NAMES[precision.dtype]):
                return (f"{capability} is capped off by {', '.join(info['approximated'])}: the OpenVINO CPU plugin "
                        f"lists it from CPUID, but its capped oneDNN has no {capability} kernel, as on a CPU of class "
                        f"{info['capability_class']}")
            return None
        r = int8_request(method)
        if r is None:
            return None
        if not r.static:
            return ("no dynamic INT8: NNCF's weight compression keeps activations in float, another "
                    "method than the other runtimes' dynamic rows (it is this runtime's weight_only_int8 row)")
        if r.training == "qat":
            return "no QAT graph: NNCF's QAT trains a model of its own; use the static INT8 row"
        if set(r.layers) != {"conv", "linear"}:
            return f"nncf.quantize quantizes every conv and linear layer, not {'+'.join(r.layers)} only"
        return None

    def build(self, source: Source) -> bytes:
        import openvino as ov
        r, precision, weight_only = source.request, source.precision, weight_only_request(source.method)
        reason = self.unsupported(source.method)
        if reason:
            raise ValueError(f"openvino cannot build {source.method.id!r}: {reason}")
        example = source.example.detach().cpu().contiguous()
        source.say("openvino: converting the float model (convert_model, dynamic batch)")
        # layers kept in float are named by module: fold the BatchNorms in torch first, else the converter
        # folds them and the convolution loses its module's name
        model = folded(source.float_model) if source.keep_float else source.float_model.eval()
        if precision is not None:
            model = as_float32(model)
        if weight_only is not None:
            model = dequantized(model)
        with torch.no_grad():
            model = ov.convert_model(model, example_input=example)
        model.reshape([-1, *example.shape[1:]])
        if r is not None:
            model = _quantize(model, source, r)
        if weight_only is not None:
            return _pack(_compress_weights(model, source, weight_only), {"DYNAMIC_QUANTIZATION_GROUP_SIZE": 0})
        if precision is not None:
            hint = PRECISIONS[precision.dtype][0]
            source.say(f"openvino: {precision.describe()} (INFERENCE_PRECISION_HINT={hint})")
            return _pack(model, {"INFERENCE_PRECISION_HINT": hint}, fp16_weights=precision.dtype == "float16")
        return _pack(model)

    def load(self, artifact: bytes, threads: int) -> Prepared:
        import openvino as ov
        model, config = _unpack(artifact)
        # f32 precision: on a CPU with bf16 instructions the plugin would otherwise run a float model in
        # bf16 (logits 0.017 off eager on EnhancedLeNet5 here), which is another method than float; a
        # half-precision artifact carries its own hint
        compiled = ov.Core().compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "f32", **config})
        request = compiled.create_infer_request()

        def run(x: torch.Tensor) -> torch.Tensor:
            request.infer({0: x.detach().cpu().numpy()})
            return torch.from_numpy(request.get_output_tensor(0).data.copy())
        run.compiled = compiled  # kept alive by the closure; exposed for inspection
        return run

    def threads(self, count: int):
        # torch's threads for what runs around the request; OpenVINO's own are set in load()
        return torch_threads(count)


OPENVINO = register_runtime(OpenVINO())
