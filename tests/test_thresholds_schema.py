"""The thresholds file's schema (src/compression_bench/benchmarks/gates/thresholds_schema.py): typed layers,
``false`` switching a gate off, and errors that name the file, the place (the TOML path) and the key.
The shipped file, the layer order and the derived gates: tests/test_benchmarks.py and tests/test_methods.py."""
from __future__ import annotations

import pytest

from compression_bench import compression, zoo
from compression_bench.benchmarks.gates.thresholds import Thresholds, ThresholdsError
from compression_bench.benchmarks.gates.thresholds_schema import Gates, Layer, Names, ThresholdsFile

MODELS, METHODS, PROFILES = zoo.list_models(include_optional=True), compression.list_methods(), zoo.PROFILES
RUNTIMES = ("eager", "inductor", "onnxruntime")


def _load(tmp_path, text: str) -> Thresholds:
    p = tmp_path / "t.toml"
    p.write_text(text)
    return Thresholds.load(p, models=MODELS, methods=METHODS, profiles=PROFILES, runtimes=RUNTIMES)


def _error(tmp_path, text: str) -> str:
    with pytest.raises(ThresholdsError) as err:
        _load(tmp_path, text)
    return str(err.value)


def test_the_file_parses_into_typed_layers(tmp_path):
    t = _load(tmp_path, """
        [defaults]
        max_accuracy_drop = 2
        [methods.static_int8]
        min_speedup = 1.5
        fail_if_slower = true
        [models.EnhancedLeNet5.methods.structured_50]
        unsupported = "too small to prune"
        [profiles.smoke.runtimes.onnxruntime.methods.static_int8]
        max_size_ratio = false
        [classes.x86-avx2.runtimes.inductor.defaults]
        min_speedup = false
    """)
    f = t.file
    assert isinstance(f, ThresholdsFile)
    assert f.base.defaults == Gates(max_accuracy_drop=2)
    assert f.base.methods == {"static_int8": Gates(min_speedup=1.5, fail_if_slower=True)}
    assert f.base.models["EnhancedLeNet5"]["structured_50"].unsupported == "too small to prune"
    assert f.base.runtimes == {}
    assert f.profiles["smoke"].runtimes["onnxruntime"].methods["static_int8"] == Gates(max_size_ratio=False)
    assert f.classes["x86-avx2"].runtimes["inductor"] == Layer(defaults=Gates(min_speedup=False))
    assert set(f.profiles) == {"smoke"} and set(f.classes) == {"x86-avx2"}
    # unset keys are None and not in as_dict; switched-off keys are False and are
    assert Gates(min_speedup=1.5, max_size_ratio=False).as_dict() == {"min_speedup": 1.5, "max_size_ratio": False}
    assert Gates().as_dict() == {}


def test_false_switches_a_gate_off_for_its_layer_and_those_below_until_a_later_layer_sets_it(tmp_path):
    t = _load(tmp_path, """
        [methods.static_int8]
        min_speedup = 1.5
        max_size_ratio = 0.3
        fail_if_slower = true
        [models.ResNet50Custom.methods.static_int8]
        unsupported = "no INT8 kernels for this model"
        [classes.arm64-neon.methods.static_int8]
        min_speedup = false
        fail_if_slower = false
        [profiles.smoke.methods.static_int8]
        max_size_ratio = false
        unsupported = false
        [profiles.smoke.runtimes.onnxruntime.methods.static_int8]
        min_speedup = 1.2
    """)
    full = {"min_speedup": 1.5, "max_size_ratio": 0.3, "fail_if_slower": True}
    assert t.gates("EnhancedLeNet5", "static_int8", "default") == full
    assert t.gates("EnhancedLeNet5", "static_int8", "default", cpu_class="arm64-neon") == {"max_size_ratio": 0.3}
    assert t.gates("EnhancedLeNet5", "static_int8", "smoke") == {"min_speedup": 1.5, "fail_if_slower": True}
    # the profile's runtime layer comes after the class's: it sets the floor again
    assert t.gates("EnhancedLeNet5", "static_int8", "smoke", "onnxruntime", "arm64-neon") == {"min_speedup": 1.2}
    assert t.unsupported("ResNet50Custom", "static_int8", "default") == "no INT8 kernels for this model"
    assert t.unsupported("ResNet50Custom", "static_int8", "smoke") is None  # switched off by the profile


@pytest.mark.parametrize("text, place, what", [
    # a wrong type, at every depth of the layout
    ("[defaults]\nmin_speedup = '2x'", "defaults.min_speedup", "expected a number, got str '2x'"),
    ("[profiles.smoke.runtimes.onnxruntime.models.EnhancedLeNet5.methods.static_int8]\nmin_speedup = true",
     "profiles.smoke.runtimes.onnxruntime.models.EnhancedLeNet5.methods.static_int8.min_speedup",
     "expected a number, got bool True"),
    ("[classes.x86-avx2.runtimes.inductor.methods.qat_int8]\nfail_if_slower = 'yes'",
     "classes.x86-avx2.runtimes.inductor.methods.qat_int8.fail_if_slower", "expected true or false, got 'yes'"),
    ("[runtimes.inductor.methods.static_int8]\nunsupported = ''", "runtimes.inductor.methods.static_int8.unsupported",
     "expected the reason as text, e.g. unsupported = \"FX cannot trace the model\""),
    ("[methods.static_int8]\nmax_size_ratio = 0", "methods.static_int8.max_size_ratio", "0 is out of range (0.0 to 1000.0)"),
    ("[methods.static_int8]\nmin_speedup = nan", "methods.static_int8.min_speedup", "nan is out of range (0.0 to 1000.0)"),
    ("[profiles.full]\ndefaults = 3", "profiles.full.defaults", "expected a table of thresholds"),
    # an unknown key
    ("[classes.x86-amx.defaults]\nmin_speed = 2", "classes.x86-amx.defaults.min_speed",
     "unknown threshold; valid keys are min_accuracy, max_accuracy_drop, min_speedup, max_latency_ratio, "
     "max_speedup, max_size_ratio, fail_if_slower, unsupported"),
    # an unknown layer or section, and one where it may not stand
    ("[runtimes.onnxruntime.runtimes.inductor.defaults]\nmin_speedup = 2", "runtimes.onnxruntime.runtimes",
     "unknown section; valid sections are defaults, methods, models, profiles, classes, runtimes"),
    ("[classes.x86-avx2.profiles.smoke.defaults]\nmin_speedup = 2", "classes.x86-avx2.profiles",
     "unknown section; valid sections are defaults, methods, models, profiles, classes, runtimes"),
    ("[profiles.smoke.gates]\nmin_speedup = 2", "profiles.smoke.gates",
     "unknown section; valid sections are defaults, methods, models, profiles, classes, runtimes"),
    ("[models.EnhancedLeNet5.defaults]\nmin_speedup = 2", "models.EnhancedLeNet5",
     "expected only a [..methods.<method>] table"),
    ("[classes.x86-avx2.runtimes.tensorrt.defaults]\nmin_speedup = 2", "classes.x86-avx2.runtimes.tensorrt",
     "unknown runtime; valid runtimes are eager, inductor, onnxruntime"),
    ("[profiles.smoke.models.VGG16.methods.original]\nmin_accuracy = 90", "profiles.smoke.models.VGG16",
     "unknown model; valid models are " + ", ".join(sorted(MODELS))),
    ("[runtimes.inductor.methods.int4]\nmax_size_ratio = 0.2", "runtimes.inductor.methods.int4",
     "unknown method; valid methods are " + ", ".join(sorted(METHODS)) + ", any <kind>@<level> and compositions a+b"),
    ("classes = 3", "classes",
     "expected a table of CPU capability classes, such as [classes.x86-avx2.methods.static_int8]"),
], ids=["type-defaults", "type-deep", "type-flag", "type-reason", "range-zero", "range-nan", "not-a-table",
        "unknown-key", "runtime-in-runtime", "profile-in-class", "unknown-section", "model-defaults",
        "unknown-runtime", "unknown-model", "unknown-method", "classes-not-a-table"])
def test_each_error_names_the_file_the_place_and_the_key(tmp_path, text, place, what):
    assert _error(tmp_path, text) == f"thresholds file {str(tmp_path / 't.toml')!r}: {place}: {what}."


def test_the_first_error_in_the_files_order_is_the_one_reported(tmp_path):
    assert ": methods.static_int8.max_size: unknown threshold" in _error(tmp_path, """
        [methods.static_int8]
        max_size = 0.3
        [methods.qat_int8]
        min_speedup = 'fast'
    """)
    # the file's own layers are checked before its profiles, the profiles before the classes
    assert ": models.VGG16: unknown model" in _error(tmp_path, """
        [classes.x86-avx3.defaults]
        min_speedup = 2
        [profiles.fast.defaults]
        min_speedup = 2
        [models.VGG16.methods.original]
        min_accuracy = 90
    """)
    assert ": profiles.fast: unknown profile" in _error(tmp_path, """
        [classes.x86-avx3.defaults]
        min_speedup = 2
        [profiles.fast.defaults]
        min_speedup = 2
    """)


def test_a_table_built_in_code_is_checked_for_structure_and_values_but_not_names():
    t = Thresholds({"models": {"M": {"methods": {"my_method": {"max_accuracy_drop": 0}}}},
                    "classes": {"riscv": {"runtimes": {"tvm": {"defaults": {"min_speedup": 1.1}}}}}})
    assert t.file.base.models["M"]["my_method"] == Gates(max_accuracy_drop=0)
    assert t.gates("M", "my_method", "default") == {"max_accuracy_drop": 0}
    assert t.gates("M", "my_method", "default", "tvm", "riscv") == {"max_accuracy_drop": 0, "min_speedup": 1.1}
    with pytest.raises(ThresholdsError, match=r"^thresholds file '<dict>': methods\.x\.max_speedup: expected a number"):
        Thresholds({"methods": {"x": {"max_speedup": "2"}}})
    with pytest.raises(ThresholdsError, match=r"^thresholds file 'mine': models\.M\.methods\.x\.speed: unknown threshold"):
        Thresholds({"models": {"M": {"methods": {"x": {"speed": 2}}}}}, "mine")
    # the names, checked when asked: validate() as load() does
    with pytest.raises(ThresholdsError, match=r"^thresholds file '<dict>': models\.M: unknown model"):
        t.validate(MODELS, METHODS, PROFILES)
    with pytest.raises(ThresholdsError, match=r": classes\.riscv: unknown capability class; valid classes are x86-amx"):
        ThresholdsFile.from_data({"classes": {"riscv": {}}}, "<dict>", Names.of(MODELS, METHODS, PROFILES))


def test_the_shipped_files_absolute_floors_are_per_zoo_model_and_a_users_file_may_set_them_for_all(tmp_path):
    """Issue #36: the shipped floors are tuned to the zoo's data, so each belongs to a model the file names;
    a model it does not name (a user's, on the user's data) gets only relative gates. A user's own file
    may set a floor for every model (its data, its models)."""
    shipped = Thresholds.load(None, models=[*MODELS, "OwnNet"], methods=METHODS, profiles=PROFILES)
    floors = {"SimpleCNN_6x2": 89.0, "EnhancedLeNet5": 88.0, "ResNet50Custom": 79.0, "EfficientNetB0Custom": 81.0}
    assert {m: shipped.gates(m, "original", "default") for m in floors} == {m: {"min_accuracy": f}
                                                                             for m, f in floors.items()}
    digits = {"SimpleCNN_6x2": 97.0, "EnhancedLeNet5": 97.0, "ResNet50Custom": 97.0, "EfficientNetB0Custom": 95.0}
    assert {m: shipped.gates(m, "original", "quick") for m in digits} == {m: {"min_accuracy": f}
                                                                           for m, f in digits.items()}
    assert "min_accuracy" not in shipped.gates("OwnNet", "original", "quick")
    for cpu_class in (None, "x86-avx2", "x86-avx512-vnni"):
        for runtime in (*RUNTIMES, "openvino"):
            for method in ("original", "static_int8", "structured_50+static_int8"):
                assert "min_accuracy" not in shipped.gates("OwnNet", method, "default", runtime, cpu_class)
    assert shipped.gates("OwnNet", "static_int8", "default")["max_accuracy_drop"] == 1.0  # relative gates apply
    with pytest.raises(ThresholdsError, match=r"^thresholds file 'shipped.toml': methods.original.min_accuracy: an "
                                              r"absolute floor in the shipped file belongs to one model's data; write "
                                              r"it under \[models.<model>.methods.original\]"):
        Thresholds({"methods": {"original": {"min_accuracy": 97.0}}}, "shipped.toml", shipped=True)
    with pytest.raises(ThresholdsError, match=r"classes.x86-avx2.runtimes.eager.defaults.min_accuracy: an absolute"):
        Thresholds({"classes": {"x86-avx2": {"runtimes": {"eager": {"defaults": {"min_accuracy": 9}}}}}}, shipped=True)
    off = Thresholds({"profiles": {"smoke": {"defaults": {"min_accuracy": False}}},
                      "models": {"M": {"methods": {"original": {"min_accuracy": 90}}}}}, shipped=True)
    assert off.gates("M", "original", "default") == {"min_accuracy": 90} and off.gates("M", "original", "smoke") == {}
    mine = _load(tmp_path, "[methods.original]\nmin_accuracy = 80.0\n")
    assert mine.gates("OwnNet", "original", "default") == {"min_accuracy": 80.0}
