"""Pruning by weight magnitude: unstructured (masks, LAMP scores) and structured (channels, L2).

The recipes are in :mod:`compression_bench.compression.pruning`; this module registers them at
30, 50 and 70%, and every other level as ``unstructured@<fraction>`` / ``structured@<fraction>``.
"""
from __future__ import annotations

import copy
from types import MappingProxyType

from .. import pruning
from ..context import run_finetune
from ..specs import FineTune, Method, budgets, register_method

LEVELS = (0.3, 0.5, 0.7)


@register_method
class Unstructured(Method):
    kind, family, label, order, levels = "unstructured", "pruning", "Pruning (Unstructured)", 20.0, LEVELS
    finetune = budgets(FineTune(1, 0.1), FineTune(3, 0.1), FineTune(5, 0.1))
    options = MappingProxyType(dict(scope=["Conv", "Linear"], criterion="lamp_magnitude", scheme="global",
                                    masks_during_finetune=True,
                                    # fine-tune only when pruning lost more than this on the validation
                                    # split (points), and stop at the first epoch back within it;
                                    # measured 2026-12-04: see the methodology's cold run
                                    finetune_unless_within=0.5, finetune_until_within=0.5))

    def build(self, spec, model, ctx):
        out = copy.deepcopy(model).cpu()
        ctx.say(f"[{spec.id}] unstructured pruning to {spec.compression} (global LAMP-scored magnitude over "
                f"conv/linear weights)")
        pruning.prune_unstructured(out, spec.level)
        budget = spec.budget(ctx.profile)
        if run_finetune(ctx, spec, out, recalibrate_bn=True, original=model,
                        skip_within=spec.options.get("finetune_unless_within"),
                        stop_within=spec.options.get("finetune_until_within")):
            ctx.say(f"[{spec.id}] fine-tuned with masks (up to {budget.epochs} epoch(s), lr x{budget.lr_scale})")
        return pruning.make_permanent(out)


@register_method
class Structured(Method):
    """Channel pruning with Torch-Pruning's dependency graph, then fine-tuning. Subclasses change
    the channel ranking by overriding :meth:`importance` (and ``kind``, ``label``, ``options``)."""
    kind, family, label, order, levels = "structured", "pruning", "Pruning (Structured)", 30.0, LEVELS
    criterion_text = "L2 magnitude"
    # Structured pruning removes whole channels: the network needs real retraining, at the full
    # learning rate (measured on EfficientNet-B0, default profile, 70%: 3 epochs at x0.3 -> 86.0%,
    # 6 at x0.5 -> 94.9%, 6 at x1.0 -> 98.0% against 97.8% for the original).
    finetune = budgets(FineTune(1, 0.3), FineTune(6, 1.0), FineTune(10, 1.0))
    options = MappingProxyType(dict(library="torch_pruning", pruner="BasePruner (DepGraph)", importance="magnitude_l2",
                                    global_pruning=False,
                                    ignored="classifier Linear(s) with out_features == num_classes",
                                    round_to=pruning.ROUND_TO,
                                    # fine-tuning stops at the first epoch within this of the original on
                                    # the validation split (points); measured 2026-12-04, methodology
                                    finetune_until_within=0.5))
    tunable = MappingProxyType({"round_to": (1, 256)})

    def importance(self):
        import torch_pruning as tp
        return tp.importance.MagnitudeImportance(p=2)

    def build(self, spec, model, ctx):
        out = copy.deepcopy(model).cpu()
        ctx.say(f"[{spec.id}] structured pruning to {spec.compression} of channels (Torch-Pruning, "
                f"{self.criterion_text})")
        pruning.prune_structured(out, spec.level, ctx.example_inputs.detach().cpu(), ctx.num_classes,
                                 log=lambda m: ctx.say(f"[{spec.id}] {m}"), importance=self.importance(),
                                 round_to=spec.options.get("round_to", 1))
        budget = spec.budget(ctx.profile)
        if budget.epochs:
            ctx.say(f"[{spec.id}] fine-tuning up to {budget.epochs} epoch(s), lr x{budget.lr_scale}")
        run_finetune(ctx, spec, out, recalibrate_bn=True, original=model,
                     stop_within=spec.options.get("finetune_until_within"))
        return out
