"""The ``inductor`` runtime (AOTInductor packages) on a tiny conv+linear model.

Each build compiles in a child process (about 20 s on two cores; QAT adds about 30 s of torchao's
Conv+BN folding in this process), so there are four: float and static INT8 once per module, a float
rebuild in the isolation test, and QAT.
"""
import time

import pytest
import torch
from torch import nn

pytest.importorskip("torchao")
pytestmark = pytest.mark.slow  # real compiles, about two minutes (tests/conftest.py: tiers)

from compression_bench.benchmarks.runtimes import Source, get_runtime  # noqa: E402
from compression_bench.benchmarks.runtimes import inductor  # noqa: E402
from compression_bench.compression import get_method  # noqa: E402

import torch._inductor.config as inductor_config  # noqa: E402

BATCH = 8
SHAPE = (3, 16, 16)
FLOAT_TOLERANCE = 1e-4  # absolute (measured: 3.4e-8 on logits up to 0.18)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def batches(n: int, seed: int, size: int = BATCH) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(size, *SHAPE, generator=gen) for _ in range(n)]


def source(method_id: str, model: nn.Module, **kw) -> Source:
    return Source(method=get_method(method_id), float_model=model, example=batches(1, 1)[0],
                  calibration=lambda: iter(batches(8, 2, size=32)), **kw)


def config_snapshot() -> dict:
    return inductor_config.get_config_copy()


@pytest.fixture(scope="module")
def runtime():
    return get_runtime("inductor")


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def float_artifact(runtime, model):
    before = config_snapshot()
    artifact = runtime.build(source("original", model))
    assert config_snapshot() == before
    return artifact


@pytest.fixture(scope="module")
def static_artifact(runtime, model, float_artifact):
    before = config_snapshot()
    artifact = runtime.build(source("static_int8", model))
    assert config_snapshot() == before
    return artifact


def test_float_matches_eager(runtime, model, float_artifact):
    with runtime.threads(1) as n:
        run = runtime.load(float_artifact, n)
        for x in batches(3, 3):
            with torch.inference_mode():
                expected = model(x)
            got = run(x)
            assert got.shape == expected.shape
            assert (got - expected).abs().max().item() <= FLOAT_TOLERANCE
        with pytest.raises(ValueError, match="compiled for input"):
            run(x[:-1])  # the compiled code itself would not check


def test_static_int8_agrees_with_float(runtime, model, static_artifact):
    agree = total = 0
    with runtime.threads(1) as n:
        run = runtime.load(static_artifact, n)
        for x in batches(8, 4):  # the calibration distribution
            with torch.inference_mode():
                expected = model(x)
            got = run(x)
            assert torch.isfinite(got).all() and got.shape == expected.shape
            agree += int((got.argmax(1) == expected.argmax(1)).sum())
            total += x.shape[0]
    assert agree / total >= 0.8, f"static INT8 agrees with float on {agree}/{total} inputs"


def test_load_does_not_compile(runtime, float_artifact, monkeypatch, tmp_path):
    def no_compile(*args, **kwargs):
        raise AssertionError("load() compiled")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", no_compile)
    monkeypatch.setattr(torch._inductor, "aot_compile", no_compile)
    monkeypatch.setattr("torch._inductor.cpp_builder.CppBuilder.build", no_compile)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    x = batches(1, 5)[0]
    outputs, seconds = [], []
    with runtime.threads(1) as n:
        for _ in range(2):
            t0 = time.perf_counter()
            run = runtime.load(float_artifact, n)
            seconds.append(time.perf_counter() - t0)
            outputs.append(run(x))
    assert torch.equal(outputs[0], outputs[1])
    assert not any((tmp_path / "cache").rglob("*")), "loading wrote to the Inductor cache"
    assert max(seconds) < 5.0, f"load took {seconds} s"


def test_builds_are_isolated(runtime, model, float_artifact, static_artifact):
    """A float artifact built after an INT8 one runs exactly like the one built before it (each
    compile runs in a fresh process); no build leaves ``torch._inductor.config`` changed."""
    before = config_snapshot()
    again = runtime.build(source("original", model))
    assert config_snapshot() == before
    x = batches(1, 7)[0]
    with runtime.threads(1) as n:
        first, second = (runtime.load(a, n)(x) for a in (float_artifact, again))
    assert torch.equal(first, second)


def exported_float_program(runtime, model, monkeypatch, tmp_path) -> tuple:
    """What a float build hands to its compile process (the child's only input), without compiling:
    its graph, signature and weights (the saved file itself holds ids that differ run to run)."""
    with monkeypatch.context() as patch:
        patch.setattr(inductor, "_compile_in_child", lambda folder, kind, log, *rest, **kw: folder / "program.pt2")
        path = tmp_path / "program.pt2"
        path.write_bytes(runtime.build(source("original", model)))
    program = torch.export.load(path)
    weights = {k: v.clone() for k, v in program.state_dict.items()}
    return program.graph_module.code, str(program.graph_signature), weights


def same_program(a: tuple, b: tuple) -> bool:
    return a[:2] == b[:2] and a[2].keys() == b[2].keys() and all(torch.equal(a[2][k], b[2][k]) for k in a[2])


def test_qat_in_process_leaves_no_trace(runtime, model, monkeypatch, tmp_path):
    """QAT quantizes and fine-tunes in this process (importing torchao's x86 quantizer): Inductor's
    config is restored, and a later float build hands its compile process the same program."""
    program_before = exported_float_program(runtime, model, monkeypatch, tmp_path)
    seen = []

    def finetune(m, epochs, lr_scale, on_epoch_start=None):
        opt = torch.optim.SGD(m.parameters(), lr=1e-3 * lr_scale)
        for epoch, x in enumerate(batches(epochs, 6, size=16)):
            on_epoch_start(m, epoch)
            m.train()
            nodes = list(m.graph.nodes)
            seen.append(([n.args[5:8] for n in nodes if n.target is torch.ops.aten.batch_norm.default],
                         [n.args[1:3] for n in nodes if n.target is torch.ops.aten.dropout.default]))
            loss = nn.functional.cross_entropy(m(x), torch.arange(x.shape[0]) % 10)
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()

    before = config_snapshot()
    qat = runtime.build(source("qat_int8", model, finetune=finetune, epochs=3, lr_scale=1.0))
    assert config_snapshot() == before
    assert same_program(exported_float_program(runtime, model, monkeypatch, tmp_path), program_before)

    # fine-tuning: BN in training mode with the modules' own momentum and eps, frozen (running
    # statistics) in the last third of the epochs; dropout in training mode with its own p
    bn_train = [(True, 0.01, 1e-3), (True, 0.1, 1e-5)]
    assert seen[0] == seen[1] == (bn_train, [(0.3, True)])
    assert seen[2] == ([(False, 0.01, 1e-3), (False, 0.1, 1e-5)], [(0.3, True)])

    x = batches(1, 7)[0]
    with runtime.threads(1) as n:
        out = runtime.load(qat, n)(x)
    with torch.inference_mode():
        expected = model(x)
    assert torch.isfinite(out).all() and out.shape == expected.shape


def test_qat_needs_finetune(runtime, model):
    with pytest.raises(ValueError, match="finetune"):
        runtime.build(source("qat_int8", model, epochs=1))
