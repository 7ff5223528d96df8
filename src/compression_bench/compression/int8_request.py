"""What an INT8 method asks for, independent of any toolchain: an :class:`Int8Request`.

Every INT8 method declares one (``Method.request``). Each runtime *lowers* the request with its own
toolchain (eager: torch.ao FX in :mod:`compression_bench.compression.quant`; ONNX Runtime:
``onnxruntime.quantization``; OpenVINO: NNCF; Inductor: torchao PT2E) or says why it cannot (its row
then reads ``n/a: <reason>``). No runtime reads a method's id or kind: a new INT8 method that declares
a request runs on every runtime that can express it, with no edit anywhere else.

    request = Int8Request(activations="static", weights="per_tensor")
    request.describe()          # 'INT8 static activations, per-tensor weights, conv+linear'

Fields:

* ``activations``: ``static`` (ranges observed on calibration batches, fixed in the model) or
  ``dynamic`` (each batch's range found at run time);
* ``weights``: ``per_channel`` or ``per_tensor`` symmetric INT8 scales;
* ``layers``: the weight-carrying layer types quantized, ``conv`` and/or ``linear``;
* ``training``: ``none`` (post-training) or ``qat`` (fake-quantized fine-tuning, then conversion);
* ``keep_float``: ``none``, or ``sensitive``: layers chosen by the method on the validation split
  stay in float (accuracy-aware INT8); the chosen names reach the runtime with the build
  (``Source.keep_float``), and the runtime keeps exactly those layers in float or fails.
"""
from __future__ import annotations

from dataclasses import dataclass

ACTIVATIONS = ("static", "dynamic")
WEIGHTS = ("per_channel", "per_tensor")
LAYERS = ("conv", "linear")
TRAINING = ("none", "qat")
KEEP_FLOAT = ("none", "sensitive")


@dataclass(frozen=True)
class Int8Request:
    """An INT8 method's requirements (see the module docstring for each field's values)."""
    activations: str = "static"
    weights: str = "per_channel"
    layers: tuple[str, ...] = ("conv", "linear")
    training: str = "none"
    keep_float: str = "none"

    def __post_init__(self) -> None:
        for name, allowed in (("activations", ACTIVATIONS), ("weights", WEIGHTS), ("training", TRAINING),
                              ("keep_float", KEEP_FLOAT)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Int8Request {name}={getattr(self, name)!r}; valid: {', '.join(allowed)}")
        if not self.layers or any(t not in LAYERS for t in self.layers):
            raise ValueError(f"Int8Request layers={self.layers!r}; a non-empty subset of {', '.join(LAYERS)}")
        if self.training == "qat" and self.activations != "static":
            raise ValueError("Int8Request: QAT learns fixed activation ranges (activations='static')")

    @property
    def static(self) -> bool:
        return self.activations == "static"

    @property
    def per_channel(self) -> bool:
        return self.weights == "per_channel"

    @property
    def calibrated(self) -> bool:
        """Whether the build observes calibration batches (static ranges, QAT's initial ranges)."""
        return self.static

    def describe(self) -> str:
        """One line for logs and reasons: ``INT8 static activations, per-channel weights, conv+linear``."""
        text = (f"INT8 {self.activations} activations, {self.weights.replace('_', '-')} weights, "
                f"{'+'.join(self.layers)}")
        if self.training != "none":
            text += f", {self.training}"
        if self.keep_float != "none":
            text += f", {self.keep_float} layers kept float"
        return text

    def to_dict(self) -> dict:
        """Plain data (part of a runtime artifact's cache key)."""
        return {"activations": self.activations, "weights": self.weights, "layers": list(self.layers),
                "training": self.training, "keep_float": self.keep_float}


def int8_request(spec) -> Int8Request | None:
    """The request of a method spec's INT8 step (a composition's last step), or None for a float method."""
    return spec.declared_request(Int8Request, "INT8") if spec.quantized else None


def undeclared(spec) -> str | None:
    """Why no runtime but eager can run an INT8 method that declares no request (its own ``build``
    makes the eager module, and nothing says what the other toolchains should make), or None."""
    if not spec.quantized:
        return None
    last = spec.steps[-1] if spec.steps else spec
    if isinstance(getattr(last.impl, "request", None), Int8Request):
        return None
    return (f"INT8 method {last.id!r} (kind {last.kind!r}) declares no Int8Request, so only eager can run "
            f"it: subclass Int8Method and set `request`")
