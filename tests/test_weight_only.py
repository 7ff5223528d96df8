"""Weight-only INT8 as a compression method (``weight_only_int8``; src/compression_bench/compression/methods/weight_only.py):
it declares a WeightOnlyRequest that every runtime lowers with its own toolchain or reads ``n/a`` with the
reason; its eager variant holds each Linear weight in INT8 with one scale per output channel and leaves
everything else as it was, agrees with float on real images on every runtime that runs it (each with the
eager variant's own INT8 data), reloads exactly, stores under half a ViTTiny's float bytes, and composes as
the last step (``structured_50+weight_only_int8``).

The model is a ViTTiny (opt-in, every projection an ``nn.Linear``) trained for a few seconds on the smoke
profile's 200 training images, judged on its 200 validation and test images: at least 99% of the
predictions must equal the float model's.
"""
import importlib.util
import io
import zipfile

import pytest
import torch
from torch import nn

from compression_bench import compression, zoo
from compression_bench.benchmarks.runtimes import Source, get_runtime
from compression_bench.compression import CompressionContext, UnknownMethodError
from compression_bench.compression.weight_request import (WeightOnlyRequest, dequantized, int8_weights,
                                                          weight_only_request)
from compression_bench.zoo.training import torch_threads

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None
MIN_AGREEMENT = 0.99   # argmax of the weight-only model vs float, on the smoke profile's images
MODEL = "ViTTiny"
METHOD = "weight_only_int8"


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.fixture(scope="module")
def data():
    return zoo.get_data(MODEL, "smoke")


@pytest.fixture(scope="module")
def images(data):
    return torch.cat([x for split in (data.val, data.report) for x, _ in split.batches(256)])


@pytest.fixture(scope="module")
def trained(data):
    """ViTTiny after 300 AdamW steps of 32 of the smoke training images (about 10 s on one thread): it
    predicts every class and about 75% of the held-out images right, so agreement is measured against
    decision boundaries learnt from real data, not an untrained model's near-constant logits."""
    x = torch.cat([x for x, _ in data.train.batches(256)])
    y = torch.cat([y for _, y in data.train.batches(256)])
    torch.manual_seed(0)
    model = zoo.build(MODEL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    with torch_threads(1):
        model.train()
        for _ in range(300):
            i = torch.randint(0, len(x), (32,))
            loss = nn.functional.cross_entropy(model(x[i]), y[i])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def context(images, finetune=None) -> CompressionContext:
    return CompressionContext(example_inputs=images[:2], calibration=lambda: iter(()), finetune=finetune,
                              num_classes=10, profile="smoke")


@pytest.fixture(scope="module")
def variant(trained, images):
    return compression.compress(trained, METHOD, context(images))


def agreement(run, model, x: torch.Tensor) -> float:
    with torch.no_grad():
        want = model(x).argmax(1)
        got = torch.as_tensor(run(x)).argmax(1)
    return (got == want).float().mean().item()


def source(method: str, model, example) -> Source:
    """What a runtime builds a row from: for a weight-only method, its eager variant (a float method's
    base is its own variant, :func:`benchmarks.variants.runtime_variants.float_base_id`)."""
    return Source(method=compression.get_method(method), float_model=model, example=example,
                  calibration=lambda: iter(()))


def test_the_method_declares_a_weight_only_request_and_is_opt_in():
    spec = compression.get_method(METHOD)
    assert spec.family == "weight_only" and not spec.quantized and spec.compression == "INT8 weights"
    assert spec.label == "INT8 weight-only (Linear)"
    assert weight_only_request(spec) == WeightOnlyRequest(bits=8, layers=("linear",), granularity="per_channel",
                                                          symmetric=True)
    assert METHOD not in compression.list_methods() and METHOD in compression.list_methods(include_optional=True)
    orders = {m: compression.get_method(m).impl.order for m in ("qat_int8", "static_int8_guarded", "bf16", METHOD)}
    assert orders["qat_int8"] < orders[METHOD] and orders["static_int8_guarded"] < orders[METHOD] < orders["bf16"]
    assert WeightOnlyRequest().describe() == "INT8 weight-only, per-channel symmetric weights, linear (float32 activations)"
    assert WeightOnlyRequest().to_dict() == {"bits": 8, "layers": ["linear"], "granularity": "per_channel",
                                             "symmetric": True}
    assert weight_only_request(compression.get_method("static_int8")) is None
    assert weight_only_request(compression.get_method("bf16")) is None
    assert weight_only_request(compression.get_method(f"structured_50+{METHOD}")) == WeightOnlyRequest()
    for bad in (dict(bits=4), dict(layers=("conv",)), dict(layers=()), dict(granularity="per_tensor"),
                dict(symmetric=False)):
        with pytest.raises(ValueError, match="WeightOnlyRequest"):
            WeightOnlyRequest(**bad)


def test_the_model_is_trained_enough_for_agreement_to_mean_something(trained, data, images):
    labels = torch.cat([y for split in (data.val, data.report) for _, y in split.batches(256)])
    with torch.no_grad():
        predicted = trained(images).argmax(1)
    assert len(images) == 200
    assert predicted.unique().numel() >= 8
    assert (predicted == labels).float().mean().item() > 0.5


def test_the_linear_weights_are_int8_with_a_scale_per_output_channel_and_the_rest_is_untouched(trained, variant):
    linears = {name: m for name, m in trained.named_modules() if isinstance(m, nn.Linear)}
    weights = int8_weights(variant)
    assert set(weights) == set(linears) and len(weights) >= 17  # qkv, proj, fc1, fc2 of four blocks, the head
    for name, (qdata, scale) in weights.items():
        w = linears[name].weight.detach()
        assert qdata.dtype == torch.int8 and qdata.shape == w.shape
        assert scale.dtype == torch.float32 and scale.shape == (w.shape[0], 1)
        assert torch.allclose(scale.flatten(), w.abs().amax(1) / 127.5)  # symmetric, per output channel
        assert ((qdata.float() * scale - w).abs() <= scale / 2 + 1e-7).all()  # the nearest INT8 step
        assert variant.get_submodule(name).weight.dtype == torch.float32  # what the model computes in
    float_state, state = trained.state_dict(), variant.state_dict()
    assert float_state.keys() == state.keys()
    untouched = [k for k in float_state if k.removesuffix(".weight") not in linears]
    assert untouched and all(type(state[k]) is torch.Tensor and torch.equal(state[k], float_state[k])
                             for k in untouched)  # biases, norms, the position embedding, the convolutional stem
    assert type(trained.head.weight) is nn.Parameter  # the float model is left as it was


def test_eager_runs_the_torchao_module_and_agrees_with_float(trained, variant, images):
    eager = get_runtime("eager")
    assert eager.unsupported(compression.get_method(METHOD)) is None
    run = eager.prepare(variant, images)
    out = run(images)
    assert out.dtype == torch.float32
    assert agreement(run, trained, images) >= MIN_AGREEMENT
    with torch.no_grad():
        assert not torch.equal(out, trained(images))  # it really runs the INT8 weights
        assert torch.allclose(out, dequantized(variant)(images), atol=1e-4)


def test_export_and_load_are_exact(variant, images):
    blob = compression.export_variant(variant, METHOD)
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    buffer.seek(0)
    blob = torch.load(buffer, weights_only=True)  # plain data: no torchao class in the file
    stored = blob["int8_weights"]
    assert len(stored) == count(variant, nn.Linear)
    assert all(type(w["qdata"]) is torch.Tensor and w["qdata"].dtype == torch.int8 for w in stored.values())
    again = compression.load_variant(blob, zoo.build(MODEL), METHOD, context(images))
    before, after = int8_weights(variant), int8_weights(again)
    assert before.keys() == after.keys()
    for name in before:  # bit-identical INT8 data and scales
        assert torch.equal(before[name][0], after[name][0]) and torch.equal(before[name][1], after[name][1])
    float_before = {k: v for k, v in variant.state_dict().items() if type(v) is torch.Tensor}
    float_after = {k: v for k, v in again.state_dict().items() if type(v) is torch.Tensor}
    assert float_before.keys() == float_after.keys() and all(torch.equal(v, float_after[k])
                                                             for k, v in float_before.items())
    with torch.no_grad():
        assert torch.equal(again(images), variant(images))


def test_the_state_stores_the_linear_weights_in_int8(trained, variant, images):
    ratio = compression.serialized_size_mib(variant) / compression.serialized_size_mib(trained)
    assert 0.25 < ratio < 0.5, ratio  # the convolutional stem, norms, biases and position embedding stay float32
    assert compression.count_params(variant) == compression.count_params(trained)
    assert compression.count_macs(variant, images[:2]) == compression.count_macs(trained, images[:2])


def test_sparsity_and_the_zero_aware_size_count_the_int8_data(trained, variant):
    assert compression.count_nonzero(variant) == compression.count_nonzero(dequantized(variant))
    assert compression.sparsity(variant) == compression.sparsity(dequantized(variant))
    assert compression.zero_aware_size_mib(variant) < 0.5 * compression.zero_aware_size_mib(trained)


def test_onnxruntime_lowers_it_to_8_bit_matmul_nbits(trained, variant, images):
    import onnx
    ort = get_runtime("onnxruntime")
    assert ort.unsupported(compression.get_method(METHOD)) is None
    artifact = ort.build(source(METHOD, variant, images[:2]))
    float_onnx = ort.build(source("original", trained, images[:2]))
    graph = onnx.load_from_string(artifact).graph
    constant = {t.name for t in graph.initializer}
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == count(variant, nn.Linear)  # the head's Gemm too, rewritten as MatMul first
    assert all({a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}["bits"] == 8 for n in nbits)
    assert not [n for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in constant]
    assert [n.op_type for n in graph.node].count("Conv") == count(variant, nn.Conv2d)  # the stem stays float
    assert len(artifact) < 0.5 * len(float_onnx)
    nbits_weights = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    eager_int8 = sorted(q.flatten().tolist() for q, _ in int8_weights(variant).values())
    ort_int8 = sorted((nbits_weights[n.input[1]][:, 0, :onnx.helper.get_attribute_value(
        next(a for a in n.attribute if a.name == "K"))].astype(int) - 128).flatten().tolist() for n in nbits)
    assert ort_int8 == eager_int8  # the eager variant's own INT8 data, not ORT's rounding of its float weights
    run = ort.load(artifact, 1)
    assert agreement(run, trained, images) >= MIN_AGREEMENT
    assert agreement(run, variant, images) >= MIN_AGREEMENT
    with torch.no_grad():
        assert (torch.as_tensor(run(images)) - variant(images)).abs().max() < 1e-3


def test_onnxruntime_reads_na_without_an_8_bit_quantizer(monkeypatch):
    from compression_bench.benchmarks.runtimes import onnxruntime as ort_runtime
    monkeypatch.setattr(ort_runtime, "nbits_missing", lambda bits: f"no {bits}-bit MatMulNBits quantizer")
    rt = get_runtime("onnxruntime")
    assert rt.unsupported(compression.get_method(METHOD)) == "no 8-bit MatMulNBits quantizer"
    assert rt.unsupported(compression.get_method(f"structured_50+{METHOD}")) == "no 8-bit MatMulNBits quantizer"
    assert rt.unsupported(compression.get_method("original")) is None


def test_eager_and_inductor_read_na_without_torchao_int8_weights(monkeypatch):
    from compression_bench.benchmarks.runtimes import eager, inductor
    reason = "torchao's Int8WeightOnlyConfig with Int8Tensor weights is not installed"
    for module in (eager, inductor):
        monkeypatch.setattr(module, "torchao_missing", lambda: reason)
    for name in ("eager", "inductor"):
        assert get_runtime(name).unsupported(compression.get_method(METHOD)) == reason
        assert get_runtime(name).unsupported(compression.get_method("original")) is None


@pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
def test_openvino_compresses_the_matmul_weights_to_int8_sym(trained, variant, images):
    import openvino as ov

    from compression_bench.benchmarks.runtimes.openvino import _unpack
    rt = get_runtime("openvino")
    assert rt.unsupported(compression.get_method(METHOD)) is None
    artifact = rt.build(source(METHOD, variant, images[:2]))
    float_ir = rt.build(source("original", trained, images[:2]))
    model, config = _unpack(artifact)
    assert config == {"DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}  # the plugin would quantize the activations
    fed = []
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8:
            node = op
            while node.get_type_name() not in ("MatMul", "Convolution", "Result"):
                node = next(iter(node.output(0).get_target_inputs())).get_node()
            fed.append(node.get_type_name())
    assert fed == ["MatMul"] * count(variant, nn.Linear)  # not the stem's convolutions
    weights_bytes = [len(zipfile.ZipFile(io.BytesIO(a)).read("model.bin")) for a in (artifact, float_ir)]
    assert weights_bytes[0] < 0.5 * weights_bytes[1]  # the .bin; the .xml grows by the decompression ops
    with rt.threads(1) as n:
        run = rt.load(artifact, n)
    assert run.compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") == 0
    assert run.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert agreement(run, trained, images) >= MIN_AGREEMENT
    assert agreement(run, variant, images) >= MIN_AGREEMENT
    with torch.no_grad():  # the eager variant's INT8 weights, scales in float16: far below one INT8 step off
        assert (run(images) - variant(images)).abs().max() < 0.01


@pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
def test_openvino_points_dynamic_int8_to_the_weight_only_row():
    reason = get_runtime("openvino").unsupported(compression.get_method("dynamic_int8"))
    assert reason and reason.startswith("no dynamic INT8") and METHOD in reason


def test_inductor_accepts_it():
    assert get_runtime("inductor").unsupported(compression.get_method(METHOD)) is None
    assert get_runtime("inductor").unsupported(compression.get_method(f"structured_50+{METHOD}")) is None


@pytest.mark.slow  # two AOTInductor compiles, about a minute
def test_inductor_compiles_the_torchao_module_with_int8_weights(trained, variant, images):
    rt = get_runtime("inductor")
    example = images[:64]
    artifact = rt.build(source(METHOD, variant, example))
    float_package = rt.build(source("original", trained, example))
    # freezing off: with it the INT8 weights were folded into float32 constants, as big as the float model's
    assert len(artifact) < len(float_package) - 0.25 * compression.serialized_size_mib(trained) * 2**20
    run = rt.load(artifact, 1)
    with rt.threads(1):
        out = run(example)
    assert out.dtype == torch.float32
    assert agreement(run, trained, example) >= MIN_AGREEMENT
    with torch.no_grad():
        assert torch.allclose(out, variant(example), atol=1e-4)


def test_structured_50_then_weight_only_prunes_fine_tunes_then_quantizes(trained, images):
    spec = compression.get_method(f"structured_50+{METHOD}")
    assert [s.id for s in spec.steps] == ["structured_50", METHOD] and not spec.quantized
    assert spec.compression == "50% + INT8 weights"
    tuned = []
    model = compression.compress(trained, spec.id, context(images, lambda m, *a, **k: tuned.append(m)))
    assert tuned and not int8_weights(tuned[0])  # fine-tuned in float, before the quantization
    assert len(int8_weights(model)) == count(model, nn.Linear)
    assert compression.count_params(model) < 0.7 * compression.count_params(trained)
    blob = compression.export_variant(model, spec.id)
    again = compression.load_variant(blob, zoo.build(MODEL), spec.id, context(images))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(int8_weights(model).values(), int8_weights(again).values()))
    with torch.no_grad():
        assert torch.equal(again(images), model(images))


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_a_cnn_classifier_folded_with_its_batchnorm_keeps_the_eager_int8_data(runtime, smoke_cache):
    # EnhancedLeNet5: Linear(1600, 640) + BatchNorm1d, which the exporters fold into the weight (its INT8
    # data is the layer's, its scales times the BatchNorm's factor), and rows longer than MatMulNBits'
    # largest block (256: several blocks share the row's scale)
    if runtime == "openvino" and not HAS_OPENVINO:
        pytest.skip("the openvino extra is not installed")
    cnn = zoo.get_trained("EnhancedLeNet5", "smoke", cache=zoo.ArtifactCache(smoke_cache), progress=None)
    x = torch.cat([x for split in (cnn.data.val, cnn.data.report) for x, _ in split.batches(256)])
    model = compression.compress(cnn.model, METHOD, context(x))
    assert len(int8_weights(model)) == count(model, nn.Linear) == 3
    rt = get_runtime(runtime)
    with rt.threads(1) as n:
        run = rt.load(rt.build(source(METHOD, model, x[:2])), n)
    tolerance = {"onnxruntime": 1e-4, "openvino": 5e-3}[runtime]  # OpenVINO: float16 scales and products
    with torch.no_grad():
        assert (torch.as_tensor(run(x)) - model(x)).abs().max() < tolerance
    assert agreement(run, cnn.model, x) >= MIN_AGREEMENT


# weight-only INT8 is a composition's last step, as quantization and casts are (compose.LAST_STEP_ONLY)
@pytest.mark.parametrize("method", [f"{METHOD}+structured_50", f"{METHOD}+static_int8", f"{METHOD}+bf16",
                                    f"static_int8+{METHOD}", f"bf16+{METHOD}"])
def test_weight_only_is_the_last_step_of_a_composition(method):
    with pytest.raises(UnknownMethodError, match="last step"):
        compression.get_method(method)
