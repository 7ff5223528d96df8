"""Tests of the `compression` library on a tiny, quickly trained conv net.

The data is synthetic but learnable (one random template per class plus
noise), so accuracy comparisons (QAT vs static INT8) mean something while the
whole file runs in seconds.  One `slow` test exercises torchvision's
EfficientNet-B0 (SE blocks, depthwise convs, SiLU, stochastic depth).
"""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from torch import nn

from compression_bench import compression as C
from compression_bench.compression import measure, quant
from compression_bench.compression.pruning import ROUND_TO

NUM_CLASSES = 10
IN_SHAPE = (1, 16, 16)


# ---------------------------------------------------------------- fixtures
class TinyNet(nn.Module):
    """conv-bn-relu x2, max-pool, flatten, a weight-heavy linear head."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 8 * 8, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(1234)
    templates = torch.randn(NUM_CLASSES, *IN_SHAPE, generator=g)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    x = templates[y] + 0.8 * torch.randn(n, *IN_SHAPE, generator=g)
    return x, y


def _train(model, x, y, epochs, lr, on_epoch_start=None, batches_per_epoch=None, bs=32):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(7)
    for epoch in range(epochs):
        model.train()
        if on_epoch_start is not None:
            on_epoch_start(model, epoch)
        perm = torch.randperm(len(y), generator=g)
        for i, start in enumerate(range(0, len(y), bs)):
            if batches_per_epoch is not None and i >= batches_per_epoch:
                break
            idx = perm[start:start + bs]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


BASE_LR = 0.02


class Recorder:
    """A real fine-tune callable (few batches per epoch) that records its calls."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.calls = []

    def __call__(self, model, epochs, lr_scale, on_epoch_start=None, recalibrate_bn=False, stop_when=None):
        self.calls.append((epochs, lr_scale, on_epoch_start is not None))
        self.recalibrate_bn = recalibrate_bn
        _train(model, self.x, self.y, epochs, BASE_LR * lr_scale, on_epoch_start, batches_per_epoch=8)


@pytest.fixture(scope="module")
def data():
    xtr, ytr = _data(512, seed=1)
    xva, yva = _data(256, seed=2)
    return xtr, ytr, xva, yva


@pytest.fixture(scope="module")
def trained(data):
    torch.manual_seed(0)
    xtr, ytr, _, _ = data
    model = TinyNet()
    _train(model, xtr, ytr, epochs=3, lr=BASE_LR)
    return model


def _ctx(data, finetune="record", log=None, profile="smoke"):
    xtr, ytr, xva, _ = data
    return C.CompressionContext(
        example_inputs=xva[:16],
        calibration=lambda: (xtr[i:i + 64] for i in range(0, 256, 64)),
        finetune=Recorder(xtr, ytr) if finetune == "record" else finetune,
        num_classes=NUM_CLASSES,
        profile=profile,
        log=log,
    )


@pytest.fixture(scope="module")
def variants(trained, data):
    """Every method's variant of the trained model, built once (lazily)."""
    built = {}

    def get(method_id):
        if method_id not in built:
            ctx = _ctx(data)
            built[method_id] = (C.compress(trained, method_id, ctx), ctx)
        return built[method_id][0]

    def ctx_of(method_id):
        get(method_id)
        return built[method_id][1]

    get.ctx = ctx_of
    return get


def _accuracy(model, x, y):
    with torch.inference_mode():
        return (model(x).argmax(1) == y).float().mean().item()


# ---------------------------------------------------------------- registry
def test_registry_order_labels_and_settings():
    ids = C.list_methods()
    assert ids == [
        "original", "dynamic_int8", "static_int8", "qat_int8",
        "unstructured_30", "unstructured_50", "unstructured_70",
        "structured_30", "structured_50", "structured_70", "structured_50+static_int8",
    ]
    assert C.get_method("original").compression == "N/A"
    assert C.get_method("static_int8").label == "Quantization (Static)"
    assert C.get_method("qat_int8").label == "Quantization (QAT)"
    assert C.get_method("unstructured_70").compression == "70%"
    assert C.get_method("structured_30").label == "Pruning (Structured)"
    assert C.get_method("structured_50").level == 0.5
    for mid in ids:
        spec = C.get_method(mid)
        assert spec.family in ("original", "quantization", "pruning", "pruning+quantization")
        for profile in C.PROFILES:
            settings = spec.settings(profile)
            assert json.loads(json.dumps(settings)) == settings
            assert settings["id"] == mid
    # fine-tuned methods: the budget is part of the settings
    for mid in ("qat_int8", "unstructured_50", "structured_50"):
        spec = C.get_method(mid)
        assert spec.budget("smoke").epochs >= 1
        assert spec.settings("smoke") != spec.settings("default")
    assert C.get_method("static_int8").budget("full").epochs == 0


def test_unknown_method_and_profile():
    with pytest.raises(C.UnknownMethodError) as err:
        C.get_method("nope")
    assert isinstance(err.value, ValueError)
    for mid in C.list_methods(include_optional=True):
        assert mid in str(err.value)
    assert "structured@" in str(err.value) or "<kind>@<fraction>" in str(err.value)
    with pytest.raises(ValueError, match="smoke"):
        C.get_method("structured_50").settings("huge")


# ---------------------------------------------------------------- every method
@pytest.mark.parametrize("method_id", C.list_methods())
def test_every_method_builds_runs_and_roundtrips(method_id, trained, variants, data, tmp_path):
    _, _, xva, _ = data
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    variant = variants(method_id)
    # the input model is not mutated
    after = trained.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not trained.training
    assert variant is not trained
    assert not variant.training

    with torch.inference_mode():
        out = variant(xva)
    assert out.shape == (len(xva), NUM_CLASSES)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()

    # export -> torch.save -> weights-only load -> load_variant gives identical predictions
    blob = C.export_variant(variant, method_id)
    path = tmp_path / "variant.pt"
    torch.save(blob, path)
    loaded = torch.load(path, weights_only=True)
    fresh = TinyNet()  # untrained float architecture
    again = C.load_variant(loaded, fresh, method_id, variants.ctx(method_id))
    with torch.inference_mode():
        assert torch.equal(variant(xva), again(xva))
    assert C.count_params(again) == C.count_params(variant)


def test_blob_is_plain_data(variants):
    def walk(v):
        if isinstance(v, torch.Tensor):
            assert not v.is_quantized and type(v) is torch.Tensor
        elif isinstance(v, dict):
            for k, x in v.items():
                assert isinstance(k, str)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        else:
            assert v is None or isinstance(v, (bool, int, float, str)), type(v)

    for mid in ("dynamic_int8", "static_int8", "structured_50"):
        walk(C.export_variant(variants(mid), mid))


def test_load_variant_rejects_other_method(variants, data):
    blob = C.export_variant(variants("static_int8"), "static_int8")
    with pytest.raises(ValueError, match="static_int8"):
        C.load_variant(blob, TinyNet(), "qat_int8", _ctx(data))
    with pytest.raises(ValueError):
        C.load_variant({"junk": 1}, TinyNet(), "static_int8", _ctx(data))


# ---------------------------------------------------------------- quantization
def test_int8_modules_are_really_quantized(variants):
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    dyn = variants("dynamic_int8")
    dyn_linears = [m for m in dyn.modules() if isinstance(m, nnqd.Linear)]
    assert len(dyn_linears) == 2
    assert all(m.weight().dtype == torch.qint8 for m in dyn_linears)

    for mid in ("static_int8", "qat_int8"):
        q = variants(mid)
        convs = [m for m in q.modules() if isinstance(m, nnq.Conv2d)]
        linears = [m for m in q.modules() if isinstance(m, nnq.Linear) and not isinstance(m, nnqd.Linear)]
        assert len(convs) == 2 and len(linears) == 2, mid
        for m in convs + linears:
            w = m.weight()
            assert w.dtype == torch.qint8
            assert w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        # BN folded away, no float conv/linear left
        assert not any(isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) for m in q.modules()), mid


def test_int8_sizes_and_param_counts(trained, variants):
    float_size = C.serialized_size_mib(trained)
    float_params = C.count_params(trained)
    folded_bn = sum(m.num_features for m in trained.modules() if isinstance(m, nn.BatchNorm2d))
    # each BN (2*C params) is folded into a bias-free conv, which gains a C-element bias
    assert C.count_params(variants("dynamic_int8")) == float_params
    for mid in ("dynamic_int8", "static_int8", "qat_int8"):
        q = variants(mid)
        assert C.serialized_size_mib(q) <= 0.3 * float_size, mid
        assert abs(C.zero_aware_size_mib(q) - C.serialized_size_mib(q)) < 0.02 * C.serialized_size_mib(q)
    for mid in ("static_int8", "qat_int8"):
        n = C.count_params(variants(mid))
        assert n > 0
        assert n == float_params - folded_bn, mid
    with pytest.raises(ValueError, match="float"):
        C.count_macs(variants("static_int8"), torch.zeros(1, *IN_SHAPE))


def test_int8_accuracy_close_to_float_and_qat_not_worse(trained, variants, data):
    _, _, xva, yva = data
    float_acc = _accuracy(trained, xva, yva)
    assert float_acc > 0.9, "the fixture model should have learned the synthetic task"
    static_acc = _accuracy(variants("static_int8"), xva, yva)
    qat_acc = _accuracy(variants("qat_int8"), xva, yva)
    assert static_acc >= float_acc - 0.05
    assert qat_acc >= static_acc - 0.01
    assert _accuracy(variants("dynamic_int8"), xva, yva) >= float_acc - 0.05


def test_qat_uses_finetune_with_freezing_hook(variants):
    variants("qat_int8")
    recorder = variants.ctx("qat_int8").finetune
    budget = C.get_method("qat_int8").budget("smoke")
    assert recorder.calls == [(budget.epochs, budget.lr_scale, True)]
    assert quant.qat_freeze_epoch(1, 1 / 3) == 0
    assert quant.qat_freeze_epoch(3, 1 / 3) == 2
    assert quant.qat_freeze_epoch(10, 1 / 3) == 7


# ---------------------------------------------------------------- pruning
def test_unstructured_sparsity_and_sizes(trained, variants):
    plain = C.serialized_size_mib(trained)
    zero_aware = []
    for level in (30, 50, 70):
        v = variants(f"unstructured_{level}")
        assert abs(C.sparsity(v) - level / 100) <= 0.01
        assert C.count_params(v) == C.count_params(trained)
        assert C.count_nonzero(v) < C.count_params(v)
        assert abs(C.serialized_size_mib(v) - plain) <= 0.05 * plain
        # masks were made permanent: no reparametrisation left
        assert not any(name.endswith("_orig") for name, _ in v.named_parameters())
        zero_aware.append(C.zero_aware_size_mib(v))
    assert zero_aware[0] < plain and zero_aware[0] > zero_aware[1] > zero_aware[2]
    assert abs(C.zero_aware_size_mib(trained) - plain) < 1e-9
    assert C.sparsity(trained) == 0.0


def test_structured_is_physically_smaller(trained, variants, data):
    _, _, xva, _ = data
    float_convs = [m.out_channels for m in trained.modules() if isinstance(m, nn.Conv2d)]
    params = [C.count_params(trained)]
    for level in (30, 50, 70):
        v = variants(f"structured_{level}")
        convs = [m.out_channels for m in v.modules() if isinstance(m, nn.Conv2d)]
        assert sum(convs) < sum(float_convs)
        for c, f in zip(convs, float_convs):
            if f < 2 * ROUND_TO:  # too narrow to keep a positive multiple of round_to: left whole
                assert c == f
            else:  # the nearest multiple of round_to to Torch-Pruning's floor(f * (1 - level))
                assert c <= f and c % ROUND_TO == 0 and abs(c - f * (1 - level / 100)) <= ROUND_TO / 2 + 1
        bns = [m for m in v.modules() if isinstance(m, nn.BatchNorm2d)]
        assert [b.num_features for b in bns] == convs
        head = [m for m in v.modules() if isinstance(m, nn.Linear)][-1]
        assert head.out_features == NUM_CLASSES
        params.append(C.count_params(v))
        assert C.count_macs(v, xva[:4]) < C.count_macs(trained, xva[:4])
    assert params[0] > params[1] > params[2] > params[3]
    # roughly (1 - ratio)^2 for a conv/linear stack
    assert params[2] < 0.4 * params[0]


def test_finetune_required_for_finetuned_methods(trained, data):
    ctx = _ctx(data, finetune=None)
    with pytest.raises(ValueError, match="finetune"):
        C.compress(trained, "structured_30", ctx)
    with pytest.raises(ValueError, match="finetune"):
        C.compress(trained, "qat_int8", ctx)
    # methods without fine-tuning do not need one
    assert C.compress(trained, "dynamic_int8", ctx) is not None


def test_unstructured_pruning_fine_tunes_only_when_the_validation_split_says_it_lost_accuracy(trained, data):
    """Fine-tuning is skipped when the pruned model scores within 0.5 pt of the original on the
    validation split, and runs its whole budget otherwise (the scores are handed in here)."""
    scores = {}

    def validate(model):
        return scores["original"] if model is trained else scores["pruned"]

    for pruned, expect_finetune in ((99.6, False), (97.0, True), (99.0, False), (98.9, True)):
        scores.update(original=99.5, pruned=pruned)
        ctx = _ctx(data, profile="default")
        ctx.validate = validate
        messages = []
        ctx.log = messages.append
        C.compress(trained, "unstructured_30", ctx)
        assert bool(ctx.finetune.calls) == expect_finetune, (pruned, messages)
        assert any(("skipped" in m) != expect_finetune for m in messages)
    # without a validate callable the budget always runs
    ctx = _ctx(data, profile="default")
    C.compress(trained, "unstructured_30", ctx)
    assert ctx.finetune.calls


def test_log_messages(trained, data):
    messages = []
    C.compress(trained, "unstructured_50", _ctx(data, log=messages.append))
    assert any("50%" in m for m in messages)


# ---------------------------------------------------------------- measurements
class MacNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def test_count_macs_and_density_weighting():
    net = MacNet().eval()
    x = torch.randn(8, 2, 5, 5)
    conv_macs = 4 * 5 * 5 * 2 * 9
    fc_macs = 100 * 3
    assert C.count_macs(net, x) == conv_macs + fc_macs  # per sample, batch divided out
    assert C.density_weighted_macs(net, x) == conv_macs + fc_macs
    with torch.no_grad():
        net.conv.weight.view(-1)[: net.conv.weight.numel() // 2] = 0
    assert C.density_weighted_macs(net, x) == conv_macs // 2 + fc_macs
    assert C.count_params(net) == 4 * 2 * 9 + 300 + 3
    assert C.count_nonzero(net) == 4 * 2 * 9 // 2 + 303
    assert math.isclose(C.sparsity(net), 36 / (72 + 300))
    assert net.conv.weight.requires_grad and not net.training


def test_serialized_size_follows_the_bytes_of_the_weights():
    """Size on disk is the tensors' bytes plus a small container overhead: four bytes per float32
    weight, two per float16, and a pruned (zeroed) weight still takes its bytes."""
    big = nn.Linear(1000, 1000)                       # 1,001,000 float32 values: 4,004,000 bytes
    size = C.serialized_size_mib(big) * 2**20
    assert 4_004_000 <= size <= 4_004_000 + 16_384
    assert C.serialized_size_mib(big.half()) * 2**20 == pytest.approx(size / 2, abs=16_384)
    with torch.no_grad():
        big.weight.zero_()
    assert C.serialized_size_mib(big) * 2**20 == pytest.approx(size / 2, abs=16_384)
    assert measure.count_params(MacNet()) == 4 * 2 * 3 * 3 + (4 * 5 * 5) * 3 + 3  # conv 2->4 3x3, no bias; linear 100->3


# ---------------------------------------------------------------- real architecture
@pytest.mark.slow
def test_efficientnet_b0_structured_static_and_qat():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.efficientnet_b0(num_classes=NUM_CLASSES).eval()
    x = torch.randn(8, 3, 32, 32)
    y = torch.randint(0, NUM_CLASSES, (8,))

    def finetune(m, epochs, lr_scale, on_epoch_start=None, recalibrate_bn=False):
        opt = torch.optim.SGD(m.parameters(), lr=1e-3 * lr_scale)
        for epoch in range(epochs):
            m.train()
            if on_epoch_start is not None:
                on_epoch_start(m, epoch)
            loss = nn.functional.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()

    ctx = C.CompressionContext(
        example_inputs=x, calibration=lambda: [x], finetune=finetune,
        num_classes=NUM_CLASSES, profile="smoke",
    )
    base_params = C.count_params(model)
    for mid in ("structured_50", "static_int8", "qat_int8"):
        v = C.compress(model, mid, ctx)
        with torch.inference_mode():
            out = v(x)
        assert out.shape == (8, NUM_CLASSES)
        blob = torch.load(_saved(C.export_variant(v, mid)), weights_only=True)
        again = C.load_variant(blob, torchvision.models.efficientnet_b0(num_classes=NUM_CLASSES), mid, ctx)
        with torch.inference_mode():
            assert torch.equal(again(x), out), mid
        if mid == "structured_50":
            assert C.count_params(v) < 0.35 * base_params
            assert v.classifier[-1].out_features == NUM_CLASSES
            # depthwise convs stay depthwise
            for m in v.modules():
                if isinstance(m, nn.Conv2d) and m.groups > 1:
                    assert m.groups == m.in_channels == m.out_channels
        else:
            assert C.serialized_size_mib(v) < 0.3 * C.serialized_size_mib(model)


def _saved(obj) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_unstructured_pruning_never_empties_a_layer_of_small_weights():
    # A layer whose weights are all small next to the others' would be removed entirely by a
    # global threshold on raw magnitudes (what broke EfficientNet-B0 at 70%); LAMP scores keep
    # every layer alive while the model as a whole still loses exactly the level asked for.
    from compression_bench.compression import pruning, sparsity
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        model[2].weight.mul_(1e-3)
    pruning.prune_unstructured(model, 0.7)
    pruning.make_permanent(model)
    assert abs(sparsity(model) - 0.7) < 0.01
    for layer in (model[0], model[2], model[4]):
        assert int((layer.weight != 0).sum()) > 0.05 * layer.weight.numel()


# ---------------------------------------------------------------- accuracy-aware INT8
class OutlierNet(nn.Module):
    """A trained TinyNet with two layers inserted before its last one that change nothing in float but
    break per-tensor INT8 activations: ``expand`` copies the 128 hidden features and adds one feature
    500 times their sum, ``head`` is the old last layer with a zero weight for that feature. The
    activation between them spans a range ~500x wider than the features that carry the prediction,
    so INT8 rounds those to a few levels."""

    def __init__(self, trained: TinyNet):
        super().__init__()
        import copy as _copy
        self.features = _copy.deepcopy(trained.features)
        self.hidden = nn.Sequential(*_copy.deepcopy(list(trained.classifier)[:3]))
        last = trained.classifier[-1]
        n = last.in_features
        self.expand = nn.Linear(n, n + 1)
        self.head = nn.Linear(n + 1, last.out_features)
        with torch.no_grad():
            self.expand.weight.copy_(torch.cat([torch.eye(n), 500 * torch.ones(1, n)]))
            self.expand.bias.zero_()
            self.head.weight.copy_(torch.cat([last.weight, torch.zeros(last.out_features, 1)], 1))
            self.head.bias.copy_(last.bias)

    def forward(self, x):
        return self.head(self.expand(self.hidden(self.features(x))))


def test_guarded_int8_keeps_the_layers_that_break_int8_in_float_until_within_the_bound(trained, data, tmp_path):
    xtr, ytr, xva, yva = data
    model = OutlierNet(trained).eval()
    with torch.inference_mode():  # the inserted layers change nothing in float
        assert torch.allclose(model(xva), trained(xva), atol=1e-3)
    float_acc = 100 * _accuracy(model, xva, yva)
    ctx = _ctx(data)
    ctx.validate = lambda m: 100 * _accuracy(m, xva, yva)
    plain = C.compress(model, "static_int8", ctx)
    plain_acc = 100 * _accuracy(plain, xva, yva)
    assert float_acc - plain_acc > 5, (float_acc, plain_acc)  # the model does break plain INT8
    messages = []
    ctx.log = messages.append
    guarded = C.compress(model, "static_int8_guarded", ctx)
    info = guarded.compression_info
    assert float_acc - 100 * _accuracy(guarded, xva, yva) <= 0.5, messages
    assert info["within"] and info["float_layers"] and set(info["float_layers"]) <= {"expand", "head"}
    assert info["ranking"][0][0] in ("expand", "head")  # the most sensitive layer is an outlier one
    # the rest is still INT8: the convolutions are quantized modules
    quantized = [n for n, m in guarded.named_modules()
                 if type(m).__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized"))]
    assert any(n.startswith("features") for n in quantized) and "hidden.1" in quantized, quantized
    assert not set(info["float_layers"]) & set(quantized)
    # export and reload: same layers in float, same predictions
    blob = C.export_variant(guarded, "static_int8_guarded")
    torch.save(blob, tmp_path / "g.pt")
    again = C.load_variant(torch.load(tmp_path / "g.pt", weights_only=True), OutlierNet(TinyNet()),
                           "static_int8_guarded", ctx)
    assert again.compression_info["float_layers"] == info["float_layers"]
    with torch.inference_mode():
        assert torch.equal(guarded(xva), again(xva))


def test_guarded_int8_keeps_nothing_in_float_where_plain_int8_is_within_the_bound(trained, data):
    xtr, ytr, xva, yva = data
    ctx = _ctx(data)
    ctx.validate = lambda m: 100 * _accuracy(m, xva, yva)
    guarded = C.compress(trained, "static_int8_guarded:max_drop=5", ctx)
    assert guarded.compression_info["float_layers"] == [] and guarded.compression_info["ranking"] == []
    with pytest.raises(C.UnknownMethodError, match="max_drop takes a number from 0 to 100"):
        C.get_method("static_int8_guarded:max_drop=lots")
    ctx.validate = None
    with pytest.raises(ValueError, match="validate"):
        C.compress(trained, "static_int8_guarded", ctx)


def _epoch_counter(epochs_run: list):
    """A fine-tune callable that only counts its epochs into ``epochs_run`` and asks ``stop_when`` as the
    real one does (after every epoch but the last)."""
    def finetune(model, epochs, lr_scale, on_epoch_start=None, recalibrate_bn=False, stop_when=None):
        for e in range(epochs):
            epochs_run.append(e)
            if e < epochs - 1 and stop_when is not None and stop_when(model):
                break
    return finetune


def _fine_tune_scored(trained, data, method: str, scores: list[float]) -> tuple[list, list[str]]:
    """Compress ``trained`` with ``method`` (default profile) where the original scores 99.5 on
    validation and the compressed model ``scores``, one after the other; returns the epochs the
    fine-tune ran and the build log."""
    epochs_run, messages, left = [], [], iter(scores)
    ctx = _ctx(data, finetune=_epoch_counter(epochs_run), profile="default", log=messages.append)
    ctx.validate = lambda m: 99.5 if m is trained else next(left)
    C.compress(trained, method, ctx)
    return epochs_run, messages


def test_structured_pruning_stops_fine_tuning_once_validation_has_recovered(trained, data):
    """The default budget is 6 epochs; the pruned model reaches 0.5 pt of the original's validation
    accuracy after the third, so fine-tuning stops there."""
    # the pruned model after each epoch
    epochs_run, messages = _fine_tune_scored(trained, data, "structured_30", [90.0, 97.0, 99.2, 99.5, 99.5])
    assert len(epochs_run) == 3, messages
    assert any("stopped after epoch 3 of 6" in m for m in messages)
    # without validate the whole budget runs
    epochs_run = []
    C.compress(trained, "structured_30", _ctx(data, finetune=_epoch_counter(epochs_run), profile="default"))
    assert len(epochs_run) == 6


def test_unstructured_pruning_that_fine_tunes_stops_once_validation_has_recovered(trained, data):
    """The default budget is 3 epochs; the pruned model lost 2 points, and is back within 0.5 pt of
    the original after the first epoch, so fine-tuning stops there."""
    # the pruned model before fine-tuning, then after each epoch
    epochs_run, messages = _fine_tune_scored(trained, data, "unstructured_50", [97.5, 99.2, 99.5])
    assert len(epochs_run) == 1, messages
    assert any("stopped after epoch 1 of 3" in m for m in messages)
