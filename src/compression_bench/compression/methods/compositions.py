"""Compositions in the default matrix. Prune, fine-tune, then quantize the pruned model: the order
Torch-Pruning's authors recommend for combining the two."""
from ..specs import register_composition

register_composition("structured_50+static_int8", order=40.0)
