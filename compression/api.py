"""compress / export_variant / load_variant: the methods behind one interface."""

from __future__ import annotations

import copy

from torch import nn

from . import pruning, quant, serialize
from .context import CompressionContext
from .specs import SETTINGS_VERSION, FineTune, MethodSpec, get_method


def _finetune(ctx: CompressionContext, spec: MethodSpec, model: nn.Module, budget: FineTune, **kw) -> None:
    if budget.epochs <= 0:
        return
    if ctx.finetune is None:
        raise ValueError(
            f"method {spec.id!r} fine-tunes for {budget.epochs} epoch(s) under profile "
            f"{ctx.profile!r} but the context has no finetune callable; pass one"
        )
    ctx.finetune(model, budget.epochs, budget.lr_scale, **kw)


def compress(model: nn.Module, method_id: str, ctx: CompressionContext) -> nn.Module:
    """A compressed copy of ``model`` (never modified), in eval mode on the CPU."""
    spec = get_method(method_id)
    budget = spec.budget(ctx.profile)
    say = lambda msg: ctx.say(f"[{spec.id}] {msg}")  # noqa: E731
    example = ctx.example_inputs.detach().cpu()

    if spec.family == "original":
        out = copy.deepcopy(model)

    elif spec.kind == "dynamic":
        say("dynamic INT8: quantizing Linear layers")
        out = quant.quantize_dynamic_int8(model)

    elif spec.kind == "static":
        out = quant.quantize_static_int8(model, example, ctx.calibration(), log=say)

    elif spec.kind == "qat":
        if budget.epochs <= 0 or ctx.finetune is None:
            raise ValueError(
                f"method {spec.id!r} needs fine-tuning (profile {ctx.profile!r} budget: "
                f"{budget.epochs} epochs) and a finetune callable in the context"
            )
        out = quant.quantize_qat_int8(
            model, example, ctx.calibration(), ctx.finetune, budget.epochs, budget.lr_scale,
            float(spec.options["freeze_last_epochs_fraction"]), log=say,
        )

    elif spec.kind == "unstructured":
        out = copy.deepcopy(model).cpu()
        say(f"unstructured pruning to {spec.compression} (global LAMP-scored magnitude over conv/linear weights)")
        pruning.prune_unstructured(out, spec.level)
        if budget.epochs:
            say(f"fine-tuning {budget.epochs} epoch(s) with masks, lr x{budget.lr_scale}")
        _finetune(ctx, spec, out, budget, recalibrate_bn=True)
        pruning.make_permanent(out)

    elif spec.kind == "structured":
        out = copy.deepcopy(model).cpu()
        say(f"structured pruning to {spec.compression} of channels (Torch-Pruning, L2 magnitude)")
        pruning.prune_structured(out, spec.level, example, ctx.num_classes, log=say)
        if budget.epochs:
            say(f"fine-tuning {budget.epochs} epoch(s), lr x{budget.lr_scale}")
        _finetune(ctx, spec, out, budget, recalibrate_bn=True)

    else:  # pragma: no cover - registry and dispatch are kept in step by tests
        raise AssertionError(f"no implementation for method kind {spec.kind!r}")

    return out.cpu().eval()


def export_variant(variant: nn.Module, method_id: str) -> dict:
    """The variant as plain data (tensors, numbers, strings, lists, dicts)."""
    spec = get_method(method_id)
    blob = {
        "format": serialize.FORMAT,
        "method": spec.id,
        "settings_version": SETTINGS_VERSION,
        "state_dict": serialize.encode_state_dict(variant.state_dict()),
    }
    if spec.family != "quantization":
        blob["architecture"] = serialize.architecture(variant)
    return blob


def load_variant(blob: dict, float_model: nn.Module, method_id: str, ctx: CompressionContext) -> nn.Module:
    """Rebuild an exported variant on a freshly built float architecture.

    ``float_model`` is copied, not modified.  Raises ``ValueError`` when the blob
    is not a variant of ``method_id`` in this format (treat as a stale cache entry).
    """
    spec = get_method(method_id)
    if not isinstance(blob, dict) or blob.get("format") != serialize.FORMAT:
        raise ValueError(f"not a compressed variant in format {serialize.FORMAT!r}")
    if blob.get("method") != spec.id:
        raise ValueError(f"variant was exported for method {blob.get('method')!r}, not {spec.id!r}")
    if blob.get("settings_version") != SETTINGS_VERSION:
        raise ValueError(
            f"variant was built with settings version {blob.get('settings_version')!r}, "
            f"this code is version {SETTINGS_VERSION}; rebuild it"
        )
    state = serialize.decode_state_dict(blob["state_dict"])
    if spec.family == "quantization":
        model = quant.rebuild(spec.kind, float_model, ctx.example_inputs.detach().cpu())
        quant.load_state(model, state)
    else:
        model = copy.deepcopy(float_model).cpu()
        serialize.apply_architecture(model, blob["architecture"], state)
        model.load_state_dict(state, strict=True)
    return model.eval()
