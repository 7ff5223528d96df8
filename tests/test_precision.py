"""Half precision as compression methods (``bf16``, ``fp16``; src/compression_bench/compression/methods/precision.py):
each declares a FloatRequest that every runtime lowers with its own toolchain or reads ``n/a`` with the
reason; the cast model agrees with float on the smoke profile's images on every runtime that runs it,
its state is half the float32 bytes, it composes as the last step (``structured_50+bf16``), and the
machine says where BF16 and FP16 are native.

The model is the smoke profile's trained EnhancedLeNet5 (``smoke_cache``), judged on its validation and
test images (200): at least 99% of the predictions must equal the float model's.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from compression_bench import compression, zoo
from compression_bench.benchmarks.measurement import machine
from compression_bench.benchmarks.runtimes import Source, get_runtime
from compression_bench.compression import CompressionContext, UnknownMethodError
from compression_bench.compression.float_request import FloatRequest, as_float32, float_request

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None
MIN_AGREEMENT = 0.99    # argmax of the half-precision model vs float, on the smoke profile's images
MODEL = "EnhancedLeNet5"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.fixture(scope="module")
def trained(smoke_cache):
    return zoo.get_trained(MODEL, "smoke", cache=zoo.ArtifactCache(smoke_cache), progress=None)


@pytest.fixture(scope="module")
def images(trained):
    return torch.cat([x for split in (trained.data.val, trained.data.report) for x, _ in split.batches(256)])


def context(trained, finetune=None) -> CompressionContext:
    data = trained.data
    return CompressionContext(example_inputs=data.train.first_batch(2), calibration=lambda: iter(()),
                              finetune=finetune, num_classes=data.num_classes, profile="smoke")


@pytest.fixture(scope="module")
def variants(trained):
    return {m: compression.compress(trained.model, m, context(trained)) for m in ("original", "bf16", "fp16")}


def agreement(run, model, x: torch.Tensor) -> float:
    with torch.no_grad():
        want = model(x).argmax(1)
        got = torch.as_tensor(run(x)).argmax(1)
    return (got == want).float().mean().item()


def source(method: str, variant, example) -> Source:
    return Source(method=compression.get_method(method), float_model=variant, example=example,
                  calibration=lambda: iter(()))


def test_the_methods_declare_a_float_request_and_are_opt_in():
    for method, dtype in (("bf16", "bfloat16"), ("fp16", "float16")):
        spec = compression.get_method(method)
        assert spec.family == "precision" and not spec.quantized and spec.compression == method.upper()
        assert float_request(spec) == FloatRequest(dtype)
        assert method not in compression.list_methods() and method in compression.list_methods(include_optional=True)
    assert FloatRequest("bfloat16").describe() == "BF16 weights and activations (float32 input and logits)"
    assert FloatRequest("float16").to_dict() == {"dtype": "float16"}
    assert float_request(compression.get_method("static_int8")) is None
    assert float_request(compression.get_method("structured_50+bf16")) == FloatRequest("bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        FloatRequest("float8")


@pytest.mark.parametrize("method", ["bf16", "fp16"])
def test_eager_runs_the_cast_model_on_float32_input_and_agrees_with_float(method, trained, variants, images):
    model, original = variants[method], variants["original"]
    assert {p.dtype for p in model.parameters()} == {DTYPES[method]}
    assert {b.dtype for b in model.buffers() if b.is_floating_point()} == {DTYPES[method]}
    eager = get_runtime("eager")
    assert eager.unsupported(compression.get_method(method)) is None
    out = eager.prepare(model, images)(images)
    assert out.dtype == torch.float32  # logits in float32, as every row's
    assert agreement(eager.prepare(model, images), original, images) >= MIN_AGREEMENT
    assert not torch.equal(out, original(images))  # it really computes in the lower precision


@pytest.mark.parametrize("method", ["bf16", "fp16"])
def test_the_state_is_half_the_float32_bytes_and_reloads_as_it_was(method, trained, variants, images):
    model, original = variants[method], variants["original"]
    ratio = compression.serialized_size_mib(model) / compression.serialized_size_mib(original)
    assert 0.45 < ratio < 0.55, ratio
    assert compression.zero_aware_size_mib(model) < 0.55 * compression.zero_aware_size_mib(original)
    assert compression.count_params(model) == compression.count_params(original)
    assert compression.count_macs(model, images[:2]) == compression.count_macs(original, images[:2])
    blob = compression.export_variant(model, method)
    again = compression.load_variant(blob, zoo.build(MODEL), method, context(trained))
    assert {p.dtype for p in again.parameters()} == {DTYPES[method]}
    with torch.no_grad():
        assert torch.equal(again(images), model(images))


def test_as_float32_gives_the_cast_values_in_a_plain_float32_model(variants, images):
    model = variants["bf16"]
    plain = as_float32(model)
    assert {p.dtype for p in plain.parameters()} == {torch.float32}
    assert not plain._forward_pre_hooks and not plain._forward_hooks
    assert all(torch.equal(a.float(), b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    assert model._forward_pre_hooks  # the variant itself is left as it was


def test_onnxruntime_runs_fp16_and_reads_na_for_bf16(variants, images):
    ort = get_runtime("onnxruntime")
    reason = ort.unsupported(compression.get_method("bf16"))
    assert reason and "bfloat16" in reason
    assert ort.unsupported(compression.get_method("structured_50+bf16")) == reason
    assert ort.unsupported(compression.get_method("fp16")) is None
    with pytest.raises(ValueError, match="bfloat16"):
        ort.build(source("bf16", variants["bf16"], images[:2]))
    fp16 = ort.build(source("fp16", variants["fp16"], images[:2]))
    fp32 = ort.build(source("original", variants["original"], images[:2]))
    assert len(fp16) < 0.6 * len(fp32)
    import onnx
    graph = onnx.load_from_string(fp16).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in, float32 out
    assert {t.data_type for t in graph.initializer if t.dims and len(t.dims) > 1} == {onnx.TensorProto.FLOAT16}
    run = ort.load(fp16, 1)
    assert agreement(run, variants["original"], images) >= MIN_AGREEMENT
    assert agreement(run, variants["fp16"], images) >= MIN_AGREEMENT


@pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
@pytest.mark.parametrize("method, hint", [("bf16", "bf16"), ("fp16", "f16")])
def test_openvino_compiles_with_the_precision_hint_where_the_plugin_has_it(method, hint, variants, images):
    from compression_bench.benchmarks.runtimes import openvino as ov_runtime
    rt = get_runtime("openvino")
    spec = compression.get_method(method)
    if (ov_runtime.PRECISIONS[spec.impl.request.dtype][1] not in ov_runtime.cpu_capabilities()
            or not machine.identify()["half_precision"][ov_runtime.HALF_NAMES[spec.impl.request.dtype]]):
        assert "OPTIMIZATION_CAPABILITIES" in ov_runtime.__doc__ and rt.unsupported(spec)
        pytest.skip(f"this CPU's OpenVINO plugin has no {hint}: {rt.unsupported(spec)}")
    assert rt.unsupported(spec) is None
    artifact = rt.build(source(method, variants[method], images[:2]))
    float_ir = rt.build(source("original", variants["original"], images[:2]))
    with rt.threads(1) as n:
        run = rt.load(artifact, n)
    import openvino as ov
    assert run.compiled.get_property("INFERENCE_PRECISION_HINT") == {"bf16": ov.Type.bf16, "f16": ov.Type.f16}[hint]
    assert agreement(run, variants["original"], images) >= MIN_AGREEMENT
    if method == "fp16":  # weights stored in float16; the BF16 IR keeps float32 storage
        assert len(artifact) < 0.6 * len(float_ir)
    with rt.threads(1) as n:  # the float IR still runs in f32
        assert rt.load(float_ir, n).compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


@pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
def test_openvino_reads_na_with_the_reason_where_the_plugin_lacks_the_precision(monkeypatch):
    from compression_bench.benchmarks.runtimes import openvino as ov_runtime
    monkeypatch.setattr(ov_runtime, "cpu_capabilities", lambda: ("FP32", "INT8", "BIN", "EXPORT_IMPORT"))
    rt = get_runtime("openvino")
    for method, name in (("bf16", "BF16"), ("fp16", "FP16")):
        reason = rt.unsupported(compression.get_method(method))
        assert reason and f"no {name} inference" in reason and "FP32 INT8" in reason
    assert rt.unsupported(compression.get_method("original")) is None


@pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
def test_openvino_reads_na_under_an_isa_cap_that_leaves_the_precision_emulated(monkeypatch):
    # the AVX2 approximation (ONEDNN_MAX_CPU_ISA=AVX2) on a BF16 CPU: the plugin lists BF16 from CPUID, but
    # its capped oneDNN has no BF16 kernel and compiling with the hint fails ("getSupportedPrimitiveDescriptors")
    from compression_bench.benchmarks.runtimes import openvino as ov_runtime
    monkeypatch.setattr(ov_runtime, "cpu_capabilities", lambda: ("FP32", "BF16", "FP16", "INT8"))
    capped = {"approximated": ["ONEDNN_MAX_CPU_ISA=AVX2"], "capability_class": "x86-avx2",
              "half_precision": {"bf16": [], "fp16": []}}
    monkeypatch.setattr(ov_runtime.machine, "identify", lambda: capped)
    rt = get_runtime("openvino")
    for method, name in (("bf16", "BF16"), ("fp16", "FP16")):
        reason = rt.unsupported(compression.get_method(method))
        assert reason and f"{name} is capped off by ONEDNN_MAX_CPU_ISA=AVX2" in reason and "x86-avx2" in reason
    native = dict(capped, half_precision={"bf16": ["amx_bf16"], "fp16": []})  # a cap that leaves BF16 native
    monkeypatch.setattr(ov_runtime.machine, "identify", lambda: native)
    assert rt.unsupported(compression.get_method("bf16")) is None
    assert rt.unsupported(compression.get_method("fp16"))


@pytest.mark.slow  # two AOTInductor compiles, about a minute
@pytest.mark.parametrize("method", ["bf16", "fp16"])
def test_inductor_compiles_the_cast_model(method, variants, images):
    rt = get_runtime("inductor")
    assert rt.unsupported(compression.get_method(method)) is None
    example = images[:64]
    run = rt.load(rt.build(source(method, variants[method], example)), 1)
    with rt.threads(1):
        out = run(example)
    assert out.dtype == torch.float32
    assert agreement(run, variants["original"], example) >= MIN_AGREEMENT


def test_structured_50_then_bf16_prunes_fine_tunes_then_casts(trained, images):
    spec = compression.get_method("structured_50+bf16")
    assert [s.id for s in spec.steps] == ["structured_50", "bf16"] and float_request(spec).dtype == "bfloat16"
    assert not spec.quantized and spec.compression == "50% + BF16"
    tuned = []
    model = compression.compress(trained.model, spec.id, context(trained, lambda m, *a, **k: tuned.append(m)))
    assert tuned and {p.dtype for p in tuned[0].parameters()} == {torch.float32}  # fine-tuned before the cast
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert compression.count_params(model) < 0.6 * compression.count_params(trained.model)
    blob = compression.export_variant(model, spec.id)
    again = compression.load_variant(blob, zoo.build(MODEL), spec.id, context(trained))
    with torch.no_grad():
        assert torch.equal(again(images), model(images))


# a cast is a composition's last step, as quantization is (compose.LAST_STEP_ONLY)
@pytest.mark.parametrize("method", ["bf16+structured_50", "bf16+static_int8", "fp16+bf16"])
def test_a_cast_is_the_last_step_of_a_composition(method):
    with pytest.raises(UnknownMethodError, match="last step"):
        compression.get_method(method)


@pytest.mark.parametrize("arch, flags, bf16, fp16", [
    ("x86_64", {"avx2", "avx512f", "avx512bw", "avx512_vnni"}, [], []),                       # Ice Lake
    ("x86_64", {"avx512f", "avx512_bf16"}, ["avx512_bf16"], []),                              # Cooper Lake, Zen 4
    ("x86_64", {"avx512_bf16", "amx_bf16", "avx512_fp16"}, ["avx512_bf16", "amx_bf16"], ["avx512_fp16"]),  # SPR
    ("aarch64", {"asimd", "asimddp", "i8mm", "bf16", "asimdhp"}, ["bf16"], ["asimdhp"]),      # Graviton 3
    ("aarch64", {"asimd", "asimddp", "asimdhp"}, [], ["asimdhp"]),                            # Graviton 2
])
def test_the_machine_says_where_bf16_and_fp16_are_native(arch, flags, bf16, fp16):
    half = machine.half_precision(arch, flags)
    assert half == {"bf16": bf16, "fp16": fp16}
    info = {"arch": arch, "capability_class": machine.capability_class(arch, flags), "half_precision": half}
    note = machine.precision_note("bf16", info)
    if bf16:
        assert note is None
    else:
        assert "BF16 is emulated" in note and info["capability_class"] in note
        assert ("amx_bf16" if arch == "x86_64" else "bf16") in note


def test_this_machine_records_and_describes_its_half_precision():
    info = machine.identify()
    assert set(info["half_precision"]) == {"bf16", "fp16"}
    line = machine.describe(info)
    assert ("BF16 native" if info["half_precision"]["bf16"] else "BF16 emulated") in line
    if info["arch"].lower() in ("x86_64", "amd64") and not info["approximated"]:
        flags = set(open("/proc/cpuinfo").read().split()) if os.path.exists("/proc/cpuinfo") else set()
        assert bool(info["half_precision"]["bf16"]) == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.e2e  # the suite in a child process on the smoke profile, about a minute
def test_the_suite_runs_bf16_and_fp16_on_each_runtime_or_says_why_not(tmp_path):
    runtimes = "eager,onnxruntime" + (",openvino" if HAS_OPENVINO else "")
    report = tmp_path / "report"
    r = subprocess.run([sys.executable, "-P", "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
                        "--zoo-profile", "smoke", "--zoo-models", MODEL, "--compression-methods",
                        "original,bf16,fp16,structured_50+bf16", "--runtimes", runtimes, "--float-baselines", "none",
                        "--peak-memory", "off", "--benchmark-disable", "--report-dir", str(report)],
                       cwd=os.path.dirname(os.path.dirname(__file__)),
                       env=dict(os.environ, ZOO_CACHE=str(tmp_path / "cache")), capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {(x["runtime"], x["method"]): x for x in json.loads((report / "results.json").read_text())["results"]}
    for key in [("eager", "bf16"), ("eager", "fp16"), ("eager", "structured_50+bf16"), ("onnxruntime", "fp16")]:
        assert rows[key]["status"] is None, (key, rows[key])
    assert rows["onnxruntime", "bf16"]["status"].startswith("n/a: no bfloat16 kernels")
    assert 0.45 < rows["eager", "bf16"]["size_mib"] / rows["eager", "original"]["size_mib"] < 0.55
    assert abs(rows["eager", "bf16"]["accuracy"] - rows["eager", "original"]["accuracy"]) <= 1.0
