"""Model measurements: parameters, sparsity, size on disk, MACs.

Conventions (they decide what the report's columns mean):

* **Parameters** (:func:`count_params`): every stored weight element.  Float
  modules count their ``nn.Parameter`` s; quantized Linear/Conv modules keep
  weight and bias packed (not as parameters), and those packed elements are
  counted too, so INT8 does not "lose" parameters.  Scales, zero points and BN
  running statistics are buffers and are not counted.  Static and QAT INT8 fold
  each BatchNorm into the preceding convolution: the BN's ``2*C`` affine
  parameters disappear and the convolution gains a ``C``-element bias if it had
  none, so a folded model counts ``C`` fewer per folded BN (``2*C`` fewer where
  the conv already had a bias).  Dynamic INT8 counts exactly the float count.
* **Sparsity** (:func:`sparsity`): fraction of exact zeros among the weights of
  convolution and linear layers (float or quantized), biases and norms
  excluded.  For quantized weights a zero is a value equal to its zero point.
* **Size** (:func:`serialized_size_mib`): bytes of ``torch.save(model.state_dict())``
  in MiB (2**20 bytes): what a deployment ships, no optimizer state.
* **Zero-aware size** (:func:`zero_aware_size_mib`): the same file if every
  tensor were stored in whichever is smaller of dense form or "nonzero values +
  a 1-bit-per-element presence mask"; container overhead (pickle, scales) is
  kept as measured.  Dense and quantized models come out at their plain size;
  unstructured pruning shows its storage gain.
* **MACs** (:func:`count_macs`): multiply-accumulates of one forward pass per
  sample, from torch's own FLOP counter (MACs = FLOPs / 2, divided by the
  batch size).  The FLOP counter cannot see quantized kernels, so INT8 models
  are refused: pass their float original (same graph, same MACs).
* **Density-weighted MACs** (:func:`density_weighted_macs`): each conv/linear
  layer's MACs times the density (nonzero fraction) of its weight, other
  operations unchanged (ShrinkBench's "theoretical speedup" basis).
"""

from __future__ import annotations

import io
from typing import Iterator

import torch
from torch import nn


def _packed_weight_bias(module: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None] | None:
    """(weight, bias) of a quantized module with packed parameters, else None.

    Duck-typed (quantized Linear / dynamic Linear / Conv keep ``_packed_params``
    and expose ``weight()`` / ``bias()`` methods) so this module needs no
    quantization import."""
    if not hasattr(module, "_packed_params"):
        return None
    weight = getattr(module, "weight", None)
    if not callable(weight) or isinstance(weight, torch.Tensor):
        return None
    w = weight()
    bias = getattr(module, "bias", None)
    b = bias() if callable(bias) and not isinstance(bias, torch.Tensor) else None
    return w, b


def _is_quantized_model(model: nn.Module) -> bool:
    return any(_packed_weight_bias(m) is not None for m in model.modules()) or any(
        t.is_quantized for t in _state_tensors(model.state_dict())
    )


def _stored_weights(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every counted weight tensor (parameters and packed quantized weights)."""
    for module in model.modules():
        yield from module.parameters(recurse=False)
        packed = _packed_weight_bias(module)
        if packed is not None:
            for t in packed:
                if t is not None:
                    yield t


def _is_wrapper(t: torch.Tensor) -> bool:
    """Whether ``t`` is a tensor subclass that holds other tensors (torchao's weight-only ``Int8Tensor``:
    INT8 ``qdata``, a float32 ``scale`` per output channel): it has no data of its own to count."""
    return type(t) not in (torch.Tensor, nn.Parameter) and hasattr(t, "__tensor_flatten__")


def _nonzero(t: torch.Tensor) -> int:
    t = t.detach()
    if t.is_quantized or _is_wrapper(t):
        t = t.dequantize()
    return int(torch.count_nonzero(t))


def count_params(model: nn.Module) -> int:
    """Stored weight elements, packed INT8 weights included (see module doc)."""
    return int(sum(t.numel() for t in _stored_weights(model)))


def count_nonzero(model: nn.Module) -> int:
    """Nonzero elements among the tensors :func:`count_params` counts."""
    return int(sum(_nonzero(t) for t in _stored_weights(model)))


def _layer_weights(model: nn.Module) -> Iterator[tuple[str, nn.Module, torch.Tensor]]:
    """(name, module, weight) of every conv / linear layer, float or quantized."""
    for name, module in model.named_modules():
        packed = _packed_weight_bias(module)
        if packed is not None:
            yield name, module, packed[0]
        elif isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            yield name, module, module.weight


def sparsity(model: nn.Module) -> float:
    """Fraction of zeros among conv/linear weights (0.0 for a model without any)."""
    total = zeros = 0
    for _, _, w in _layer_weights(model):
        total += w.numel()
        zeros += w.numel() - _nonzero(w)
    return zeros / total if total else 0.0


def _serialized_bytes(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def serialized_size_mib(model: nn.Module) -> float:
    """Size of ``torch.save(model.state_dict())`` in MiB."""
    return _serialized_bytes(model.state_dict()) / 2**20


def _state_tensors(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor) and _is_wrapper(value):  # the tensors it stores (torch.save writes those)
        for name in value.__tensor_flatten__()[0]:
            yield from _state_tensors(getattr(value, name))
    elif isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _state_tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _state_tensors(v)


def zero_aware_size_mib(model: nn.Module) -> float:
    """Serialized size with each tensor stored densely or as nonzeros + bit mask,
    whichever is smaller (see module doc)."""
    state = model.state_dict()
    total = _serialized_bytes(state)
    seen: set[int] = set()
    for t in _state_tensors(state):
        key = id(t)
        if key in seen:
            continue
        seen.add(key)
        dense = t.numel() * t.element_size()
        sparse = _nonzero(t) * t.element_size() + (t.numel() + 7) // 8
        total -= dense - min(dense, sparse)
    return total / 2**20


# ---------------------------------------------------------------- MACs
def _check_float(model: nn.Module) -> None:
    if _is_quantized_model(model):
        raise ValueError(
            "count_macs needs a float model: the FLOP counter cannot see quantized kernels; "
            "pass the float original of an INT8 variant (same graph, same MACs)"
        )


def _forward_flops(model: nn.Module, example_inputs: torch.Tensor, hooks: bool):
    from torch.utils.flop_counter import FlopCounterMode

    layer_macs: dict[str, tuple[int, nn.Module]] = {}
    handles = []
    batch = int(example_inputs.shape[0])

    def hook(name):
        def fn(module, inputs, output):
            if isinstance(module, nn.Linear):
                per = module.in_features
            else:
                k = 1
                for s in module.kernel_size:
                    k *= s
                per = (module.in_channels // module.groups) * k
            macs = output.numel() * per // batch
            prev = layer_macs.get(name, (0, module))[0]
            layer_macs[name] = (prev + macs, module)
        return fn

    if hooks:
        for name, module in model.named_modules():
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(example_inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return counter.get_total_flops() // 2 // batch, layer_macs


def count_macs(model: nn.Module, example_inputs: torch.Tensor) -> int:
    """MACs of one forward pass per sample (float models only, see module doc)."""
    _check_float(model)
    macs, _ = _forward_flops(model, example_inputs, hooks=False)
    return int(macs)


def density_weighted_macs(model: nn.Module, example_inputs: torch.Tensor) -> int:
    """MACs per sample with each conv/linear layer weighted by its weight density."""
    _check_float(model)
    macs, layers = _forward_flops(model, example_inputs, hooks=True)
    saved = 0.0
    for layer_total, module in layers.values():
        w = module.weight
        density = _nonzero(w) / w.numel() if w.numel() else 1.0
        saved += layer_total * (1.0 - density)
    return int(round(max(0.0, macs - saved)))
