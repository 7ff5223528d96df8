"""What a weight-only INT8 method asks for, independent of any toolchain: a :class:`WeightOnlyRequest`.

The ``weight_only_int8`` method declares one (``Method.request``), as the INT8 methods declare an
:class:`~compression_bench.compression.int8_request.Int8Request` and the half-precision ones a
:class:`~compression_bench.compression.float_request.FloatRequest`. The weights of the ``nn.Linear``
layers are stored in INT8 with one symmetric scale per output channel; activations stay float32 and
each weight is dequantized inside its matmul (what memory-bound models, transformers, use). Each
runtime *lowers* the request with its own toolchain or says why it cannot (its row then reads
``n/a: <reason>``); no runtime reads a method's id or kind:

* eager: torchao's ``quantize_(model, Int8WeightOnlyConfig())`` (:func:`quantize`): each Linear weight
  an ``Int8Tensor`` (INT8 ``qdata``, a float32 ``scale`` per output channel), the rest of the model as it was;
* Inductor: that module compiled ahead of time (freezing off: it would fold the INT8 weights into float32);
* ONNX Runtime: ``MatMulNBits`` (8 bits, symmetric, one block per output channel) by
  ``MatMulNBitsQuantizer``;
* OpenVINO: ``nncf.compress_weights`` in ``INT8_SYM`` mode (per output channel).

The last two convert the float model of :func:`dequantized` and then put the eager variant's own INT8
data and scales (:func:`int8_weights`) into the nodes their quantizers made: their quantizers round on
grids of their own, and re-quantizing dequantized weights doubles the weight error.

    request = WeightOnlyRequest()
    request.describe()   # 'INT8 weight-only, per-channel symmetric weights, linear (float32 activations)'

The quantization is the method's only step and a composition's last (``structured_50+weight_only_int8``:
prune, fine-tune, then quantize the weights): its family is ``weight_only``. The variant's state holds
each Linear weight as INT8 data and its scales (:func:`compression_bench.compression.measure.serialized_size_mib`
counts the tensors torchao's ``Int8Tensor`` pickles: ``qdata``, ``scale``, ``zero_point``), so a
ViTTiny, whose weights are mostly in Linear layers, stores 0.42x its float32 bytes (its convolutional
stem, norms, biases and position embedding stay float32).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

BITS = (8,)
LAYERS = ("linear",)
GRANULARITY = ("per_channel",)
FAMILY = "weight_only"


@dataclass(frozen=True)
class WeightOnlyRequest:
    """A weight-only method's requirement: the weights of the ``layers`` (``linear``: every
    ``nn.Linear``) in ``bits``-bit integers, symmetric, one scale per output channel
    (``granularity``); activations, biases and every other parameter stay float32."""
    bits: int = 8
    layers: tuple[str, ...] = ("linear",)
    granularity: str = "per_channel"
    symmetric: bool = True

    def __post_init__(self) -> None:
        if self.bits not in BITS:
            raise ValueError(f"WeightOnlyRequest bits={self.bits!r}; valid: {', '.join(map(str, BITS))}")
        if not self.layers or any(t not in LAYERS for t in self.layers):
            raise ValueError(f"WeightOnlyRequest layers={self.layers!r}; a non-empty subset of {', '.join(LAYERS)}")
        if self.granularity not in GRANULARITY:
            raise ValueError(f"WeightOnlyRequest granularity={self.granularity!r}; valid: {', '.join(GRANULARITY)}")
        if not self.symmetric:
            raise ValueError("WeightOnlyRequest: symmetric weights only (torchao's Int8WeightOnlyConfig)")

    def describe(self) -> str:
        """One line for logs and reasons:
        ``INT8 weight-only, per-channel symmetric weights, linear (float32 activations)``."""
        return (f"INT{self.bits} weight-only, {self.granularity.replace('_', '-')} "
                f"{'symmetric' if self.symmetric else 'asymmetric'} weights, {'+'.join(self.layers)} "
                f"(float32 activations)")

    def to_dict(self) -> dict:
        """Plain data (part of a runtime artifact's cache key)."""
        return {"bits": self.bits, "layers": list(self.layers), "granularity": self.granularity,
                "symmetric": self.symmetric}


def weight_only_request(spec) -> WeightOnlyRequest | None:
    """The request of a method spec's weight-only step (a composition's last step), or None for a
    method that does not quantize weights only."""
    return spec.declared_request(WeightOnlyRequest, "weight-only") if spec.last.family == FAMILY else None


def torchao_missing() -> str | None:
    """Why torchao cannot quantize weights only here (it is not installed, or older than its
    ``Int8Tensor`` weights), or None when it can."""
    try:
        from torchao.quantization import Int8Tensor, Int8WeightOnlyConfig, quantize_  # noqa: F401
    except ImportError:
        return "torchao's Int8WeightOnlyConfig with Int8Tensor weights is not installed (pip install 'torchao>=0.18')"
    return None


def _is_int8_weight(weight) -> bool:
    """Whether ``weight`` is a weight-only INT8 tensor (torchao's ``Int8Tensor``: ``qdata`` and
    ``scale``), duck-typed so that this module needs torchao only to quantize."""
    return isinstance(weight, torch.Tensor) and hasattr(weight, "qdata") and hasattr(weight, "scale")


def _config():
    from torchao.quantization import Int8WeightOnlyConfig, PerRow
    # set_inductor_config=False: torchao would otherwise change torch._inductor.config for the rest of the process
    return Int8WeightOnlyConfig(granularity=PerRow(), set_inductor_config=False)


def _selected(request: WeightOnlyRequest):
    types = tuple({"linear": nn.Linear}[t] for t in request.layers)
    return lambda module, name: isinstance(module, types) and not _is_int8_weight(module.weight)


def quantize(model: nn.Module, request: WeightOnlyRequest) -> nn.Module:
    """A copy of ``model`` with the weights of the request's layers in INT8 (torchao's
    ``Int8WeightOnlyConfig``: symmetric, one float32 scale per output channel); activations, biases
    and every other parameter as they were. Runs on float32 input like the model."""
    reason = torchao_missing()
    if reason:
        raise RuntimeError(reason)
    from torchao.quantization import quantize_
    out = copy.deepcopy(model).cpu().eval()
    quantize_(out, _config(), filter_fn=_selected(request))
    return out


def int8_weights(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module name -> (INT8 data, float32 scale per output channel, shape ``(out, 1)``) of every
    weight-only INT8 layer of ``model``, as plain tensors."""
    return {name: (m.weight.qdata.detach(), m.weight.scale.detach()) for name, m in model.named_modules()
            if _is_int8_weight(getattr(m, "weight", None))}


def restore(model: nn.Module, weights: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """``model`` (float, in place) with the layers named in ``weights`` quantized as
    :func:`quantize` does and their INT8 data and scales set to exactly those given (a reload: the
    quantization of the dequantized weights could round a value to the other neighbour)."""
    from torchao.quantization import quantize_
    quantize_(model, _config(), filter_fn=lambda module, name: name in weights)
    found = int8_weights(model)
    if set(found) != set(weights):
        raise ValueError(f"weight-only INT8 layers {sorted(set(weights) ^ set(found))} do not match the model")
    with torch.no_grad():
        for name, (qdata, scale) in weights.items():
            w = model.get_submodule(name).weight
            if w.qdata.shape != qdata.shape or w.scale.shape != scale.shape:
                raise ValueError(f"{name}: stored INT8 weight {tuple(qdata.shape)} / scale {tuple(scale.shape)}, "
                                 f"the model's {tuple(w.qdata.shape)} / {tuple(w.scale.shape)}")
            w.qdata.copy_(qdata)
            w.scale.copy_(scale)
    return model


def dequantize(qdata: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight of INT8 data and its per-output-channel scales: ``qdata * scale``."""
    return qdata.to(torch.float32) * scale.to(torch.float32)


def dequantized(model: nn.Module) -> nn.Module:
    """A float32 copy of a weight-only INT8 model, each INT8 weight replaced by its dequantized
    values (:func:`dequantize`): what the eager variant multiplies by, for a runtime that converts a
    float graph and quantizes its weights with its own toolchain."""
    out = copy.deepcopy(model).cpu().eval()
    for name, (qdata, scale) in int8_weights(out).items():
        out.get_submodule(name).weight = nn.Parameter(dequantize(qdata, scale), requires_grad=False)
    return out
