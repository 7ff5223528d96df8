"""The ``onnxruntime`` runtime (src/compression_bench/benchmarks/runtimes/onnxruntime.py) on small models with random weights
and random inputs: float export matches eager at any batch size, static INT8 is QDQ, smaller and
keeps the predictions, dynamic INT8 touches MatMul/Gemm only, QAT is refused, threads are set.

The models' heads are rescaled so that each class's logit has zero mean and unit spread on random
inputs (:func:`spread`): a random network otherwise predicts one class for nearly every input, and
an argmax comparison would pass whatever the quantized model computes.
"""
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from compression_bench import compression, zoo  # noqa: E402
from compression_bench.benchmarks.runtimes import Source, get_runtime  # noqa: E402

RT = get_runtime("onnxruntime")
FLOAT_ATOL = 1e-4        # max |ORT - eager| on logits of unit spread
MIN_AGREEMENT = 0.9      # static INT8 argmax vs float, on inputs from the calibration distribution
MIN_SIZE_RATIO = 2.5     # float bytes / static INT8 bytes


def _inputs(seed: int, n: int, shape=(1, 28, 28)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def spread(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """``model`` with its last Linear rescaled so each logit has mean 0 and std 1 over ``x``."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    y = model(x)
    mean, std = y.mean(0), y.std(0)
    head.weight.div_(std[:, None])
    head.bias.sub_(mean).div_(std)
    return model


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
    bn = model[1]  # non-trivial statistics, so folding BatchNorm into the conv is exercised
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    return spread(model.eval(), _inputs(1, 256))


def lenet() -> nn.Module:
    torch.manual_seed(0)
    return spread(zoo.build("EnhancedLeNet5").eval(), _inputs(1, 256))


def source(method_id: str, model: nn.Module, example: torch.Tensor, batches=()) -> Source:
    batches = list(batches)
    return Source(method=compression.get_method(method_id), float_model=model,
                  example=example, calibration=lambda: iter(batches))


def ops(artifact: bytes) -> set[str]:
    return {node.op_type for node in onnx.load_from_string(artifact).graph.node}


@pytest.fixture(scope="module")
def tiny():
    return tiny_net()


@pytest.fixture(scope="module")
def calibration():
    return [_inputs(100 + i, 64) for i in range(4)]


@pytest.fixture(scope="module")
def tiny_float(tiny):
    return RT.build(source("original", tiny, _inputs(2, 64)))


@pytest.fixture(scope="module")
def tiny_static(tiny, calibration):
    return RT.build(source("static_int8", tiny, _inputs(2, 64), calibration))


def _run(artifact: bytes, x: torch.Tensor) -> torch.Tensor:
    with RT.threads(1) as threads:
        return RT.load(artifact, threads)(x)


@pytest.mark.parametrize("which", ["tiny", "lenet"])
def test_float_artifact_matches_eager_at_any_batch_size(which, tiny, tiny_float):
    if which == "tiny":
        model, artifact = tiny, tiny_float
    else:  # traced on a batch of one: the batch dimension must stay dynamic all the same
        model = lenet()
        artifact = RT.build(source("original", model, _inputs(3, 1)))
    assert {"input"} == {i.name for i in onnx.load_from_string(artifact).graph.input}
    for batch in (64, 5, 1):
        x = _inputs(4, batch)
        with torch.no_grad():
            expected = model(x)
        got = _run(artifact, x)
        assert got.shape == expected.shape and got.dtype == torch.float32
        assert (got - expected).abs().max().item() <= FLOAT_ATOL


def test_static_int8_is_qdq_smaller_and_keeps_predictions(tiny, tiny_float, tiny_static):
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops(tiny_static)
    assert len(tiny_float) / len(tiny_static) >= MIN_SIZE_RATIO
    x = _inputs(5, 512)  # the distribution it was calibrated on, other samples
    with torch.no_grad():
        expected = tiny(x).argmax(1)
    # the precondition that makes agreement meaningful: no class holds more than a fifth of the inputs
    assert torch.bincount(expected, minlength=10).max().item() <= 0.2 * len(x)
    agreement = (_run(tiny_static, x).argmax(1) == expected).float().mean().item()
    assert agreement >= MIN_AGREEMENT, f"static INT8 agrees with float on {agreement:.1%} of inputs"


def test_static_int8_needs_calibration_batches(tiny):
    with pytest.raises(ValueError, match="calibration"):
        RT.build(source("static_int8", tiny, _inputs(2, 8)))


def test_dynamic_int8_quantizes_matmul_and_gemm_only():
    model = lenet()
    artifact = RT.build(source("dynamic_int8", model, _inputs(2, 64)))
    found = ops(artifact)
    assert found & {"MatMulInteger", "DynamicQuantizeLinear"}
    assert "ConvInteger" not in found and "Conv" in found  # convolutions stay float
    x = _inputs(6, 256)
    with torch.no_grad():
        expected = model(x).argmax(1)
    assert (_run(artifact, x).argmax(1) == expected).float().mean().item() >= MIN_AGREEMENT


def test_unsupported_refuses_qat_only():
    reason = RT.unsupported(compression.get_method("qat_int8"))
    assert isinstance(reason, str) and "QAT" in reason and "\n" not in reason
    for method_id in ("original", "static_int8", "dynamic_int8", "unstructured_50",
                      "structured_50+static_int8"):
        assert RT.unsupported(compression.get_method(method_id)) is None, method_id


def test_load_sets_threads_and_options(tiny_float):
    import onnxruntime as ort
    run = RT.load(tiny_float, 1)
    options = run.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert run.session.get_providers() == ["CPUExecutionProvider"]


def test_registration_and_versions():
    assert RT.name == "onnxruntime" and RT.batch_specific is False
    # the INT8 format follows the CPU's class, so an artifact built for another class is rebuilt
    assert set(RT.versions()) == {"onnxruntime", "onnx", "onnxscript", "int8_format"}
    assert RT.versions()["int8_format"] == RT.format()[0]
    assert all(v != "none" for v in RT.versions().values())


def test_an_int8_kind_it_has_no_recipe_for_reads_na_not_failed():
    """A quantization method added later (here a made-up weight-only kind) is ``n/a`` on ONNX
    Runtime with a reason, as on Inductor, instead of passing ``unsupported`` and then raising in
    ``build`` (which the session reports as a failed variant)."""
    new_kind = compression.MethodSpec(id="weightonly_int8", family="quantization", kind="weightonly",
                                      level=None, label="Weight-only INT8", compression="INT8 weights")
    reason = RT.unsupported(new_kind)
    assert reason and "weightonly" in reason
    assert RT.unsupported(compression.get_method("static_int8")) is None
    assert RT.unsupported(compression.get_method("dynamic_int8")) is None
    assert "QAT" in RT.unsupported(compression.get_method("qat_int8"))
    assert get_runtime("inductor").unsupported(new_kind)


def test_the_artifact_holds_no_path_of_the_installation(tiny_float):
    """The exporter's stack traces named every file of the call stack by its absolute path: the Size
    column changed with where the suite was installed (one byte per node for a path one character
    shorter), and the file carried the user's directories."""
    import sys
    model = onnx.load_from_string(tiny_float)
    keys = {p.key for n in model.graph.node for p in n.metadata_props}
    assert "pkg.torch.onnx.stack_trace" not in keys and "namespace" in keys  # the names and scopes stay
    assert sys.prefix.encode() not in tiny_float and b"site-packages" not in tiny_float
