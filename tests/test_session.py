"""The plain session, the result schema and the measurement protocol, without pytest-benchmark, without
training and without subprocesses: records are made by hand."""
from __future__ import annotations

import ast
import csv
import functools
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from compression_bench.benchmarks.settings import options
from compression_bench.benchmarks.results import schema
from compression_bench.benchmarks.measurement import timing
from compression_bench.benchmarks.reporting import saved as saved_runs
from compression_bench.benchmarks.runtimes import get_runtime
from compression_bench.benchmarks.settings.config import Config
from compression_bench.benchmarks.results.schema import Record
from compression_bench.benchmarks.errors import SessionError
from compression_bench.benchmarks.reporting.session_end import finish
from compression_bench.benchmarks.session.session import Session

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODELS = "EnhancedLeNet5,SimpleCNN_6x2"
METHODS = "original,static_int8,structured_50"


def _config(tmp_path, thresholds: str | None = None, **values) -> Config:
    given = {"zoo_profile": "smoke", "zoo_cache": str(tmp_path / "cache"), "report_dir": str(tmp_path / "report"),
             "zoo_models": MODELS, "compression_methods": METHODS, **values}
    if thresholds is not None:
        (tmp_path / "t.toml").write_text(thresholds)
        given["thresholds"] = str(tmp_path / "t.toml")
    return Config.from_options(given)


def _session(tmp_path, thresholds: str | None = None, **values) -> Session:
    return Session(_config(tmp_path, thresholds, **values), say=lambda message: None)


def rec(model, method, *, acc=97.0, size=4.0, lat=None, ref=None, **kw) -> Record:
    return Record(model=model, method=method, label=method, compression="x", profile="smoke", dataset="digits",
                  batch_size=64, threads=1, accuracy=acc, original_accuracy=97.0, params=1_000_000, size_mib=size,
                  latency_median_ms=lat, reference_latency_median_ms=ref,
                  speedup=schema.speedup(ref, lat), **kw)


# ---------------------------------------------------------------- the session end

def test_finish_sorts_in_selection_order_and_derives_ratios(tmp_path):
    s = _session(tmp_path)
    for r in [rec("SimpleCNN_6x2", "structured_50", acc=96.0, size=2.0, lat=5.0),
              rec("EnhancedLeNet5", "static_int8", acc=96.5, size=1.0, lat=2.0, ref=8.0),
              rec("SimpleCNN_6x2", "original", lat=10.0),
              rec("EnhancedLeNet5", "original", lat=9.0)]:
        s.judge.add(r)
    out = finish(s)
    assert out.status == 0, out.lines
    assert [(r["model"], r["method"]) for r in out.records] == [
        ("EnhancedLeNet5", "original"), ("EnhancedLeNet5", "static_int8"),
        ("SimpleCNN_6x2", "original"), ("SimpleCNN_6x2", "structured_50")]
    lenet_int8, cnn_s50 = out.records[1], out.records[3]
    assert lenet_int8["speedup"] == 4.0  # paired: the reference timed in its own test, 8 / 2
    assert cnn_s50["speedup"] == 2.0     # not paired: the original's median over the variant's, 10 / 5
    assert lenet_int8["size_ratio"] == 0.25 and cnn_s50["size_ratio"] == 0.5
    assert lenet_int8["accuracy_delta"] == pytest.approx(-0.5) and cnn_s50["accuracy_delta"] == pytest.approx(-1.0)
    assert out.records[0]["speedup"] is None  # the original has no speedup
    text = "\n".join(line for line, _ in out.lines)
    assert "### EnhancedLeNet5 — digits validation split, profile smoke, latency at batch 64, 1 thread" in text
    assert text.index("### EnhancedLeNet5") < text.index("### SimpleCNN_6x2")


def _variant(name, method_id, metrics, accuracy=97.0, labels=None):
    report = SimpleNamespace(labels=torch.tensor(labels or []))
    trained = SimpleNamespace(name=name, accuracy=accuracy, seed=0, data=SimpleNamespace(name="digits", report=report))
    spec = SimpleNamespace(id=method_id, label=method_id, compression="INT8", family="quantization", level=None)
    return SimpleNamespace(trained=trained, method=spec, metrics=metrics)


def _metrics(acc, size):
    return {"accuracy": acc, "params": 10, "nonzero_params": 9, "sparsity": 0.1, "size_mib": size,
            "zero_aware_size_mib": size, "macs": 100, "density_weighted_macs": 90}


def test_a_record_is_built_from_the_variant_and_the_accepted_timing(tmp_path):
    s = _session(tmp_path)
    t = timing.Timing([0.002, 0.002, 0.003], [0.008, 0.008, 0.009], seconds=0.032, tails=[0.002, 0.002, 0.003])
    r = s.judge.record(_variant("EnhancedLeNet5", "static_int8", _metrics(96.0, 1.0)),
                       _variant("EnhancedLeNet5", "original", _metrics(97.0, 4.0)), batch_size=64, threads=1, timing=t)
    assert (r.latency_median_ms, r.reference_latency_median_ms) == (2.0, 8.0)
    # the speedup is the centre of the per-round ratios (4, 4, 3), not the ratio of the medians (8 / 2)
    assert r.speedup == pytest.approx((4 * 4 * 3) ** (1 / 3)) and r.speedup_method == timing.METHOD
    assert r.speedup_low < 3.0 and r.speedup_high > 4.0  # three rounds say little: wider than their range
    assert r.latency_low_ms == pytest.approx(2.0) and r.latency_high_ms == pytest.approx(3.0)
    assert (r.size_ratio, r.timing_seconds) == (0.25, 0.032)
    assert (r.latency_rounds, r.reference_latency_rounds, r.runtime, r.macs) == (3, 3, "eager", 100)
    assert r.accuracy == 96.0 and r.original_accuracy == 97.0 and r.gate_failures == [] and r.inconclusive == []
    untimed = s.judge.record(_variant("EnhancedLeNet5", "original", _metrics(97.0, 4.0)),
                             _variant("EnhancedLeNet5", "original", _metrics(97.0, 4.0)), batch_size=64, threads=1)
    assert untimed.latency_median_ms is None and untimed.speedup is None and untimed.speedup_low is None
    assert r.accuracy_low is None and r.delta_p_value is None  # no predictions recorded: no interval, no test
    # with every image's prediction: the interval and the paired test against the original on the same images
    labels = [i % 10 for i in range(100)]
    wrong = lambda k: [(y + 1) % 10 if i < k else y for i, y in enumerate(labels)]  # noqa: E731
    v = _variant("EnhancedLeNet5", "static_int8", dict(_metrics(90.0, 1.0), predictions=wrong(10)), labels=labels)
    o = _variant("EnhancedLeNet5", "original", dict(_metrics(100.0, 4.0), predictions=labels), labels=labels)
    r = s.judge.record(v, o, batch_size=64, threads=1, timing=t)
    assert r.accuracy_low < 90.0 < r.accuracy_high and r.delta_p_value == pytest.approx(2 / 2 ** 10)
    assert r.delta_significant and r.agreement == 90.0 and r.per_class_delta == {str(k): -10.0 for k in range(10)}
    assert r.latency_p90_ms == pytest.approx(2.8) and r.latency_p99_ms == pytest.approx(2.98)


def test_a_failed_gate_gives_exit_status_1(tmp_path):
    s = _session(tmp_path, "[profiles.smoke.methods.static_int8]\nmax_size_ratio = 0.01\n")
    s.judge.add(rec("EnhancedLeNet5", "original", lat=10.0))
    bad = s.judge.gate(rec("EnhancedLeNet5", "static_int8", size=1.0, lat=2.0, ref=8.0, size_ratio=0.25))
    assert len(bad.gate_failures) == 1 and "at most 0.010x" in bad.gate_failures[0]
    s.judge.add(bad)
    out = finish(s)
    assert out.status == 1
    assert ("gates failed (each in its own test)", "section") in out.lines
    assert (bad.gate_failures[0], "red") in out.lines


def test_a_speed_gate_whose_interval_straddles_it_is_inconclusive_and_gives_exit_status_6(tmp_path):
    s = _session(tmp_path, "[profiles.smoke.methods.static_int8]\nmin_speedup = 4.2\n")
    r = s.judge.gate(rec("EnhancedLeNet5", "static_int8", size=1.0, lat=2.0, ref=8.0, speedup_low=3.8,
                         speedup_high=4.4))
    assert r.gate_failures == [] and len(r.inconclusive) == 1
    assert "95% interval 3.80-4.40x" in r.inconclusive[0] and "required at least 4.20x" in r.inconclusive[0]
    s.judge.add(rec("EnhancedLeNet5", "original", lat=10.0))
    s.judge.add(r)
    assert finish(s).status == 6
    # the same estimate with the whole interval below the floor is a failure
    below = s.judge.gate(rec("EnhancedLeNet5", "static_int8", size=1.0, lat=2.0, ref=8.0, speedup_low=3.9,
                             speedup_high=4.1))
    assert below.inconclusive == [] and "required at least 4.20x" in below.gate_failures[0]


def test_a_speed_variant_slower_than_what_it_replaces_is_flagged_with_its_cause_and_fails_only_where_set(tmp_path):
    s = _session(tmp_path, "[methods.structured_50]\nfail_if_slower = true\n",
                 compression_methods="original,static_int8,structured_50,structured_50+static_int8")
    s.judge.cpu_class = "x86-avx2"
    slow = dict(lat=10.0, ref=8.0, speedup_low=0.78, speedup_high=0.82)
    int8 = s.judge.gate(rec("EnhancedLeNet5", "static_int8", size=1.0, **slow))
    (flag,) = int8.flags
    assert "slower than its float original on eager: 0.80x (0.78-0.82)" in flag and "without VNNI" in flag
    assert int8.gate_failures == []  # INT8 on a CPU without VNNI: flagged, not failed
    pruned = s.judge.gate(rec("EnhancedLeNet5", "structured_50", size=1.0, **slow))
    assert pruned.flags and "fail_if_slower" in pruned.gate_failures[0]
    fine = s.judge.gate(rec("EnhancedLeNet5", "structured_50", size=1.0, lat=4.0, ref=8.0, speedup_low=1.9,
                            speedup_high=2.1))
    assert fine.flags == [] and fine.gate_failures == []
    noisy = s.judge.gate(rec("EnhancedLeNet5", "static_int8", size=1.0, lat=8.2, ref=8.0, speedup_low=0.95,
                             speedup_high=1.02))
    assert noisy.flags == []  # the interval reaches 1.0x: not shown to be slower
    masked = s.judge.gate(rec("EnhancedLeNet5", "unstructured_50", size=4.0, **slow))
    assert masked.flags == []  # masked weights run on dense kernels: not a method for speed
    # a composition slower than its pruned parent, timed earlier in the session
    s.judge.add(fine)
    comp = s.judge.gate(rec("EnhancedLeNet5", "structured_50+static_int8", size=1.0, lat=5.0, ref=8.0,
                            speedup_low=1.5, speedup_high=1.7))
    (flag,) = comp.flags
    assert "slower than its parent structured_50 on eager: 1.60x (1.50-1.70) against 2.00x" in flag
    s.judge.add(comp)
    lines = [text for text, _ in finish(s).lines]
    assert any(line.startswith("slower than what they replace") for line in lines)
    assert any(line.startswith("EnhancedLeNet5 / structured_50+static_int8: slower than its parent") for line in lines)


def test_an_unwritable_report_dir_gives_exit_status_7_and_names_each_file(tmp_path):
    config = _config(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    # the report directory became unusable after the start
    s = Session(replace(config, report_dir=tmp_path / "a-file" / "report"), say=lambda message: None)
    s.judge.add(rec("EnhancedLeNet5", "original", lat=10.0))
    out = finish(s)
    assert out.status == 7 and out.paths == {}
    for name in ("report.md", "results.json", "results.csv"):
        (line,) = [u for u in out.unwritten if f"/{name} " in u]
        assert line.startswith(f"could not write {s.config.report_dir / name}") and (line, "red") in out.lines
    assert any("| **original**" in line for line, _ in out.lines)  # the tables still print


def test_result_files_hold_the_schemas_fields(tmp_path):
    s = _session(tmp_path)
    s.judge.add(rec("EnhancedLeNet5", "original", lat=10.0))
    s.judge.add(rec("EnhancedLeNet5", "static_int8", size=1.0, lat=2.0, ref=8.0))
    out = finish(s)
    rows = list(csv.DictReader(out.paths["csv"].open()))
    assert list(rows[0]) == schema.FIELDS and "runtime" in schema.FIELDS
    assert rows[1]["speedup"] == "4.0" and rows[1]["runtime"] == "eager"
    results = json.loads(out.paths["json"].read_text())["results"]
    assert [list(r) for r in results] == [schema.FIELDS] * 2
    assert "original_accuracy" not in schema.FIELDS and "name" not in schema.FIELDS  # kept in memory only


# ---------------------------------------------------------------- the schema

def test_extra_info_comes_from_the_schema_and_leaves_latency_to_pytest_benchmark():
    r = rec("M", "static_int8", lat=2.0, ref=8.0, latency_rounds=10, name="test_variant[M-static_int8-bs64-t1]")
    info = r.extra_info()
    assert list(info) == list(schema.EXTRA_INFO)
    # pytest-benchmark saves the median and spread in its stats, but no p90, p99 or interval: those travel in extra_info
    assert not [k for k in info if k.startswith("latency") and k not in ("latency_p90_ms", "latency_p99_ms",
                                                                          "latency_low_ms", "latency_high_ms")]
    assert "latency_p99_ms" in info and "name" not in info
    assert {"speedup", "reference_latency_median_ms", "runtime", "original_accuracy"} <= set(info)
    # what is saved is enough to compare: the latency comes back from pytest-benchmark's stats
    saved = {"name": r.name, "extra_info": json.loads(json.dumps(info)), "stats": {"median": 0.002}}
    back = saved_runs.record_from_benchmark(saved, "run.json")
    assert back["latency_median_ms"] == 2.0 and back["speedup"] == 4.0 and back["name"] == r.name


def test_a_record_from_an_older_version_reads_with_defaults_for_newer_fields():
    old = {"model": "M", "method": "static_int8", "label": "Quantization (Static)", "accuracy": 96.5,
           "params": 10, "size_mib": 1.5, "speedup": 3.0, "batch_size": 64, "reference_spread": 0.05}
    r = Record.from_dict(old)  # a run saved before speedups had intervals: reads, with none
    assert (r.runtime, r.gate_failures, r.inconclusive, r.flags, r.threads) == ("eager", [], [], [], None)
    assert r.speedup_low is None and r.speedup_high is None
    assert r.speedup == 3.0 and "reference_spread" not in r.to_dict()
    assert Record.from_dict(r.to_dict()) == r
    with pytest.raises(schema.SchemaError, match="lacks accuracy"):
        Record.from_dict({k: v for k, v in old.items() if k != "accuracy"})


def test_required_and_numeric_sets_are_the_schemas():
    assert set(saved_runs.REQUIRED) == {"model", "method", "accuracy", "size_mib", "params"}
    assert set(saved_runs.NUMERIC) == {"accuracy", "size_mib", "params"}
    assert schema.speedup(8.0, 2.0) == 4.0 and schema.speedup(None, 2.0) is None and schema.speedup(8.0, 0) is None


# ---------------------------------------------------------------- options

def test_bad_options_are_session_errors_with_exit_status_4(tmp_path):
    with pytest.raises(SessionError, match="--latency-batch-size takes integers from 1 to 1024") as err:
        _session(tmp_path, latency_batch_size="0")
    assert err.value.code == 4
    with pytest.raises(SessionError, match="--compare-fail-accuracy needs a run to compare against"):
        _session(tmp_path, compare_fail_accuracy=0.5)


def test_method_names_outside_the_list_are_accepted_when_the_registry_takes_them():
    def check(name):
        if name != "structured@0.6":
            raise ValueError(f"method {name!r}: the level after '@' must be a fraction" if "@" in name else "unknown")
    assert options.names("original,structured@0.6", ["original"], "method", "--m", check) == ["original",
                                                                                                "structured@0.6"]
    with pytest.raises(options.OptionError, match=r"unknown method 'int4' in --m; valid methods are: original"):
        options.names("int4", ["original"], "method", "--m", check)
    with pytest.raises(options.OptionError, match=r"'structured@2' in --m \(method 'structured@2': the level"):
        options.names("structured@2", ["original"], "method", "--m", check)


# ---------------------------------------------------------------- measuring without pytest

def test_the_plain_measurement_returns_a_latency_and_a_speedup_for_two_modules():
    torch.manual_seed(0)
    small = nn.Linear(32, 4)
    big = nn.Sequential(nn.Linear(32, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 4))
    x = torch.randn(64, 32)
    rt = get_runtime("eager")
    with rt.threads(1):
        t = timing.measure(functools.partial(rt.prepare(small, x), x), functools.partial(rt.prepare(big, x), x),
                           warmup=1, target_s=0.1)
        alone = timing.measure(functools.partial(rt.prepare(small, x), x), warmup=1, target_s=0.05)
    assert t.median > 0 and t.reference_median > 0 and t.rounds >= timing.MIN_ROUNDS
    assert t.speedup_low <= t.speedup <= t.speedup_high and t.speedup > 1  # the small one is faster
    assert len(t.reference_samples) == t.rounds
    assert alone.speedup is None and alone.reference_samples == [] and alone.median > 0


def test_library_modules_do_not_import_pytest():
    for path in sorted(BENCHMARKS.glob("*.py")) + sorted(BENCHMARKS.glob("runtimes/*.py")):
        if path.name in ("conftest.py", "plugin.py", "suite.py") or path.name.startswith("test_"):
            continue  # the pytest layer
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & {"pytest", "pytest_benchmark", "_pytest"}, path.name


# ---------------------------------------------------------------- runtimes

def test_runtime_rows_get_speedups_against_their_own_float_and_eager_and_a_cross_runtime_table(tmp_path):
    s = _session(tmp_path, runtimes="eager,onnxruntime", float_baselines="none")
    ort = dict(runtime="onnxruntime")
    for r in [rec("EnhancedLeNet5", "original", lat=40.0),
              rec("EnhancedLeNet5", "static_int8", acc=96.8, size=1.0, lat=10.0, ref=40.0),
              rec("EnhancedLeNet5", "original", lat=16.0, **ort),
              rec("EnhancedLeNet5", "static_int8", acc=96.9, size=1.1, lat=8.0, ref=16.0, **ort),
              rec("EnhancedLeNet5", "structured_50", acc=90.0, size=2.0, lat=4.0, ref=16.0, **ort)]:
        s.judge.add(r)
    out = finish(s)
    rows = {(r["runtime"], r["method"]): r for r in out.records}
    assert [(r["runtime"], r["method"]) for r in out.records][:2] == [("eager", "original"), ("eager", "static_int8")]
    assert rows["onnxruntime", "static_int8"]["speedup"] == 2.0             # against ORT's own float original
    assert rows["onnxruntime", "static_int8"]["speedup_vs_eager"] == 5.0    # against the eager float original
    assert rows["onnxruntime", "original"]["speedup_vs_eager"] == 2.5       # what the runtime alone buys
    assert rows["eager", "static_int8"]["speedup_vs_eager"] == rows["eager", "static_int8"]["speedup"] == 4.0
    text = "\n".join(line for line, _ in out.lines)
    assert "latency at batch 64, 1 thread, on ONNX Runtime" in text
    table = text[text.index("EnhancedLeNet5: fastest within 1 point of the eager float original (97.00%)"):]
    # fastest first, and structured_50 (7 points lost) is left out
    cells = [[c.split()[0] for c in line.split("|")[1:3]] for line in table.split("Fastest float original")[0].splitlines()
             if line.startswith("| ") and "Runtime" not in line]
    assert cells == [["onnxruntime", "static_int8"], ["eager", "static_int8"], ["onnxruntime", "original"],
                     ["eager", "original"]]
    assert "Fastest float original: onnxruntime, 16.00 ms (2.50x eager float)" in table
    assert "1 row(s) lost more than 1 point and are left out" in table


def test_runtime_gates_take_speed_floors_only_from_the_runtimes_own_tables(tmp_path):
    c = _config(tmp_path, thresholds="""
        [methods.static_int8]
        max_accuracy_drop = 1.0
        min_speedup = 3.0
        [runtimes.onnxruntime.models.EnhancedLeNet5.methods.static_int8]
        min_speedup = 1.5
    """)
    t = c.thresholds
    assert t.gates("EnhancedLeNet5", "static_int8", "smoke") == {"max_accuracy_drop": 1.0, "min_speedup": 3.0}
    assert t.gates("EnhancedLeNet5", "static_int8", "smoke", "onnxruntime") == {"max_accuracy_drop": 1.0,
                                                                                 "min_speedup": 1.5}
    assert t.gates("SimpleCNN_6x2", "static_int8", "smoke", "inductor") == {"max_accuracy_drop": 1.0}
    with pytest.raises(SessionError, match="unknown runtime; valid runtimes are eager, inductor, onnxruntime, openvino"):
        _session(tmp_path, thresholds="[runtimes.tensorrt.defaults]\nmin_speedup = 2.0\n")


def test_the_cases_hold_every_method_per_runtime_and_the_eager_original_always(tmp_path):
    c = _config(tmp_path, runtimes="onnxruntime", float_baselines="inductor", zoo_models="EnhancedLeNet5")
    assert c.cases() == [("EnhancedLeNet5", "original", "eager", 0),
                         *[("EnhancedLeNet5", m, "onnxruntime", 0) for m in METHODS.split(",")],
                         ("EnhancedLeNet5", "original", "inductor", 0)]
    with pytest.raises(SessionError, match="unknown runtime 'tvm' in --runtimes"):
        _session(tmp_path, runtimes="eager,tvm")
    # --zoo-seeds 2: every case once per seed, seed by seed
    two = _config(tmp_path, zoo_seeds="2", zoo_models="EnhancedLeNet5", compression_methods="original,static_int8",
                  float_baselines="none")
    assert two.cases() == [("EnhancedLeNet5", "original", "eager", 0), ("EnhancedLeNet5", "static_int8", "eager", 0),
                           ("EnhancedLeNet5", "original", "eager", 1), ("EnhancedLeNet5", "static_int8", "eager", 1)]
    for bad in ("0", "three", "21"):
        with pytest.raises(SessionError, match="--zoo-seeds takes a number of seeds from 1 to 20"):
            _session(tmp_path, zoo_seeds=bad)


def test_a_runtime_whose_package_is_missing_fails_the_run_with_the_pip_command(tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(SessionError, match=r"runtime 'onnxruntime' needs onnxruntime, which is not installed: "
                                           r"pip install onnxruntime onnx onnxscript"):
        _session(tmp_path, runtimes="eager", float_baselines="onnxruntime")


def test_the_plugin_runs_a_small_matrix_in_process_end_to_end(tmp_path, suite_inprocess, smoke_cache_copy):
    """The plugin, its one test and the session, run by pytest in this process (pytester) on a copy
    of the shared smoke cache: two methods on eager and ONNX Runtime, timed briefly. The same wiring
    as the command line, which the e2e tier runs in children; here in seconds, for the fast tier."""
    import json
    assert smoke_cache_copy == tmp_path / "cache"  # the cache suite_inprocess points ZOO_CACHE at
    (suite_inprocess.path / "test_bench.py").write_text(
        "from compression_bench.benchmarks.suite import test_variant  # noqa: F401\n")
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--compression-methods", "original,static_int8",
                        "--runtimes", "eager,onnxruntime", "--benchmark-only", "--speedup-precision", "0.5",
                        "--speed-slices", "2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "4 passed" in r.stdout and "epoch" not in r.stdout + r.stderr  # trained model from the shared cache
    # one slice of each compressed variant before the tests, one in its test, pooled
    assert "speed slices: timing 2 compressed variant(s) 1 time(s) each before the tests" in r.stdout
    rows = {(x["runtime"], x["method"]): x for x in
            json.loads((tmp_path / "report" / "results.json").read_text())["results"]}
    assert set(rows) == {("eager", "original"), ("eager", "static_int8"),
                         ("onnxruntime", "original"), ("onnxruntime", "static_int8")}
    int8 = rows["onnxruntime", "static_int8"]
    assert int8["status"] is None and int8["speedup_low"] <= int8["speedup"] <= int8["speedup_high"]
    assert int8["accuracy"] > 50 and int8["size_mib"] < rows["onnxruntime", "original"]["size_mib"]
    assert int8["speed_slices"] == 2 and rows["eager", "static_int8"]["speed_slices"] == 2
    assert rows["eager", "original"]["speed_slices"] is None  # unpaired: timed once, in its test


def test_every_suite_option_s_help_text_prints():
    """``pytest benchmarks/ --help`` formats every help text with argparse, which reads ``%`` as a
    format: "e.g. 10%" once made the whole help fail with a TypeError."""
    import argparse

    from compression_bench.benchmarks.settings import options
    parser = argparse.ArgumentParser()
    for option in options.OPTIONS:
        parser.add_argument(option.flag, **option.kwargs(models="M", methods="m", runtimes="eager"))
    text = " ".join(parser.format_help().split())
    assert "e.g. 10% or 0.1" in text and "0.02 for ±2%" in text


def _slicing_session(events: list, fail: dict):
    """A session for :func:`slices.time_slices` whose variants are tiny functions; ``fail`` maps a
    method to the exception building it raises."""
    from compression_bench.benchmarks.session.judge import Judge
    from compression_bench.benchmarks.session.slices import Slices
    x = torch.zeros(4, 3)
    trained = SimpleNamespace(data=SimpleNamespace(val=SimpleNamespace(first_batch=lambda n: x[:n])))

    built = {}

    def on_runtime(model, method, runtime, batch_size, seed):  # memoised, as the workspace is
        events.append(("build", method))
        if method in fail:
            raise fail[method]
        return built.setdefault(method, SimpleNamespace(
            trained=trained, method=method, load=lambda threads: events.append(("load", method)) or torch.sum))
    config = SimpleNamespace(slices=3, target_s=0.03, warmup=0, precision=0.02)
    judge = Judge(config, "x86-avx2")
    judge.unsupported = lambda *a: None  # nothing declared unsupported (no thresholds file here)
    said: list[str] = []

    def peak_memory_many(jobs):
        events.append(("memory", sorted(job[0].method for job in jobs)))
    return SimpleNamespace(config=config, judge=judge, slices=Slices(), say=said.append, said=said,
                           workspace=SimpleNamespace(on_runtime=on_runtime, peak_memory_many=peak_memory_many))


def test_speed_slices_build_everything_first_measure_memory_then_time_each_variant_twice_and_leave_failures_to_their_tests():
    from compression_bench.benchmarks.session import slices
    from compression_bench.benchmarks.errors import SessionError, VariantFailure
    events: list = []
    s = _slicing_session(events, {"structured_50": VariantFailure("", ValueError("cannot group"))})
    cases = [("M", m, "eager", 0, 4, 1) for m in ("original", "static_int8", "structured_50", "unstructured_30")]
    assert slices.time_slices(s, cases) == 4  # two slices of each of the two variants that build
    assert set(s.slices.timed) == {("M", "static_int8", "eager", 4, 1, 0), ("M", "unstructured_30", "eager", 4, 1, 0)}
    assert all(len(v) == 2 and v[0].rounds >= 6 for v in s.slices.timed.values())
    first_load = events.index(next(e for e in events if e[0] == "load"))
    assert all(e[0] == "build" for e in events[:first_load - 1]) and ("build", "unstructured_30") in events[:first_load]
    # the peak memory of every variant built and of its original (once), after the builds, before any timing
    assert events[first_load - 1] == ("memory", ["original", "static_int8", "unstructured_30"])
    assert any("[M/structured_50@eager] not timed before its test (failed: ValueError: cannot group)" in line
               for line in s.said)
    # a cache fault stops the session, as it would in a test
    s = _slicing_session([], {"static_int8": SessionError("cache unreadable", 7)})
    with pytest.raises(SessionError):
        slices.time_slices(s, cases)


# ---------------------------------------------------------------- absolute floors and options as text (issue #36)

@pytest.fixture
def own_model():
    """A model registered as a user's own (the shipped thresholds file names it nowhere)."""
    from compression_bench import zoo
    zoo.register_model("OwnNet", input_shape=(1, 8, 8), description="a user's model on a user's data")(
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    yield "OwnNet"
    zoo.unregister_model("OwnNet")


def test_the_shipped_floors_gate_the_zoo_models_only_and_a_users_own_file_gates_the_users_model(tmp_path, own_model):
    """Issue #36: the shipped file's accuracy floors are tuned to the zoo's data; a user's model on its own
    data (60% here) gets only the relative gates, a zoo model below its floor still fails, and a user's
    own file that sets a floor for every model gates the user's model too."""
    s = _session(tmp_path, zoo_profile="default", zoo_models=f"{own_model},SimpleCNN_6x2")
    assert s.judge.gate(rec(own_model, "original", acc=60.0)).gate_failures == []
    own = functools.partial(rec, own_model, "static_int8", size=1.0)
    assert s.judge.gate(replace(own(acc=59.5), original_accuracy=60.0)).gate_failures == []  # relative gates hold
    assert s.judge.gate(replace(own(acc=55.0), original_accuracy=60.0)).gate_failures  # a 5-point drop fails
    assert s.judge.gate(rec("SimpleCNN_6x2", "original", acc=88.0)).gate_failures == [
        "SimpleCNN_6x2 / original: accuracy 88.00% is below the required 89.00%"]
    assert s.judge.gate(rec("EfficientNetB0Custom", "original", acc=80.0)).gate_failures  # its own floor, 81%
    mine = _session(tmp_path, thresholds="[methods.original]\nmin_accuracy = 80.0\n", zoo_profile="default",
                    zoo_models=own_model)
    assert mine.judge.gate(rec(own_model, "original", acc=60.0)).gate_failures == [
        "OwnNet / original: accuracy 60.00% is below the required 80.00%"]


def test_timing_options_given_as_text_are_parsed_or_refused_with_one_sentence(tmp_path):
    """Issue #36: ``Config.from_options`` takes raw values as given on the command line, text included."""
    c = _config(tmp_path, latency_warmup="5", latency_target_s="0.5", speed_slices="2", speedup_precision="0.05",
                recommend_within="2")
    assert (c.warmup, c.target_s, c.slices, c.precision, c.within) == (5, 0.5, 2, 0.05, 2.0)
    for dest, bad, message in [
            ("latency_warmup", "many", "--latency-warmup takes a number of rounds from 0 to 100; got 'many'"),
            ("latency_warmup", "2.5", "--latency-warmup takes a number of rounds from 0 to 100; got '2.5'"),
            ("latency_target_s", "two", "--latency-target-s takes seconds above 0 and at most 60, such as 2.0; "
                                        "got 'two'"),
            ("speed_slices", "[3]", "--speed-slices takes a count from 1 to 5; got '[3]'")]:
        with pytest.raises(SessionError) as err:
            _session(tmp_path, **{dest: bad})
        assert str(err.value) == message and err.value.code == 4


# ---------------------------------------------------------------- several seeds

def test_a_method_left_with_one_seed_still_ends_the_session_with_its_report(tmp_path):
    """``--zoo-seeds 2`` with ``-x`` after a failed gate, or ``-k`` keeping one seed of a method: the
    session end averaged a group of one and raised inside pytest_sessionfinish, and no report was
    written (issue #36)."""
    s = _session(tmp_path, zoo_seeds="2", zoo_models="EnhancedLeNet5", compression_methods="original,static_int8")
    for r in [rec("EnhancedLeNet5", "original", lat=8.0), rec("EnhancedLeNet5", "original", lat=9.0, seed=1),
              rec("EnhancedLeNet5", "static_int8", acc=96.5, size=1.0, lat=2.0, ref=8.0)]:
        s.judge.add(r)
    out = finish(s)
    assert out.status == 0, out.lines
    assert {p.name for p in out.paths.values()} == {"report.md", "results.json", "results.csv"}
    assert all(p.is_file() for p in out.paths.values())
    assert len(json.loads(out.paths["json"].read_text())["results"]) == 3  # the files keep every seed's record
    assert "| static_int8 (n=1) " in out.paths["report"].read_text()  # the row says it holds one seed


def test_one_seed_of_a_method_deselected_writes_the_report_end_to_end(tmp_path, suite_inprocess, smoke_cache_copy):
    """The reproduction of issue #36 through the plugin, in this process: two seeds, the second seed's
    static INT8 deselected with -k; the session ends with its report files."""
    (suite_inprocess.path / "test_bench.py").write_text(
        "from compression_bench.benchmarks.suite import test_variant  # noqa: F401\n")
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--compression-methods", "original,static_int8",
                        "--zoo-seeds", "2", "-k", "not (static_int8 and seed1)", "--benchmark-only",
                        "--speedup-precision", "0.5")
    assert "StatisticsError" not in r.stdout + r.stderr
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "3 passed" in r.stdout
    for name in ("report.md", "results.json", "results.csv"):
        assert (tmp_path / "report" / name).is_file(), name
    results = json.loads((tmp_path / "report" / "results.json").read_text())["results"]
    assert sorted((x["method"], x["seed"]) for x in results) == [("original", 0), ("original", 1), ("static_int8", 0)]
