"""INT8 quantization with torch's x86 kernels: dynamic, static (post-training) and QAT.

The recipes are in :mod:`compression_bench.compression.quant`; this module registers them.
"""
from __future__ import annotations

from types import MappingProxyType

from .. import quant, serialize
from ..specs import FineTune, Method, budgets, register_method

_BACKEND = quant.BACKEND


class _Int8(Method):
    family = "quantization"
    compression = "INT8"

    def load(self, spec, blob, float_model, ctx):
        model = quant.rebuild(self.kind, float_model, ctx.example_inputs.detach().cpu())
        return quant.load_state(model, serialize.decode_state_dict(blob["state_dict"]))


@register_method
class DynamicInt8(_Int8):
    kind, id, label, order = "dynamic", "dynamic_int8", "Quantization (Dynamic)", 10.0
    options = MappingProxyType(dict(backend=_BACKEND, modules=["Linear"], weight_dtype="qint8",
                                    weight_qscheme="per_tensor_affine", activations="dynamic (per batch)"))

    def build(self, spec, model, ctx):
        ctx.say(f"[{spec.id}] dynamic INT8: quantizing Linear layers")
        return quant.quantize_dynamic_int8(model)


@register_method
class StaticInt8(_Int8):
    kind, id, label, order = "static", "static_int8", "Quantization (Static)", 11.0
    options = MappingProxyType(dict(backend=_BACKEND, api="fx", qconfig_mapping="default_x86",
                                    weight_qscheme="per_channel_symmetric", activation_observer="histogram",
                                    calibration="context"))

    def build(self, spec, model, ctx):
        return quant.quantize_static_int8(model, ctx.example_inputs.detach().cpu(), ctx.calibration(),
                                          log=lambda m: ctx.say(f"[{spec.id}] {m}"))


@register_method
class GuardedStaticInt8(_Int8):
    """Accuracy-aware static INT8 (opt-in): static INT8 with the layers most sensitive to quantization
    kept in float until the validation accuracy is within ``max_drop`` points of the float model's
    (``static_int8_guarded:max_drop=1.0`` changes the bound). The choice is made on the validation
    split; the row's accuracy is then measured on the test split like every other row."""
    kind, id, label, order = "static_guarded", "static_int8_guarded", "Quantization (Static, guarded)", 11.5
    default = False
    options = MappingProxyType(dict(StaticInt8.options, max_drop=0.5,
                                    sensitivity="validation accuracy lost with the layer alone in INT8",
                                    selection="most sensitive first, until within max_drop"))
    tunable = MappingProxyType({"max_drop": (0.0, 100.0)})

    def build(self, spec, model, ctx):
        if ctx.validate is None:
            raise ValueError(f"method {spec.id!r} needs a validate callable in the context (it chooses the "
                             f"layers kept in float on the validation split)")
        q, info = quant.quantize_static_int8_guarded(model, ctx.example_inputs.detach().cpu(), ctx.calibration,
                                                     ctx.validate, float(spec.options["max_drop"]),
                                                     log=lambda m: ctx.say(f"[{spec.id}] {m}"))
        if not info["within"]:
            ctx.say(f"[{spec.id}] the bound was not reached: {len(info['float_layers'])} layer(s) in float, "
                    f"{info['float_accuracy'] - info['int8_accuracy']:.2f} pt lost on validation")
        q.compression_info = info
        return q

    def export(self, spec, variant):
        return {**super().export(spec, variant), "info": dict(getattr(variant, "compression_info", {}))}

    def load(self, spec, blob, float_model, ctx):
        info = dict(blob.get("info") or {})
        model = quant.rebuild("static", float_model, ctx.example_inputs.detach().cpu(),
                              float_layers=info.get("float_layers") or ())
        model = quant.load_state(model, serialize.decode_state_dict(blob["state_dict"]))
        model.compression_info = info
        return model


@register_method
class QatInt8(_Int8):
    kind, id, label, order = "qat", "qat_int8", "Quantization (QAT)", 12.0
    finetune = budgets(FineTune(1, 0.1), FineTune(3, 0.1), FineTune(5, 0.1))
    # the last max(1, epochs // 3) epochs run with BN statistics and observers frozen
    options = MappingProxyType(dict(backend=_BACKEND, api="fx", qconfig_mapping="default_qat_x86",
                                    weight_qscheme="per_channel_symmetric", observer_init="calibration",
                                    trace_mode="eval", freeze_last_epochs_fraction=1 / 3))

    def build(self, spec, model, ctx):
        budget = spec.budget(ctx.profile)
        if budget.epochs <= 0 or ctx.finetune is None:
            raise ValueError(f"method {spec.id!r} needs fine-tuning (profile {ctx.profile!r} budget: "
                             f"{budget.epochs} epochs) and a finetune callable in the context")
        return quant.quantize_qat_int8(model, ctx.example_inputs.detach().cpu(), ctx.calibration(), ctx.finetune,
                                       budget.epochs, budget.lr_scale, float(self.options["freeze_last_epochs_fraction"]),
                                       log=lambda m: ctx.say(f"[{spec.id}] {m}"))
