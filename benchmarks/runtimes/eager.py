"""``eager``: the variant as the ``nn.Module`` it is, run by PyTorch op by op under ``inference_mode``."""
from __future__ import annotations

import torch
from torch import nn

from compression_bench.compression.measure import serialized_size_mib

from . import Prepared, register_runtime, torch_threads


class Eager:
    name = "eager"
    description = "PyTorch eager mode (the module as built, torch.inference_mode)"

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
