"""Weight-only INT8: ``weight_only_int8`` (opt-in), the ``nn.Linear`` weights in INT8, activations float32.

It declares a :class:`~compression_bench.compression.weight_request.WeightOnlyRequest`; its eager variant
is torchao's ``Int8WeightOnlyConfig`` module (each Linear weight an ``Int8Tensor``: INT8 data and one
symmetric float32 scale per output channel, dequantized inside the matmul), and every other runtime
lowers the same request with its own toolchain or reads ``n/a`` with the reason. Family
``weight_only``: the quantization is the last step of a composition (``structured_50+weight_only_int8``),
as INT8 and half precision are. For memory-bound models (transformers: ViTTiny); on the zoo's CNNs it
quantizes the classifier (most of SimpleCNN_6x2's and EnhancedLeNet5's weights, almost none of
EfficientNetB0Custom's and ResNet50Custom's). No calibration, no fine-tuning.
"""
from __future__ import annotations

from types import MappingProxyType

from .. import serialize
from ..specs import Method, register_method
from ..weight_request import FAMILY, WeightOnlyRequest, dequantize, int8_weights, quantize, restore


@register_method
class WeightOnlyInt8(Method):
    """:meth:`build` quantizes the Linear weights with torchao; :meth:`export` stores the INT8 data and
    scales as plain tensors beside the float state; :meth:`load` loads the dequantized weights into the
    float architecture, quantizes the same layers again and puts the stored INT8 data and scales back
    (exact)."""
    kind, id, label, order, compression = ("weight_only", "weight_only_int8", "INT8 weight-only (Linear)", 12.5,
                                           "INT8 weights")
    family = FAMILY
    default = False
    request = WeightOnlyRequest()
    options = MappingProxyType(dict(library="torchao", config="Int8WeightOnlyConfig", granularity="PerRow",
                                    weight_dtype="int8", scheme="symmetric", modules=["Linear"],
                                    activations="float32"))

    def build(self, spec, model, ctx):
        ctx.say(f"[{spec.id}] {self.request.describe()}")
        return quantize(model, self.request)

    def export(self, spec, variant):
        weights = int8_weights(variant)
        state = variant.state_dict()
        for name in weights:
            del state[f"{name}.weight"]
        return {"state_dict": serialize.encode_state_dict(state), "architecture": serialize.architecture(variant),
                "int8_weights": {name: {"qdata": serialize.encode(q), "scale": serialize.encode(s)}
                                 for name, (q, s) in weights.items()}}

    def load(self, spec, blob, float_model, ctx):
        state = serialize.decode_state_dict(blob["state_dict"])
        weights = {name: (w["qdata"], w["scale"]) for name, w in blob["int8_weights"].items()}
        for name, (qdata, scale) in weights.items():
            state[f"{name}.weight"] = dequantize(qdata, scale)
        serialize.apply_architecture(float_model, blob["architecture"], state)
        float_model.load_state_dict(state, strict=True)
        return restore(float_model.cpu().eval(), weights)
