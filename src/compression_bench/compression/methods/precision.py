"""Half precision: ``bf16`` and ``fp16`` (opt-in), the model cast to bfloat16 or float16.

Each declares a :class:`~compression_bench.compression.float_request.FloatRequest`; its eager variant
is the cast model (weights and activations in the dtype, float32 input and logits), and every other
runtime lowers the same request with its own toolchain or reads ``n/a`` with the reason. Family
``precision``: the cast is the last step of a composition (``structured_50+bf16``), as quantization is.
No fine-tuning: a cast keeps the model's function up to rounding.
"""
from __future__ import annotations

from types import MappingProxyType

from ..float_request import FAMILY, FloatRequest, add_casts, cast
from ..specs import Method, register_method


class PrecisionMethod(Method):
    """A cast to the dtype of ``request``: :meth:`build` casts, :meth:`load` loads the state into
    the float architecture and casts it again (exact: the stored values are the dtype's)."""
    family = FAMILY
    default = False
    request = FloatRequest()

    def build(self, spec, model, ctx):
        ctx.say(f"[{spec.id}] {self.request.describe()}")
        return cast(model, self.request)

    def load(self, spec, blob, float_model, ctx):
        model = super().load(spec, blob, float_model, ctx)  # the state, copied into float32 tensors
        return add_casts(model.to(self.request.torch_dtype), self.request)


@register_method
class BF16(PrecisionMethod):
    kind, id, label, order, compression = "bf16", "bf16", "Precision (BF16)", 13.0, "BF16"
    request = FloatRequest(dtype="bfloat16")
    options = MappingProxyType(dict(dtype="bfloat16", cast="parameters and buffers", io="float32"))


@register_method
class FP16(PrecisionMethod):
    kind, id, label, order, compression = "fp16", "fp16", "Precision (FP16)", 13.5, "FP16"
    request = FloatRequest(dtype="float16")
    options = MappingProxyType(dict(dtype="float16", cast="parameters and buffers", io="float32"))
