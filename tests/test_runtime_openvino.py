"""The ``openvino`` runtime (src/compression_bench/benchmarks/runtimes/openvino.py) on small models with
random weights: the float IR matches eager at any batch size, static INT8 by NNCF is smaller and keeps
the predictions, the other INT8 kinds read n/a with a reason, and importing it leaves the other
runtimes' outputs alone. Skipped where openvino and nncf are not installed (the ``openvino`` extra).

The head of each model is rescaled so that each class's logit has zero mean and unit spread on
random inputs: a random network otherwise predicts one class for nearly every input, and an argmax
comparison would pass whatever the quantized model computes.
"""
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from compression_bench import compression, zoo  # noqa: E402
from compression_bench.benchmarks.runtimes import Source, get_runtime  # noqa: E402

RT = get_runtime("openvino")
FLOAT_ATOL = 1e-4        # max |OpenVINO - eager| on logits of unit spread (float32 IR, CPU plugin)
MIN_AGREEMENT = 0.9      # static INT8 argmax vs float, on inputs from the calibration distribution
MIN_SIZE_RATIO = 2.5     # float IR bytes / static INT8 IR bytes


def _inputs(seed: int, n: int, shape=(1, 28, 28)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def spread(model: nn.Module, x: torch.Tensor) -> nn.Module:
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    y = model(x)
    mean, std = y.mean(0), y.std(0)
    head.weight.div_(std[:, None])
    head.bias.sub_(mean).div_(std)
    return model


def lenet() -> nn.Module:
    torch.manual_seed(0)
    return spread(zoo.build("EnhancedLeNet5").eval(), _inputs(1, 256))


def source(method_id: str, model: nn.Module, example: torch.Tensor, batches=()) -> Source:
    batches = list(batches)
    return Source(method=compression.get_method(method_id), float_model=model, example=example,
                  calibration=lambda: iter(batches))


def _run(artifact: bytes, x: torch.Tensor) -> torch.Tensor:
    with RT.threads(1) as threads:
        return RT.load(artifact, threads)(x)


@pytest.fixture(scope="module")
def model():
    return lenet()


@pytest.fixture(scope="module")
def float_ir(model):
    return RT.build(source("original", model, _inputs(2, 1)))  # converted on a batch of one


def test_float_ir_matches_eager_at_any_batch_size(model, float_ir):
    for n in (1, 7, 64):
        x = _inputs(10 + n, n)
        with torch.no_grad():
            want = model(x)
        got = _run(float_ir, x)
        assert got.shape == want.shape and torch.allclose(got, want, atol=FLOAT_ATOL), (got - want).abs().max()


def test_static_int8_is_smaller_and_keeps_the_predictions(model, float_ir):
    calibration = [_inputs(100 + i, 64) for i in range(4)]
    int8 = RT.build(source("static_int8", model, _inputs(2, 64), calibration))
    assert len(float_ir) / len(int8) > MIN_SIZE_RATIO
    x = _inputs(7, 256)
    with torch.no_grad():
        want = model(x).argmax(1)
    agreement = (_run(int8, x).argmax(1) == want).float().mean().item()
    assert agreement >= MIN_AGREEMENT, agreement


def test_other_int8_kinds_read_na_with_a_reason():
    assert RT.unsupported(compression.get_method("static_int8")) is None
    assert RT.unsupported(compression.get_method("original")) is None
    assert "dynamic" in RT.unsupported(compression.get_method("dynamic_int8"))
    assert "QAT" in RT.unsupported(compression.get_method("qat_int8"))


def test_using_it_leaves_the_other_runtimes_outputs_alone(model, float_ir):
    eager, ort = get_runtime("eager"), get_runtime("onnxruntime")
    threads = torch.get_num_threads()
    x = _inputs(5, 16)
    ort_artifact = ort.build(source("original", model, x))
    before = (eager.prepare(model, x)(x).clone(), ort.load(ort_artifact, 1)(x).clone())
    _run(float_ir, x)  # OpenVINO compiled and run in this process
    after = (eager.prepare(model, x)(x), ort.load(ort_artifact, 1)(x))
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert torch.get_num_threads() == threads  # OpenVINO's threads are its own: torch's are as they were
