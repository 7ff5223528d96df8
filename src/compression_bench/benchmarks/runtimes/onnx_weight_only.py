"""ONNX Runtime's weight-only INT8 lowering (``weight_only_int8``), used by :mod:`.onnxruntime`: the export of
the eager variant's dequantized copy, its Gemms rewritten as MatMul, every MatMul with a constant weight
replaced by an 8-bit ``com.microsoft.MatMulNBits`` (ORT's ``MatMulNBitsQuantizer``) and then given the
eager variant's own INT8 data and scales, so that every runtime runs the same INT8 values. Apart from
the runtime because it is one concern of its own: ONNX graph surgery and ORT's n-bit quantizer.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from compression_bench.compression.weight_request import dequantize


def gemm_as_matmul(model) -> int:
    """Each Gemm of the ONNX ``model`` (in place) with a constant weight, ``alpha`` 1, ``beta`` 1 and no
    transposed input A (an ``nn.Linear`` on a 2-D input) rewritten as MatMul with the weight transposed
    into an initializer of its own, and an Add of the bias if it has one: ``MatMulNBits`` replaces
    MatMul nodes only. The number of nodes rewritten."""
    from onnx import helper, numpy_helper
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    done = 0
    for index, node in reversed(list(enumerate(graph.node))):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in inits or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            weight = weight.T
        name = f"{node.input[1]}_as_matmul_{index}"
        graph.initializer.append(numpy_helper.from_array(weight.copy(), name))
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        out = node.output[0]
        new = [helper.make_node("MatMul", [node.input[0], name], [f"{out}_matmul" if bias else out],
                                name=f"{node.name}_matmul")]
        if bias:
            new.append(helper.make_node("Add", [f"{out}_matmul", bias], [out], name=f"{node.name}_bias"))
        for n in new:
            n.metadata_props.extend(node.metadata_props)
        del graph.node[index]
        for offset, n in enumerate(new):
            graph.node.insert(index + offset, n)
        done += 1
    return done


def _nbits_module():
    """ORT's ``matmul_nbits_quantizer`` module. Importing it runs ``logging.basicConfig(level=INFO)``,
    which would send every library's INFO records to stderr for the rest of the process: the root
    logger is put back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from onnxruntime.quantization import matmul_nbits_quantizer
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    return matmul_nbits_quantizer


@contextlib.contextmanager
def _quiet_nbits_quantizer():
    """:func:`_nbits_module`, its INFO log (a line per node) silenced in the body."""
    nbits = _nbits_module()
    logger = logging.getLogger(nbits.__name__)
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield nbits
    finally:
        logger.setLevel(before)


#: MatMulNBits' ``accuracy_level`` of weight-only INT8: 1, float32 activations (4 would quantize them to INT8)
ACCURACY_FP32 = 1


#: the largest MatMulNBits block MLAS quantizes (16, 32, 64, 128 or 256 values)
MAX_BLOCK = 256


def _block(k: int) -> int:
    """MatMulNBits' block for input rows of ``k`` values: the power of two at or above ``k`` (at least
    16), or :data:`MAX_BLOCK` for a longer row, which is then several blocks given the same scale."""
    return min(MAX_BLOCK, max(16, 1 << (k - 1).bit_length()))


def _int8_layer(w, layers: list, node: str):
    """The INT8 data and scales of the layer whose dequantized weight the exported constant ``w`` (out,
    in) is: the same values, or the same up to a factor per output channel where the exporter folded a
    BatchNorm after the Linear into it (EnhancedLeNet5's ``Linear`` + ``BatchNorm1d``); the INT8 data
    is then the layer's and its scales carry the factor. :class:`ValueError` when no layer matches."""
    import numpy as np
    for qdata, scale, dequantized_weight in layers:
        if qdata.shape != w.shape:
            continue
        if np.array_equal(w, dequantized_weight):
            return qdata, scale
        d = dequantized_weight.astype(np.float64)
        norm = (d * d).sum(1)
        factor = np.where(norm > 0, (w * d).sum(1) / np.where(norm > 0, norm, 1.0), 1.0)
        if np.allclose(w, factor[:, None] * d, rtol=1e-4, atol=1e-6 * float(np.abs(w).max() or 1.0)):
            return qdata, (scale.astype(np.float64) * factor[:, None]).astype(np.float32)
    raise ValueError(f"onnxruntime: the constant weight of {node} is no INT8 layer's dequantized weight "
                     f"(nor one scaled per output channel)")


def weight_only_matmul_nbits(path: str, weights: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[bytes, int]:
    """The ONNX model at ``path`` (the export of a weight-only INT8 model's dequantized copy) with its
    Gemm layers rewritten as MatMul (:func:`gemm_as_matmul`) and every MatMul with a constant 2-D weight
    replaced by an 8-bit symmetric ``MatMulNBits`` (one block per output channel) by ORT's
    ``MatMulNBitsQuantizer``, then given exactly the INT8 data and scales of ``weights`` (module name ->
    (INT8 data, scale per output channel): :func:`~compression_bench.compression.weight_request.int8_weights`),
    each layer found by the dequantized values the export holds (:func:`_int8_layer`); and the number of
    nodes quantized. A constant weight that is no INT8 layer's fails the build."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    gemm_as_matmul(model)
    layers_int8 = [(q.numpy(), s.numpy(), dequantize(q, s).numpy()) for q, s in weights.values()]
    inits = {t.name: t for t in model.graph.initializer}
    groups: dict[int, list[str]] = {}
    layers = {}  # output name of each MatMul quantized -> its layer's INT8 data and scales
    for node in model.graph.node:
        init = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if init is None or len(init.dims) != 2:
            continue
        w = np.ascontiguousarray(numpy_helper.to_array(init).T)  # MatMul's (K, N): the layer's (N, K) transposed
        layers[node.output[0]] = _int8_layer(w, layers_int8, node.name)
        groups.setdefault(_block(init.dims[0]), []).append(node.name)
    with _quiet_nbits_quantizer() as nbits:
        for block, names in sorted(groups.items()):  # one block size per run: a pass per size, the others excluded
            others = [name for size, more in groups.items() if size != block for name in more]
            quantizer = nbits.MatMulNBitsQuantizer(model, bits=8, block_size=block, is_symmetric=True,
                                                   accuracy_level=ACCURACY_FP32, nodes_to_exclude=others)
            quantizer.process()
            model = quantizer.model.model
    inits = {t.name: t for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    for node in nodes:  # ORT's own rounding replaced by the variant's INT8 data (zero point 128) and scales
        qdata, scale = layers.pop(node.output[0])
        data, scales = inits[node.input[1]], inits[node.input[2]]
        n, k = qdata.shape
        block = _block(k)
        blocks = -(-k // block)
        if list(data.dims) != [n, blocks, block] or list(scales.dims) != [n, blocks]:
            raise ValueError(f"onnxruntime: {node.name} holds weights {list(data.dims)} / scales {list(scales.dims)}, "
                             f"not blocks of {block} of a ({n}, {k}) layer")
        packed = np.zeros((n, blocks * block), dtype=np.int16)
        packed[:, :k] = qdata
        packed = (packed + 128).astype(np.uint8).reshape(n, blocks, block)
        data.CopyFrom(numpy_helper.from_array(packed, data.name))
        scales.CopyFrom(numpy_helper.from_array(np.repeat(scale.reshape(n, 1).astype(np.float32), blocks, axis=1),
                                                scales.name))
    if layers:
        raise ValueError(f"onnxruntime: MatMulNBitsQuantizer left {len(layers)} INT8 layer(s) as MatMul")
    return model.SerializeToString(), len(nodes)


def nbits_missing(bits: int) -> str | None:
    """Why this ONNX Runtime cannot quantize weights only to ``bits`` bits, or None."""
    try:
        from onnxruntime.capi._pybind_state import quantize_matmul_8bits  # noqa: F401
        _nbits_module().MatMulNBitsQuantizer  # noqa: B018
    except (ImportError, AttributeError):
        return (f"this ONNX Runtime has no {bits}-bit MatMulNBits quantizer (onnxruntime.quantization."
                f"matmul_nbits_quantizer with quantize_matmul_8bits)")
    return None
