"""Cache keys cover what the figures depend on; fine-tuning runs on the training device.

* a library upgrade (torch, torchvision, torch-pruning, scikit-learn) changes the key of every
  entry that depends on it;
* a change of the training code retrains, a change of the compression code rebuilds variants, and a
  change of the measurement code re-measures cached variants without rebuilding them;
* fingerprints of code ignore comments and docstrings, not behaviour.
"""
from __future__ import annotations

import sys
import types

import pytest

from compression_bench import compression
from compression_bench import zoo
from compression_bench.benchmarks.variants import cached
from compression_bench.zoo import ArtifactCache
from compression_bench.zoo.cache import hash_parts
from compression_bench.zoo.keys import code_fingerprint

MODEL = "EnhancedLeNet5"


def _keys() -> tuple[str, str]:
    """(trained key, static INT8 variant key) for the smoke profile, as the code computes them now."""
    prof = zoo.get_profile("smoke")
    trained_key = hash_parts(zoo.cache_parts(MODEL, prof))
    fake = types.SimpleNamespace(key=trained_key, digest="d" * 20, profile=prof, finetune_limit=None)
    return trained_key, hash_parts(cached.variant_parts(fake, compression.get_method("static_int8")))


@pytest.mark.parametrize("package, retrains", [("torch", True), ("torchvision", True), ("scikit-learn", True),
                                               ("numpy", True), ("torch-pruning", False)])
def test_a_library_upgrade_changes_the_key_of_every_entry_that_depends_on_it(monkeypatch, package, retrains):
    trained, variant = _keys()
    real = zoo.keys.package_version
    monkeypatch.setattr(zoo.keys, "package_version", lambda name: "99.0" if name == package else real(name))
    trained2, variant2 = _keys()
    assert (trained2 != trained) == retrains
    assert variant2 != variant  # every variant depends on the library, directly or through its parent's data


def test_a_change_of_the_training_or_compression_code_changes_the_keys(monkeypatch):
    trained, variant = _keys()
    monkeypatch.setattr(zoo.trained, "training_code_fingerprint", lambda: "changed")
    assert _keys()[0] != trained
    monkeypatch.undo()
    monkeypatch.setattr(cached, "compression_code_fingerprint", lambda *_: "changed")
    now = _keys()
    assert now[0] == trained and now[1] != variant  # the model is not retrained; its variants are rebuilt


def _function(tmp_path, name: str, source: str):
    """``f`` defined in a module file of its own (inspect reads sources from files)."""
    import importlib.util
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


def test_code_fingerprints_ignore_prose_and_see_behaviour(tmp_path):
    a = _function(tmp_path, "a", 'def f(x):\n    """Doubles."""\n    return x * 2  # twice\n')
    b = _function(tmp_path, "b", '# a comment\ndef f(x):\n\n    """Twice x,\n    in other words."""\n    return x*2\n')
    c = _function(tmp_path, "c", 'def f(x):\n    return x * 3\n')
    assert code_fingerprint(a) == code_fingerprint(b) != code_fingerprint(c)
    assert code_fingerprint(zoo.training) != code_fingerprint(zoo.data)


BUILDER = """
import torch.nn as nn
{helpers}

def f():
    return nn.Sequential(*block(1, 8), nn.Flatten(), nn.LazyLinear(10))
"""


def _architecture_key(folder, helpers: str) -> str:
    """The fingerprint of a builder in module ``tiny`` of its own folder (same module name each time)."""
    folder.mkdir()
    builder = _function(folder, "tiny", BUILDER.format(helpers=helpers))
    return zoo.ModelInfo(name="Tiny", builder=builder, input_shape=(1, 8, 8), num_classes=10,
                         full_dataset="digits", description="a test model").fingerprint


def test_editing_a_helper_the_builder_calls_changes_the_models_key(tmp_path, monkeypatch):
    """The key of a trained model covers the helpers its builder calls, in its module or another, so
    an edited helper retrains instead of reusing stale weights (or failing on a shape change)."""
    helper = "def block(c_in, c_out):\n    return [nn.Conv2d(c_in, c_out, 3), nn.ReLU()]\n"
    base = _architecture_key(tmp_path / "1", helper)
    assert _architecture_key(tmp_path / "2", "# a comment\n" + helper) == base  # prose is not behaviour
    assert _architecture_key(tmp_path / "3", helper.replace("nn.ReLU()", "nn.GELU()")) != base
    assert _architecture_key(tmp_path / "4", helper.replace(", 3)", ", 5)")) != base
    # the helper in a module of its own (same name, two versions), imported by the builder's module
    keys = []
    for version, text in enumerate([helper, helper.replace("nn.ReLU()", "nn.GELU()"), "# moved\n" + helper]):
        lib = tmp_path / f"lib{version}"
        lib.mkdir()
        (lib / "blocks.py").write_text("import torch.nn as nn\n" + text)
        monkeypatch.syspath_prepend(str(lib))
        monkeypatch.delitem(sys.modules, "blocks", raising=False)
        keys.append(_architecture_key(tmp_path / f"b{version}", "from blocks import block"))
    assert keys[0] != keys[1] and keys[0] == keys[2]


def test_new_measurement_code_re_measures_without_rebuilding(tmp_path, monkeypatch):
    cache = ArtifactCache(tmp_path)
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    first = cached.get_variant(tm, "dynamic_int8", cache)
    assert not first.from_cache and first.measured
    again = cached.get_variant(tm, "dynamic_int8", cache)
    assert again.from_cache and not again.measured and again.metrics == first.metrics
    monkeypatch.setattr(cached, "measure_code_fingerprint", lambda: "a fixed metric")
    fresh = cached.get_variant(tm, "dynamic_int8", cache)
    assert fresh.from_cache and fresh.measured  # variant loaded, metrics measured again
    kinds = [line.split("\t")[2].split("/")[0] for line in (tmp_path / "builds.log").read_text().splitlines()]
    assert kinds == ["trained", "variants", "metrics", "metrics"]


def test_every_fine_tune_runs_on_the_training_device(smoke_cache_copy, monkeypatch):
    """QAT, unstructured and structured pruning all fine-tune on the session's training device. The
    device is recorded by a spy on the training loop and swapped for the CPU, so no GPU is needed."""
    cache = ArtifactCache(smoke_cache_copy)
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    assert tm.from_cache
    tm.device = "cuda:7"  # what --zoo-train-device cuda:7 gives the trained model on a GPU machine
    seen, real = [], zoo.training._fit

    def spy(model, data, recipe, *, device="cpu", **kw):
        seen.append(str(device))
        return real(model, data, recipe, device="cpu", **kw)
    monkeypatch.setattr(zoo.training, "_fit", spy)
    # every pruned model scores far below the original on validation, so pruning always fine-tunes
    monkeypatch.setattr(zoo, "evaluate", lambda model, split, **kw: 100.0 if model is tm.model else 0.0)
    for method in ("qat_int8", "unstructured_30", "structured_30"):
        before = len(seen)
        v = cached.get_variant(tm, method, cache)
        assert not v.from_cache and seen[before:] == ["cuda:7"], (method, seen)
        assert all(p.device.type == "cpu" for p in v.model.parameters())  # back on the CPU for timing


@pytest.mark.parametrize("runtime, package", [("onnxruntime", "onnxruntime"), ("inductor", "torchao"),
                                              ("eager", "torch")])
def test_a_runtime_library_upgrade_measures_peak_memory_anew(monkeypatch, runtime, package):
    """The peak-memory entry of a variant depends on the runtime that runs it: its key holds that
    runtime's library versions, not torch's alone."""
    import torch
    from compression_bench.benchmarks.variants import memory as peakmem
    from compression_bench.benchmarks.runtimes import get_runtime

    seen = []

    class Cache:
        def get_or_build(self, kind, name, parts, build):
            seen.append(hash_parts(parts))
            return {"figures": {}}, True

    variant = types.SimpleNamespace(artifact=b"artifact", artifact_digest="d" * 20, model=None,
                                    trained=types.SimpleNamespace(name="M"), method=types.SimpleNamespace(id="m"))
    rt = get_runtime(runtime)
    peakmem.measure(variant, rt, torch.zeros(2, 1, 8, 8), 1, Cache())
    real = zoo.keys.package_version
    monkeypatch.setattr(zoo.keys, "package_version", lambda name: "99.0" if name == package else real(name))
    peakmem.measure(variant, rt, torch.zeros(2, 1, 8, 8), 1, Cache())
    assert seen[0] != seen[1]


def test_fine_tuning_stops_after_the_first_epoch_stop_when_accepts(smoke_cache_copy):
    """``stop_when`` is asked after every epoch but the last, with the model in eval mode; its first
    True ends training there."""
    import copy
    tm = zoo.get_trained(MODEL, "smoke", cache=ArtifactCache(smoke_cache_copy), progress=None)
    model = copy.deepcopy(tm.model)
    asked = []

    def stop_when(m):
        asked.append(m.training)
        return len(asked) == 2
    result = zoo.training.finetune(model, tm.data, tm.recipe, 4, 0.1, progress=None, stop_when=stop_when,
                                   precise_bn=True)
    assert len(result.history) == 2 and asked == [False, False] and not model.training
    never = zoo.training.finetune(copy.deepcopy(tm.model), tm.data, tm.recipe, 3, 0.1, progress=None,
                                  stop_when=lambda m: False)
    assert len(never.history) == 3


def test_training_runs_channels_last_and_hands_the_model_back_in_the_default_layout(smoke_cache_copy):
    """Every convolution sees channels-last inputs and weights while the model trains; afterwards its
    weights are laid out as before, so what the suite times and exports does not change layout."""
    import copy
    import torch
    tm = zoo.get_trained(MODEL, "smoke", cache=ArtifactCache(smoke_cache_copy), progress=None)
    model = copy.deepcopy(tm.model)
    seen = []

    def record(conv, args):
        if conv.training:
            seen.append(args[0].is_contiguous(memory_format=torch.channels_last)
                        and conv.weight.is_contiguous(memory_format=torch.channels_last))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [c.register_forward_pre_hook(record) for c in convs]
    zoo.training.finetune(model, tm.data, tm.recipe, 1, 0.1, progress=None)
    for h in hooks:
        h.remove()
    assert seen and all(seen)
    assert all(p.is_contiguous() for p in model.parameters())
    assert all(p.is_contiguous() for p in tm.model.parameters())  # the cached checkpoint as well


# ---------------------------------------------------------------- builders without a source of their own

LOOP = """
import torch.nn as nn

def make(width):
    return nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))

builders = {{}}
for width in (4, 8):
    builders[width] = (
        lambda w=width: {body})
"""


def _loop_builders(folder, body: str = "make(w)") -> dict:
    """The lambdas ``builders[4]`` and ``builders[8]`` of a module that makes them in a loop, as one
    registers architectures in a loop (the lambda's source is a fragment of the statement around it)."""
    import importlib.util
    folder.mkdir()
    path = folder / "loop.py"
    path.write_text(LOOP.format(body=body))
    spec = importlib.util.spec_from_file_location("loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.builders


def test_a_lambda_made_in_a_loop_has_a_stable_key_of_its_own(tmp_path):
    """A lambda's source is the statement around it, which does not parse alone: it is fingerprinted
    by its compiled code and its defaults, so two lambdas that differ only by a default differ."""
    from compression_bench.zoo.keys import closure_fingerprint
    one, again = _loop_builders(tmp_path / "1"), _loop_builders(tmp_path / "2")
    assert closure_fingerprint(one[4]) != closure_fingerprint(one[8])  # the default is what differs
    assert closure_fingerprint(one[4]) == closure_fingerprint(again[4])  # new objects, same code: same key
    changed = _loop_builders(tmp_path / "3", "nn.Sequential(make(w), nn.ReLU())")
    assert closure_fingerprint(changed[4]) != closure_fingerprint(one[4])


def test_a_partial_is_keyed_by_its_function_and_its_arguments(tmp_path):
    import functools
    from compression_bench.zoo.keys import closure_fingerprint
    helper = "def block(c_in, c_out):\n    return [nn.Conv2d(c_in, c_out, 3), nn.ReLU()]\n"
    folders = iter(tmp_path / str(i) for i in range(9))

    def make(helpers: str):
        folder = next(folders)
        folder.mkdir()
        return _function(folder, "tiny", BUILDER.format(helpers=helpers).replace("def f():", "def f(width):")
                         .replace("block(1, 8)", "block(1, width)"))
    f = make(helper)
    key = closure_fingerprint(functools.partial(f, 8))
    assert closure_fingerprint(functools.partial(f, 8)) == key  # another partial of the same: same key
    assert closure_fingerprint(functools.partial(make(helper), 8)) == key  # as in another process
    assert closure_fingerprint(functools.partial(f, 16)) != key
    assert closure_fingerprint(functools.partial(make(helper.replace("nn.ReLU()", "nn.GELU()")), 8)) != key


CALLABLE = """
import torch.nn as nn

class Builder:
    def __init__(self, width):
        self.width = width

    def __call__(self):
        return nn.Sequential(nn.Conv2d(1, self.width, 3), {act}, nn.Flatten(), nn.LazyLinear(10))
"""


def test_a_callable_object_is_keyed_by_its_class_and_its_state(tmp_path):
    import importlib.util
    from compression_bench.zoo.keys import closure_fingerprint

    def builder_class(folder, act: str = "nn.ReLU()"):
        folder.mkdir()
        (folder / "objects.py").write_text(CALLABLE.format(act=act))
        spec = importlib.util.spec_from_file_location("objects", folder / "objects.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.Builder
    cls = builder_class(tmp_path / "1")
    key = closure_fingerprint(cls(8))
    assert closure_fingerprint(cls(8)) == key == closure_fingerprint(builder_class(tmp_path / "2")(8))
    assert closure_fingerprint(cls(16)) != key
    assert closure_fingerprint(builder_class(tmp_path / "3", "nn.GELU()")(8)) != key


def test_a_function_without_a_source_file_is_keyed_by_its_code():
    """A function defined by exec (or in a notebook cell) has no source to read: its compiled code
    counts, not its name alone."""
    from compression_bench.zoo.keys import closure_fingerprint

    def defined(body: str):
        namespace = {"nn": __import__("torch").nn}
        exec(f"def build():\n    return {body}\n", namespace)
        return namespace["build"]
    key = closure_fingerprint(defined("nn.Sequential(nn.Flatten(), nn.LazyLinear(10))"))
    assert closure_fingerprint(defined("nn.Sequential(nn.Flatten(), nn.LazyLinear(10))")) == key
    assert closure_fingerprint(defined("nn.Sequential(nn.Flatten(), nn.LazyLinear(12))")) != key


def test_models_and_a_dataset_registered_through_lambdas_in_a_loop_get_trained_keys():
    """``register_model(...)(lambda b=base: zoo.build(b))`` in a loop (and a dataset loader given as a
    lambda or a partial): every model's trained key can be computed, and the two keys differ."""
    import functools
    names, datasets = [], ["LoopDigits", "PartialDigits"]
    zoo.register_dataset("LoopDigits", lambda input_shape, *, data_root, download, real=zoo.data.load_digits_data:
                         real(input_shape, data_root=data_root, download=download), description="digits, again")
    zoo.register_dataset("PartialDigits", functools.partial(zoo.data.load_digits_data), description="digits, again")
    try:
        for base, dataset in (("SimpleCNN_6x2", "LoopDigits"), ("EnhancedLeNet5", "PartialDigits")):
            zoo.register_model("F" + base, input_shape=(1, 28, 28), dataset=dataset,
                               description=f"{base}, registered in a loop")(lambda b=base: zoo.build(b))
            names.append("F" + base)
        prof = zoo.get_profile("smoke")
        keys = [hash_parts(zoo.trained.cache_parts(name, prof)) for name in names]
        assert keys[0] != keys[1]
        assert [hash_parts(zoo.trained.cache_parts(name, prof)) for name in names] == keys
        assert zoo.get_model_info(names[0]).fingerprint != zoo.get_model_info(names[1]).fingerprint
    finally:
        for name in names:
            zoo.unregister_model(name)
        for name in datasets:
            zoo.unregister_dataset(name)
