"""``structured_random``: structured pruning with channels chosen at random, the baseline a pruning
criterion has to beat. Same pruner, levels, ignored layers and fine-tuning as ``structured``; only
the ranking differs (Torch-Pruning's ``RandomImportance``). Opt-in: select
``structured_random_30,structured_random_50,structured_random_70`` (or ``structured_random@0.6``)."""
from __future__ import annotations

from types import MappingProxyType

from ..specs import register_method
from .magnitude_pruning import Structured


@register_method
class StructuredRandom(Structured):
    kind, label, order, default = "structured_random", "Pruning (Structured, random)", 31.0, False
    criterion_text = "random channels"
    options = MappingProxyType(dict(Structured.options, importance="random"))

    def importance(self):
        import torch_pruning as tp
        return tp.importance.RandomImportance()
