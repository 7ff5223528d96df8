"""Compositions: ``a+b`` applies method ``a``, then method ``b`` to ``a``'s variant.

Each step keeps its own fine-tuning, so ``structured_50+static_int8`` prunes, fine-tunes, then
quantizes the pruned model. Only the last step may be a quantization (an INT8 module cannot be
pruned or quantized again), and so may a cast to half precision (family ``precision``: ``bf16``,
``fp16``; a half-precision model is not pruned, quantized or cast again); ``original`` is not a step.

A quantized composition is reloaded on the float graph it was quantized from: the export keeps
that graph's architecture and parameter shapes (not its weights, which the INT8 state replaces).
"""
from __future__ import annotations

from types import MappingProxyType

import torch
from torch import nn

from . import serialize
from .context import CompressionContext
from .method import Method, MethodSpec, UnknownMethodError, budgets

BASE_ATTR = "_compression_base"  # plain data about the float graph the last step was applied to
#: families that can only be a composition's last step, and what their model is
LAST_STEP_ONLY = {"quantization": "an INT8 model", "precision": "a half-precision model",
                  "weight_only": "a weight-only INT8 model"}


def compose(method_id: str, steps: list[MethodSpec]) -> MethodSpec:
    flat: list[MethodSpec] = []
    for s in steps:
        flat += list(s.steps) or [s]
    for s in flat:
        if s.family == "original":
            raise UnknownMethodError(f"method {method_id!r}: 'original' cannot be part of a composition")
    for s in flat[:-1]:
        if s.family in LAST_STEP_ONLY:
            raise UnknownMethodError(f"method {method_id!r}: {s.id} must be the last step, {LAST_STEP_ONLY[s.family]} "
                                     f"cannot be compressed further; write it as ...+{s.id}")
    if len({s.kind for s in flat}) < len(flat):
        raise UnknownMethodError(f"method {method_id!r} repeats a kind of method; use one step per kind")
    level = next((s.level for s in flat if s.level is not None), None)
    return MethodSpec(
        id="+".join(s.id for s in flat),
        family="+".join(dict.fromkeys(s.family for s in flat)),
        kind="+".join(s.kind for s in flat),
        level=level,
        label=" + ".join(s.label for s in flat),
        compression=" + ".join(s.compression for s in flat),
        finetune=budgets(), options=MappingProxyType({}), impl=COMPOSED, steps=tuple(flat))


def _base_info(model: nn.Module) -> dict:
    return {"architecture": serialize.architecture(model),
            "shapes": {k: list(v.shape) for k, v in model.state_dict().items()}}


class Composed(Method):
    kind = "composed"
    family = "composed"
    label = "Composed"

    def build(self, spec: MethodSpec, model: nn.Module, ctx: CompressionContext, *,
              after: nn.Module | None = None) -> nn.Module:
        """All steps on ``model``; with ``after`` (the variant of all steps but the last, e.g. from a
        cache), only the last step, on ``after``."""
        base = after
        if base is None:
            base = model
            for step in spec.steps[:-1]:
                base = step.impl.build(step, base, ctx).cpu().eval()
        last = spec.steps[-1]
        out = last.impl.build(last, base, ctx)
        setattr(out, BASE_ATTR, _base_info(base))
        return out

    def export(self, spec: MethodSpec, variant: nn.Module) -> dict:
        last = spec.steps[-1]
        blob = last.impl.export(last, variant)
        base = getattr(variant, BASE_ATTR, None)
        if base is None:
            raise ValueError(f"{spec.id}: export a variant made by compress(), which records the graph "
                             f"the last step was applied to")
        blob["base"] = base
        return blob

    def load(self, spec: MethodSpec, blob: dict, float_model: nn.Module, ctx: CompressionContext) -> nn.Module:
        base = blob["base"]
        shapes = {k: torch.empty(v) for k, v in base["shapes"].items()}
        serialize.apply_architecture(float_model, base["architecture"], shapes)
        for m in float_model.modules():  # resized tensors start at zeros: give the layers their usual start
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        last = spec.steps[-1]
        out = last.impl.load(last, blob, float_model, ctx)
        setattr(out, BASE_ATTR, base)
        return out


COMPOSED = Composed()
