"""The method registry: any level (``kind@fraction``), compositions (``a+b``), opt-in methods.

Plain library calls on a tiny network with a real (short) fine-tune, no pytest plugin.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from compression_bench import compression as C

N_CLASSES = 4


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, N_CLASSES)).eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, N_CLASSES, (256,), generator=g)
    x = torch.randn(N_CLASSES, 1, 8, 8, generator=g)[y] + 0.5 * torch.randn(256, 1, 8, 8, generator=g)
    return x, y


def _ctx(data, calls=None):
    x, y = data

    def finetune(model, epochs, lr_scale, on_epoch_start=None, recalibrate_bn=False, stop_when=None):
        if calls is not None:
            calls.append(epochs)
        opt = torch.optim.SGD(model.parameters(), lr=0.01 * lr_scale)
        for epoch in range(epochs):
            model.train()
            if on_epoch_start:
                on_epoch_start(model, epoch)
            for i in range(0, 64, 32):
                loss = nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()

    def validate(model):
        with torch.inference_mode():
            return 100.0 * (model(x).argmax(1) == y).float().mean().item()

    return C.CompressionContext(example_inputs=x[:8], calibration=lambda: (x[i:i + 32] for i in range(0, 128, 32)),
                                finetune=finetune, num_classes=N_CLASSES, profile="smoke", validate=validate)


def _channels(model) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_structured_pruning_keeps_channel_counts_at_multiples_of_round_to_and_says_how_much_it_removed(data):
    from compression_bench.compression.pruning import channels_pruned
    base = _net()
    aligned = C.compress(base, "structured@0.6", _ctx(data))  # default round_to=8: 6.4 -> 8 of 16, 12.8 -> 16 of 32
    # out channels and features 16, 32, 64 and the classifier's outputs, kept whole: 8 + 16 + 24 of 16 + 32 + 64
    assert _channels(aligned) == [8, 16]
    assert channels_pruned(base, aligned) == pytest.approx(1 - (48 + N_CLASSES) / (112 + N_CLASSES))
    exact = C.compress(base, "structured@0.6:round_to=1", _ctx(data))
    assert _channels(exact) == [6, 12] and 0.55 < channels_pruned(base, exact) < 0.65  # int(16 * 0.4), int(32 * 0.4)
    spec = C.get_method("structured_50:round_to=16")
    assert spec.options["round_to"] == 16 and spec.compression == "50% (round_to=16)"
    assert spec.settings("default") != C.get_method("structured_50").settings("default")  # its own cache entry
    for bad, message in [("structured_50:round_to=0", "round_to takes an integer from 1 to 256"),
                         ("structured_50:speed=2", "'structured' has no option 'speed'"),
                         ("static_int8:round_to=8", "'static' has no option 'round_to'")]:
        with pytest.raises(C.UnknownMethodError, match=message):
            C.get_method(bad)


def test_any_level_is_a_method(data):
    spec = C.get_method("structured@0.6")
    assert (spec.id, spec.kind, spec.level, spec.compression) == ("structured@0.6", "structured", 0.6, "60%")
    assert spec.settings("smoke") != C.get_method("structured_50").settings("smoke")
    pruned = C.compress(_net(), "structured@0.6:round_to=1", _ctx(data))
    kept = [c / full for c, full in zip(_channels(pruned), (16, 32))]
    assert all(abs(k - 0.4) <= 1 / 16 for k in kept), kept  # 60% of the channels gone, to a channel
    sparse = C.compress(_net(), "unstructured@0.9", _ctx(data))
    assert C.sparsity(sparse) == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("bad, message", [
    ("structured@1.5", "between 0 and 1"), ("structured@x", "between 0 and 1"),
    ("static_int8@0.5", "unknown compression method"), ("static_int8+structured_50", "must be the last step"),
    ("original+static_int8", "'original' cannot"), ("structured_30+structured_50", "repeats a kind"),
    ("structured_50+", "unknown compression method"), ("", "unknown compression method"),
])
def test_bad_ids_say_what_is_valid(bad, message):
    with pytest.raises(C.UnknownMethodError, match=message):
        C.get_method(bad)


def test_composition_prunes_fine_tunes_then_quantizes(data):
    spec = C.get_method("structured_50+static_int8")
    assert spec.quantized and spec.kinds == ("structured", "static")
    assert spec.label == "Pruning (Structured) + Quantization (Static)" and spec.compression == "50% + INT8"
    calls: list[int] = []
    ctx = _ctx(data, calls)
    out = C.compress(_net(), spec.id, ctx)
    assert calls == [C.get_method("structured_50").budget("smoke").epochs]  # the pruning step's fine-tune only
    import torch.ao.nn.quantized as nnq
    convs = [m for m in out.modules() if isinstance(m, nnq.Conv2d)]
    assert [m.out_channels for m in convs] == [8, 16]  # quantized, and pruned before
    # from a cached parent: only the last step runs
    parent = C.compress(_net(), "structured_50", _ctx(data))
    calls.clear()
    again = C.compress(_net(), spec.id, ctx, after=parent)
    assert calls == [] and [m.out_channels for m in again.modules() if isinstance(m, nnq.Conv2d)] == [8, 16]
    # export, reload on a fresh float model, identical output
    blob = C.export_variant(again, spec.id)
    loaded = C.load_variant(copy.deepcopy(blob), _net(), spec.id, ctx)
    x = data[0][:16]
    with torch.inference_mode():
        assert torch.equal(again(x), loaded(x))
    assert C.count_params(loaded) < C.count_params(C.compress(_net(), "static_int8", ctx))


@pytest.mark.parametrize("method_id", [m for m in C.list_methods(include_optional=True)
                                       if m not in C.list_methods()])
def test_every_opt_in_method_builds_and_reloads(method_id, data):
    ctx = _ctx(data)
    out = C.compress(_net(), method_id, ctx)
    blob = C.export_variant(out, method_id)
    loaded = C.load_variant(blob, _net(), method_id, ctx)
    x = data[0][:16]
    with torch.inference_mode():
        assert torch.equal(out(x), loaded(x))
    spec = C.get_method(method_id)
    if spec.family == "pruning" and spec.kind != "unstructured":
        assert C.count_params(out) < C.count_params(_net())


def test_gates_for_unregistered_levels_and_compositions_are_derived_and_registered_ids_keep_their_own():
    from compression_bench.benchmarks.gates.thresholds import Thresholds
    t = Thresholds({"methods": {"structured_50": {"max_accuracy_drop": 3.0, "max_size_ratio": 0.5},
                                "structured_70": {"max_accuracy_drop": 8.0, "max_size_ratio": 0.3},
                                "static_int8": {"max_accuracy_drop": 1.0, "max_size_ratio": 0.3, "min_speedup": 1.5}},
                    "models": {"M": {"methods": {"structured_50": {"min_speedup": 2.0}}}}})
    # between two registered levels: the harsher one's accuracy allowance, the milder one's size and speed
    assert t.gates("M", "structured@0.6", "default") == {"max_accuracy_drop": 8.0, "max_size_ratio": 0.5,
                                                        "min_speedup": 2.0}
    assert t.gates("N", "structured@0.9", "default") == {"max_size_ratio": 0.3}  # above all: no accuracy gate
    assert t.gates("N", "structured@0.2", "default") == {"max_accuracy_drop": 3.0}  # below all: no size, speed
    # a registered id never borrows another level's gates (M's structured_50 speed gate is not structured_30's)
    assert t.gates("M", "structured_30", "default") == {}
    combined = t.gates("M", "structured_50+static_int8", "default")
    assert combined == {"max_accuracy_drop": 4.0, "max_size_ratio": pytest.approx(0.15), "min_speedup": 2.0}
