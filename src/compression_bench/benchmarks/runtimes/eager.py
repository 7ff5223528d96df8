"""``eager``: the variant as the ``nn.Module`` it is, run by PyTorch op by op under ``inference_mode``.

Its INT8 rows are torch.ao.quantization FX modules (x86 kernels). That API is deprecated upstream;
in a torch without it the INT8 rows of this runtime read ``n/a: torch.ao.quantization's FX API is
not in this torch`` and every other row still runs.

Its half-precision rows (``bf16``, ``fp16``) run the cast variant
(:func:`compression_bench.compression.float_request.cast`): weights and BatchNorm statistics stored in
the dtype, the float32 input cast once before the first layer and the logits cast back. Not
``torch.autocast``: autocast keeps the float32 weights and casts each one again at every call (and runs
BatchNorm and the other ops outside its lists in float32), so the stored state does not shrink, and
it ran slower: batch 64, one thread, random weights, median of 15 calls on a 2-core x86-amx VM
(2026-12-06), cast against autocast: SimpleCNN_6x2 BF16 34.1 vs 38.8 ms, FP16 91.9 vs 92.9 ms;
EfficientNetB0Custom BF16 174.3 vs 176.9 ms, FP16 69.9 vs 80.9 ms (float32: 67.2 and 156.2 ms).

Its weight-only INT8 rows (``weight_only_int8``) run torchao's module
(:func:`compression_bench.compression.weight_request.quantize`): each ``nn.Linear`` weight an ``Int8Tensor``
(INT8 data, a float32 scale per output channel) that torchao's linear multiplies by the float32
activations and scales; ``n/a`` where torchao has no ``Int8Tensor`` weights.
"""
from __future__ import annotations

import torch
from torch import nn

from compression_bench.compression.measure import serialized_size_mib
from compression_bench.compression.weight_request import torchao_missing, weight_only_request
from compression_bench.zoo.keys import package_versions

from . import Prepared, register_runtime, torch_threads


def fx_quantization_missing() -> str | None:
    """Why torch.ao's FX quantization cannot run here, or None when it can."""
    try:
        import torch.ao.quantization  # noqa: F401
        import torch.ao.quantization.quantize_fx  # noqa: F401
    except ImportError:
        return "torch.ao.quantization's FX API is not in this torch"
    return None


class Eager:
    name = "eager"
    description = "PyTorch eager mode (the module as built, torch.inference_mode; INT8 rows: torch.ao FX)"
    requires: tuple[str, ...] = ()
    install = ""
    batch_specific = False
    native = True  # runs the variant module itself: the compression pipeline builds it

    def versions(self) -> dict[str, str]:
        return package_versions("torch")

    def unsupported(self, method) -> str | None:
        if weight_only_request(method) is not None:
            return torchao_missing()
        return fx_quantization_missing() if method.quantized else None

    def prepare(self, model: nn.Module, example: torch.Tensor) -> Prepared:
        model = model.eval()

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(x)
        return run

    def threads(self, count: int):
        return torch_threads(count)

    def size_mib(self, model: nn.Module) -> float:
        return serialized_size_mib(model)


EAGER = register_runtime(Eager())
