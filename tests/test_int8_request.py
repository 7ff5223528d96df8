"""INT8 methods declare what they ask for (an Int8Request) and every runtime lowers it with its own
toolchain: a method defined here, and nowhere else, runs on the runtimes that can express it and
reads n/a on the others; layers an accuracy-aware method keeps in float stay float on ONNX Runtime
and OpenVINO too."""
from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from compression_bench.benchmarks.runtimes import Source, get_runtime
from compression_bench.compression import get_method
from compression_bench.compression.int8_request import Int8Request, int8_request
from compression_bench.compression.methods.int8 import Int8Method
from compression_bench.compression.specs import spec_for

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None


class PerTensorStatic(Int8Method):
    """A user's INT8 method: static INT8 with one scale per weight tensor. Its request is all it says."""
    kind, id, label = "per_tensor_static", "per_tensor_static_int8", "Quantization (Static, per tensor)"
    request = Int8Request(activations="static", weights="per_tensor")


PER_TENSOR = spec_for(PerTensorStatic())


class Net(nn.Module):
    """Conv, BatchNorm, ReLU, then two linear layers: a small model every runtime converts."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 10)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class Outlier(nn.Module):
    """``Net`` with two linear layers inserted before its last one that change nothing in float but
    break INT8 activations: ``expand`` copies the 32 features and adds one 500 times their sum,
    ``head`` gives that one a zero weight. The tensor between them spans a range ~500x that of the
    features that carry the prediction, so per-tensor INT8 rounds those to a few levels."""

    def __init__(self):
        super().__init__()
        base = Net()
        self.conv, self.bn, self.fc1 = base.conv, base.bn, base.fc1
        self.expand = nn.Linear(32, 33)
        self.head = nn.Linear(33, 10)
        with torch.no_grad():
            self.expand.weight.copy_(torch.cat([torch.eye(32), 500 * torch.ones(1, 32)]))
            self.expand.bias.zero_()
            self.head.weight.copy_(torch.cat([base.fc2.weight, torch.zeros(10, 1)], 1))
            self.head.bias.copy_(base.fc2.bias)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.head(self.expand(torch.relu(self.fc1(torch.flatten(x, 1)))))


def _batches():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(64, 1, 8, 8, generator=g) for _ in range(4)]


def _source(spec, model, keep_float=()):
    batches = _batches()
    return Source(method=spec, float_model=model.eval(), example=batches[0], calibration=lambda: iter(batches),
                  keep_float=tuple(keep_float))


def _agreement(run, model) -> float:
    """The share of 256 inputs on which ``run`` predicts the float model's class (batches of 64, the
    size an Inductor artifact is compiled for)."""
    with torch.inference_mode():
        out = torch.cat([torch.as_tensor(run(x)) for x in _batches()])
        return float((out.argmax(1) == model(torch.cat(_batches())).argmax(1)).float().mean())


def test_a_request_rejects_what_no_runtime_could_build():
    with pytest.raises(ValueError, match="activations='sometimes'"):
        Int8Request(activations="sometimes")
    with pytest.raises(ValueError, match="subset of conv, linear"):
        Int8Request(layers=("lstm",))
    with pytest.raises(ValueError, match="QAT learns fixed activation ranges"):
        Int8Request(activations="dynamic", training="qat")
    assert int8_request(get_method("original")) is None
    assert int8_request(get_method("structured_50+static_int8")) == Int8Request()
    assert int8_request(get_method("dynamic_int8")).layers == ("linear",)


def test_a_new_int8_method_is_its_request_eager_lowers_it_with_per_tensor_weights():
    model = Net().eval()
    batches = _batches()
    from compression_bench.compression import CompressionContext
    ctx = CompressionContext(example_inputs=batches[0], calibration=lambda: iter(batches), finetune=None, num_classes=10,
                             profile="smoke")
    q = PerTensorStatic().build(PER_TENSOR, model, ctx)
    schemes = {n: m.weight().qscheme() for n, m in q.named_modules() if hasattr(m, "weight") and callable(m.weight)}
    assert schemes and set(schemes.values()) <= {torch.per_tensor_affine, torch.per_tensor_symmetric}, schemes
    plain = get_method("static_int8").impl.build(get_method("static_int8"), model, ctx)
    assert {m.weight().qscheme() for m in plain.modules() if hasattr(m, "weight") and callable(m.weight)} == {
        torch.per_channel_affine}
    assert _agreement(q, model) > 0.9


def test_onnxruntime_lowers_a_new_request_and_inductor_says_why_it_cannot():
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import numpy_helper
    ort = get_runtime("onnxruntime")
    assert ort.unsupported(PER_TENSOR) is None
    model = Net().eval()

    def weight_scales(artifact: bytes) -> list[tuple[int, ...]]:
        graph = onnx.load_from_string(artifact).graph
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        return [inits[n.input[1]].shape for n in graph.node
                if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim > 1]

    per_tensor = ort.build(_source(PER_TENSOR, model))
    per_channel = ort.build(_source(get_method("static_int8"), model))
    assert weight_scales(per_tensor) and all(s == () for s in weight_scales(per_tensor))
    assert weight_scales(per_channel) and all(len(s) == 1 and s[0] > 1 for s in weight_scales(per_channel))
    with ort.threads(1) as n:
        assert _agreement(ort.load(per_tensor, n), model) > 0.9
    assert "per-channel weights only" in get_runtime("inductor").unsupported(PER_TENSOR)
    dynamic_conv = spec_for(type("DynConv", (Int8Method,), dict(
        kind="dyn_conv", id="dyn_conv", label="dynamic conv",
        request=Int8Request(activations="dynamic", layers=("conv", "linear"))))())
    assert "no dynamic INT8 convolution" in ort.unsupported(dynamic_conv)


def _kept_float_check(rt, tolerance: float) -> None:
    model = Outlier().eval()
    guarded = get_method("static_int8_guarded")
    assert rt.unsupported(guarded) is None
    with rt.threads(1) as n:
        plain = _agreement(rt.load(rt.build(_source(guarded, model)), n), model)
        kept = _agreement(rt.load(rt.build(_source(guarded, model, ["expand", "head"])), n), model)
    assert plain < 0.8, plain  # the outlier tensor breaks INT8 on this runtime too
    assert kept >= tolerance, (plain, kept)
    with pytest.raises(ValueError, match="not found.*nosuchlayer"):
        rt.build(_source(guarded, model, ["nosuchlayer"]))


def test_onnxruntime_keeps_the_layers_an_accuracy_aware_method_chose_in_float():
    pytest.importorskip("onnxruntime")
    _kept_float_check(get_runtime("onnxruntime"), 0.95)


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino and nncf are not installed (the [openvino] extra)")
def test_openvino_keeps_the_layers_an_accuracy_aware_method_chose_in_float():
    _kept_float_check(get_runtime("openvino"), 0.95)


@pytest.mark.slow  # two AOTInductor compiles, about a minute
def test_inductor_keeps_the_layers_an_accuracy_aware_method_chose_in_float():
    pytest.importorskip("torchao")
    _kept_float_check(get_runtime("inductor"), 0.95)
