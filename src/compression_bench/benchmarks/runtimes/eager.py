"""``eager``: the variant as the ``nn.Module`` it is, run by PyTorch op by op under ``inference_mode``.

Its INT8 rows are torch.ao.quantization FX modules (x86 kernels). That API is deprecated upstream;
in a torch without it the INT8 rows of this runtime read ``n/a: torch.ao.quantization's FX API is
not in this torch`` and every other row still runs."""
from __future__ import annotations

import torch
from torch import nn

from compression_bench.compression.measure import serialized_size_mib
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
