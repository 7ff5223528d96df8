"""What a half-precision method asks for, independent of any toolchain: a :class:`FloatRequest`.

The ``bf16`` and ``fp16`` methods declare one (``Method.request``), as the INT8 methods declare an
:class:`~compression_bench.compression.int8_request.Int8Request`. Each runtime *lowers* it with its
own toolchain or says why it cannot (its row then reads ``n/a: <reason>``); no runtime reads a
method's id or kind:

* eager: the model cast to the dtype (:func:`cast`: weights, biases and BatchNorm statistics),
  taking float32 input and returning float32 logits;
* Inductor: that cast model compiled ahead of time;
* OpenVINO: the float32 model converted, then compiled with ``INFERENCE_PRECISION_HINT`` ``bf16`` or
  ``f16`` where the CPU plugin lists the precision among its capabilities;
* ONNX Runtime: float16 by ``onnxruntime.transformers.float16``; no bfloat16 (no CPU kernels).

    request = FloatRequest(dtype="bfloat16")
    request.describe()          # 'BF16 weights and activations (float32 input and logits)'

The cast is the method's only step and a composition's last (``structured_50+bf16``: prune,
fine-tune, then cast): its family is ``precision``. The variant's state is in the dtype, so its
size is half the float32 model's (:func:`compression_bench.compression.measure.serialized_size_mib`
counts each tensor's own bytes). Every value of the cast model is exact in float32, so a runtime
that needs a float32 graph (:func:`as_float32`) starts from exactly the weights the eager row runs.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch
from torch import nn

#: request dtype -> (torch dtype, short name in tables and reasons)
DTYPES = {"bfloat16": (torch.bfloat16, "BF16"), "float16": (torch.float16, "FP16")}
FAMILY = "precision"


@dataclass(frozen=True)
class FloatRequest:
    """A half-precision method's requirement: every weight and activation in ``dtype``
    (``bfloat16`` or ``float16``), the model's input and logits in float32."""
    dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"FloatRequest dtype={self.dtype!r}; valid: {', '.join(DTYPES)}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype][0]

    @property
    def short(self) -> str:
        """``BF16`` or ``FP16``."""
        return DTYPES[self.dtype][1]

    def describe(self) -> str:
        """One line for logs and reasons: ``BF16 weights and activations (float32 input and logits)``."""
        return f"{self.short} weights and activations (float32 input and logits)"

    def to_dict(self) -> dict:
        """Plain data (part of a runtime artifact's cache key)."""
        return {"dtype": self.dtype}


def float_request(spec) -> FloatRequest | None:
    """The request of a method spec's cast step (a composition's last step), or None for a method
    that does not change the precision."""
    return spec.declared_request(FloatRequest, "precision") if spec.last.family == FAMILY else None


def _cast_input(module: nn.Module, args: tuple, *, dtype: torch.dtype) -> tuple:
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def _float32_output(module: nn.Module, args: tuple, output):
    return output.float() if isinstance(output, torch.Tensor) else output


def cast(model: nn.Module, request: FloatRequest) -> nn.Module:
    """A copy of ``model`` with its parameters and buffers in the request's dtype that takes float32
    input and returns float32 logits. The casts are hooks on the root module, not a wrapper: the
    state dict, the architecture and every caller (evaluation, MAC counting, timing) see the model
    as it was, and the cast of the input is one op before the first layer."""
    out = copy.deepcopy(model).cpu().eval().to(request.torch_dtype)
    add_casts(out, request)
    return out


def add_casts(model: nn.Module, request: FloatRequest) -> nn.Module:
    """The hooks of :func:`cast` on ``model`` (already in the request's dtype), e.g. after a reload."""
    model.register_forward_pre_hook(functools.partial(_cast_input, dtype=request.torch_dtype))
    model.register_forward_hook(_float32_output)
    return model


def _is_cast_hook(hook) -> bool:
    return getattr(hook, "func", hook) in (_cast_input, _float32_output)


def as_float32(model: nn.Module) -> nn.Module:
    """A float32 copy of a cast model without the cast hooks: the same values (bfloat16 and float16
    are exact in float32), for a runtime that converts a float32 graph and lowers the precision itself."""
    out = copy.deepcopy(model).cpu().eval().float()
    for hooks in (out._forward_pre_hooks, out._forward_hooks):
        for key in [k for k, hook in hooks.items() if _is_cast_hook(hook)]:
            del hooks[key]
    return out
