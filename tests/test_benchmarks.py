"""The benchmark layer: gates and reports as plain functions, and the pytest suite end to end."""
from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from compression_bench import compression
from compression_bench import zoo
from compression_bench.benchmarks import report, timing
from compression_bench.benchmarks.thresholds import (Thresholds, ThresholdsError, accuracy_failures, size_failures,
                                   speed_failures)

ROOT = Path(__file__).resolve().parents[1]
MODELS, METHODS, PROFILES = zoo.list_models(), compression.list_methods(), zoo.PROFILES


def _load(tmp_path, text: str) -> Thresholds:
    p = tmp_path / "t.toml"
    p.write_text(text)
    return Thresholds.load(p, models=MODELS, methods=METHODS, profiles=PROFILES)


# ---------------------------------------------------------------- thresholds

def test_shipped_thresholds_are_valid_and_layered():
    t = Thresholds.load(None, models=MODELS, methods=METHODS, profiles=PROFILES)
    assert t.gates("ResNet50Custom", "static_int8", "default")["min_speedup"] == 2.5
    assert t.gates("SimpleCNN_6x2", "static_int8", "default")["min_speedup"] == 1.5
    assert t.gates("EfficientNetB0Custom", "original", "default") == {"min_accuracy": 95.0}
    smoke = t.gates("ResNet50Custom", "static_int8", "smoke")
    assert "min_speedup" not in smoke and "max_accuracy_drop" not in smoke
    assert smoke["max_size_ratio"] == 0.3  # sizes are real even on the smoke profile


def test_thresholds_layers_override_in_order(tmp_path):
    t = _load(tmp_path, """
        [defaults]
        max_accuracy_drop = 1.0
        [methods.structured_50]
        max_accuracy_drop = 3.0
        [models.EnhancedLeNet5.methods.structured_50]
        max_accuracy_drop = 4.0
        [profiles.full.methods.structured_50]
        max_accuracy_drop = 5.0
        [profiles.full.models.EnhancedLeNet5.methods.structured_50]
        max_accuracy_drop = false
    """)
    assert t.gates("ResNet50Custom", "static_int8", "default") == {"max_accuracy_drop": 1.0}
    assert t.gates("ResNet50Custom", "structured_50", "default") == {"max_accuracy_drop": 3.0}
    assert t.gates("EnhancedLeNet5", "structured_50", "default") == {"max_accuracy_drop": 4.0}
    assert t.gates("ResNet50Custom", "structured_50", "full") == {"max_accuracy_drop": 5.0}
    assert t.gates("EnhancedLeNet5", "structured_50", "full") == {}


@pytest.mark.parametrize("text, message", [
    ("[methods.static_int8\nmax_size_ratio = 0.3", "is not valid TOML"),
    ("[methods.fast_int4]\nmax_accuracy_drop = 1", "methods.fast_int4: unknown method; valid methods are"),
    ("[models.VGG16.methods.original]\nmin_accuracy = 90", "models.VGG16: unknown model; valid models are"),
    ("[methods.original]\nmin_accuracy = 'high'", "methods.original.min_accuracy: expected a number, got str"),
    ("[methods.original]\nmin_accuracy = 120", "methods.original.min_accuracy: 120 is out of range"),
    ("[methods.static_int8]\nmin_speedup = -2", "min_speedup: -2 is out of range"),
    ("[methods.static_int8]\nmax_size = 0.3", "max_size: unknown threshold; valid keys are"),
    ("[profiles.fast.defaults]\nmin_speedup = 2", "profiles.fast: unknown profile"),
    ("[gates]\nmin_speedup = 2", "gates: unknown section"),
])
def test_bad_thresholds_files_fail_with_one_clear_sentence(tmp_path, text, message):
    with pytest.raises(ThresholdsError, match=message):
        _load(tmp_path, text)


def test_missing_thresholds_file_names_the_option(tmp_path):
    with pytest.raises(ThresholdsError, match="cannot read thresholds file .* --thresholds"):
        Thresholds.load(tmp_path / "nope.toml", models=MODELS, methods=METHODS, profiles=PROFILES)


def test_gate_messages_name_model_method_measured_and_required():
    (msg,) = accuracy_failures("ResNet50Custom", "structured_70", 80.0, 97.5, {"max_accuracy_drop": 8.0})
    assert "ResNet50Custom / structured_70" in msg and "17.50 points" in msg and "8.00" in msg
    assert accuracy_failures("ResNet50Custom", "structured_70", 90.0, 97.5, {"max_accuracy_drop": 8.0}) == []
    gates = {"min_speedup": 2.5, "max_size_ratio": 0.3}
    (msg,) = speed_failures("ResNet50Custom / static_int8", 1.8, gates)
    assert msg.startswith("ResNet50Custom / static_int8: ") and "1.80x" in msg and "2.50x" in msg
    (msg,) = size_failures("ResNet50Custom / static_int8", 0.4, gates)
    assert "0.400x" in msg and "0.300x" in msg
    assert speed_failures("X", 2.6, gates) == [] and size_failures("X", 0.29, gates) == []
    (msg,) = speed_failures("X / unstructured_70", 17.0, {"max_speedup": 1.15})
    assert "timing artifact" in msg
    (msg,) = speed_failures("X / unstructured_70", 0.8, {"max_latency_ratio": 1.15})
    assert "latency 1.25x the original's" in msg
    # no latency measured (--benchmark-disable, xdist): speed gates are not judged
    assert speed_failures("X", None, gates) == []


# ---------------------------------------------------------------- paired timing

class _Machine:
    """A fake clock whose speed drifts: a call of nominal cost c takes c * (1 + now / ramp)."""

    def __init__(self, ramp: float = 0.0):
        self.now, self.ramp, self.log = 0.0, ramp, []

    def clock(self) -> float:
        return self.now

    def model(self, name: str, cost: float):
        def call():
            self.log.append(name)
            self.now += cost * (1 + (self.now / self.ramp if self.ramp else 0.0))
        return call


def _pedantic(target, setup, warmup_rounds, rounds, clock):
    """What benchmark.pedantic does with a setup hook: setup before every warm-up and timed round."""
    durations = []
    for _ in range(warmup_rounds):
        setup()
        target()
    for _ in range(rounds):
        setup()
        t0 = clock()
        target()
        durations.append(clock() - t0)
    return durations


def test_interleaver_times_the_reference_in_blocks_between_warm_variant_rounds():
    m = _Machine()
    ref, var = m.model("R", 4.0), m.model("V", 1.0)
    il = timing.Interleaver(ref, var, warmup_rounds=2, rounds=20, reference_rounds=10, blocks=4, clock=m.clock)
    _pedantic(var, il, 2, 20, m.clock)
    assert (il.block_size, il.blocks, il.per_block) == (5, 4, 3)
    assert il.block_medians == [4.0] * 4 and il.steadiness == 0.0
    assert len(il.samples) == 12 and il.median == 4.0
    # warm-ups untouched; each block: reference warm-up, 3 timed, one untimed variant call; then 5 timed rounds
    block = ["R"] * 4 + ["V"] + ["V"] * 5
    assert "".join(m.log) == "VV" + "".join(block) * 4


def test_paired_speedup_survives_a_drifting_machine_where_separate_medians_do_not():
    # the machine slows down steadily until it runs at half speed; the variant is truly 4x faster
    m = _Machine(ramp=400.0)
    ref, var = m.model("R", 4.0), m.model("V", 1.0)
    alone = _pedantic(ref, lambda: None, 0, 25, m.clock)  # the original's own test, earlier in the run
    il = timing.Interleaver(ref, var, warmup_rounds=3, rounds=100, reference_rounds=25, clock=m.clock)
    var_rounds = _pedantic(var, il, 3, 100, m.clock)
    var_median = sorted(var_rounds)[50]
    paired = il.median / var_median
    unpaired = sorted(alone)[12] / var_median
    assert abs(paired / 4.0 - 1) < 0.05, paired
    assert unpaired < 0.85 * 4.0, unpaired  # what the old protocol reported: drift mistaken for slowness


def test_the_plain_paired_function_follows_the_same_schedule_as_pedantic():
    m1, m2 = _Machine(), _Machine()
    il = timing.Interleaver(m1.model("R", 4.0), m1.model("V", 1.0), warmup_rounds=2, rounds=20, reference_rounds=10,
                            clock=m1.clock)
    by_pedantic = _pedantic(m1.model("V", 1.0), il, 2, 20, m1.clock)
    p = timing.paired(m2.model("R", 4.0), m2.model("V", 1.0), warmup_rounds=2, rounds=20, reference_rounds=10,
                      clock=m2.clock)
    assert m1.log == m2.log and p.samples == by_pedantic and p.speedup == 4.0 and p.steady


class _Switching(_Machine):
    """A machine that runs ``factor`` times slower between two moments (another process took the cores)."""

    def __init__(self, start: float, stop: float, factor: float):
        super().__init__()
        self.start, self.stop, self.factor = start, stop, factor

    def model(self, name: str, cost: float):
        def call():
            self.log.append(name)
            self.now += cost * (self.factor if self.start <= self.now < self.stop else 1.0)
        return call


def test_a_machine_that_changes_speed_within_a_test_is_unsteady_and_a_calm_one_is_not():
    c = _Machine(ramp=2000.0)  # a slow drift of a few percent over the test: steady
    calm = timing.paired(c.model("R", 4.0), c.model("V", 1.0), warmup_rounds=1, rounds=40, reference_rounds=16,
                         clock=c.clock)
    assert calm.steady and 0 < calm.steadiness < 0.1
    m = _Switching(start=40.0, stop=90.0, factor=3.0)  # busy for part of the test only
    busy = timing.paired(m.model("R", 4.0), m.model("V", 1.0), warmup_rounds=1, rounds=40, reference_rounds=16,
                         clock=m.clock)
    assert busy.steadiness > timing.MAX_DRIFT and not busy.steady
    assert max(busy.pairing.block_medians) == 12.0 and min(busy.pairing.block_medians) == 4.0


@pytest.mark.parametrize("seconds, budget, rounds", [(0.001, 1.0, 300), (0.05, 1.0, 20), (2.0, 1.0, 10)])
def test_round_counts_fill_the_budget_within_bounds(seconds, budget, rounds):
    assert timing.rounds_for(seconds, budget) == rounds


def test_drift_of_the_original_is_reported_and_small_drift_is_not():
    def rec(method, lat, ref=None):
        return {"model": "M", "method": method, "batch_size": 64, "latency_median_ms": lat,
                "reference_latency_median_ms": ref}
    steady = [rec("original", 10.0), rec("static_int8", 2.0, 10.2), rec("structured_50", 5.0, 9.9)]
    assert report.drift_notice(steady) is None
    assert report.drift_lines(steady) == ["M @ batch 64: the original timed 3 times, 9.90–10.20 ms (spread 3.0%)"]
    moving = steady + [rec("qat_int8", 2.2, 11.5)]
    notice = report.drift_notice(moving)
    assert "original of M @ batch 64 varied by 15.8%" in notice and "gate on speedup" in notice
    assert report.drift_notice([rec("original", None), rec("static_int8", None)]) is None  # untimed run


# ---------------------------------------------------------------- report

def _rec(method, acc, size, lat, label=None, bs=64):
    return {"model": "M", "method": method, "label": label or method, "compression": "INT8",
            "family": "x", "level": None, "profile": "smoke", "dataset": "digits", "batch_size": bs,
            "threads": 2, "accuracy": acc, "params": 1_000_000, "nonzero_params": 500_000,
            "sparsity": 0.5, "size_mib": size, "zero_aware_size_mib": size / 2, "macs": 2_000_000,
            "density_weighted_macs": 1_000_000, "latency_median_ms": lat, "latency_iqr_ms": 0.1,
            "latency_stddev_ms": 0.1, "latency_rounds": 10}


def test_tables_sort_by_accuracy_bold_original_and_show_ratios(tmp_path):
    recs = report.add_ratios([_rec("original", 98.0, 4.0, 10.0, "Original"),
                              _rec("static_int8", 97.5, 1.0, 2.5, "Quantization (Static)"),
                              _rec("structured_30", 99.0, 2.0, None, "Pruning (Structured)")])
    text = report.render_tables(recs)
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert [line.split("|")[1].strip() for line in lines] == [
        "Pruning (Structured)", "**Original**", "Quantization (Static)"]
    assert "4.00x" in text and "0.250x" in text and "-0.50" in text
    assert "–" in lines[0]  # no latency measured: a dash, and no speedup
    paths, unwritten = report.write_results(recs, {"profile": "smoke"}, tmp_path)
    assert unwritten == []
    data = json.loads(paths["json"].read_text())
    assert [r["method"] for r in data["results"]] == ["original", "static_int8", "structured_30"]
    assert data["results"][1]["speedup"] == 4.0
    rows = list(csv.DictReader(paths["csv"].open()))
    assert rows[1]["size_ratio"] == "0.25" and set(report.FIELDS) <= set(rows[0])
    assert "**Original**" in paths["report"].read_text()


# ---------------------------------------------------------------- the suite, end to end

def _suite(tmp_path, *args, cache=None):
    env = dict(os.environ, ZOO_CACHE=str(cache or tmp_path / "cache"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider",
                           "--zoo-profile", "smoke", "--report-dir", str(tmp_path / "report"),
                           "--latency-target-s", "0.05", "--latency-warmup", "1", "--float-baselines", "none", "--peak-memory", "off", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_suite_runs_the_whole_smoke_matrix_and_writes_tables_and_files(tmp_path):
    bench_json = tmp_path / "bench.json"
    r = _suite(tmp_path, "--benchmark-only", f"--benchmark-json={bench_json}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{len(MODELS) * len(METHODS)} passed" in r.stdout
    for model in MODELS:
        assert f"### {model} — digits test split (100 images), profile smoke, latency at batch 64, 1 thread" in r.stdout
    assert r.stdout.count("**Original**") == len(MODELS)
    assert "epoch 1/" in r.stdout  # training progress reached the terminal without -s

    results = json.loads((tmp_path / "report" / "results.json").read_text())["results"]
    assert len(results) == len(MODELS) * len(METHODS)
    by = {(x["model"], x["method"]): x for x in results}
    for model in MODELS:
        orig = by[(model, "original")]
        assert orig["latency_median_ms"] > 0 and orig["threads"] == 1
        # accuracy on the held-out test split, with its interval; tail latency beside the median
        assert orig["accuracy_split"] == "test" and orig["accuracy_images"] == 100
        assert orig["accuracy_low"] <= orig["accuracy"] <= orig["accuracy_high"]
        assert orig["latency_median_ms"] <= orig["latency_p90_ms"] <= orig["latency_p99_ms"]
        q = by[(model, "static_int8")]
        assert 0 <= q["delta_p_value"] <= 1 and isinstance(q["delta_significant"], bool) and 0 <= q["agreement"] <= 100
        assert set(q["per_class_delta"]) == {str(k) for k in range(10)}
        assert by[(model, "static_int8")]["size_ratio"] < 0.3
        assert by[(model, "static_int8")]["params"] > 0.9 * orig["params"]  # packed INT8 counted
        assert by[(model, "structured_50")]["params"] < 0.5 * orig["params"]
        sp = [by[(model, f"unstructured_{k}")]["sparsity"] for k in (30, 50, 70)]
        assert all(abs(s - k / 100) <= 0.01 for s, k in zip(sp, (30, 50, 70))), sp
        za = [by[(model, f"unstructured_{k}")]["zero_aware_size_mib"] for k in (30, 50, 70)]
        assert za[0] > za[1] > za[2]
        for method in METHODS[1:]:  # each variant's test timed the original beside it: a paired speedup
            x = by[(model, method)]
            assert x["reference_latency_rounds"] >= 10 and x["reference_latency_median_ms"] > 0
            assert 1 <= x["timing_attempts"] <= timing.MAX_ATTEMPTS and x["threads"] == 1
    # timing stability, per model: the original's own test and one paired timing per variant
    assert r.stdout.count(f"the original timed {len(METHODS)} times") == len(MODELS)
    report_md = (tmp_path / "report" / "report.md").read_text()
    assert f"Timing stability: the original, timed {len(METHODS)} times" in report_md
    assert (tmp_path / "report" / "results.csv").read_text().count("\n") == len(results) + 1
    assert "### ResNet50Custom" in (tmp_path / "report" / "report.md").read_text()

    saved = json.loads(bench_json.read_text())
    assert saved["machine_info"]["compression_bench"]["profile"] == "smoke"
    assert saved["machine_info"]["compression_bench"]["threads"] == [1]
    # timed on a steady heap (benchmarks/heap.py), recorded with the run
    heap = "glibc malloc" if platform.libc_ver()[0] == "glibc" else "allocator defaults"
    assert saved["machine_info"]["compression_bench"]["heap"].startswith(heap)
    names = {b["name"] for b in saved["benchmarks"]}
    assert "test_variant[ResNet50Custom-static_int8-bs64-t1]" in names
    for b in saved["benchmarks"]:
        assert {"accuracy", "size_mib", "params", "nonzero_params", "macs", "speedup"} <= set(b["extra_info"])
        # what the saved run holds is what the table shows: the median of the accepted timing
        rec = by[(b["extra_info"]["model"], b["extra_info"]["method"])]
        assert b["stats"]["median"] * 1e3 == pytest.approx(rec["latency_median_ms"])

    # warm: nothing is trained or compressed again, and untimed runs show dashes
    r2 = _suite(tmp_path, "--benchmark-disable", "--zoo-models", "EnhancedLeNet5",
                "--compression-methods", "original,static_int8")
    assert r2.returncode == 0, r2.stdout[-3000:]
    assert "epoch" not in r2.stdout and "compressing" not in r2.stdout and "] measured: accuracy" not in r2.stdout
    assert "| **Original**" in r2.stdout and "| –  " in r2.stdout


def _strict(tmp_path, text: str) -> Path:
    t = tmp_path / "strict.toml"
    t.write_text(text)
    return t


def test_impossible_thresholds_fail_the_test_of_the_variant_that_misses_them(tmp_path):
    t = _strict(tmp_path, "[profiles.smoke.methods.static_int8]\nmax_size_ratio = 0.01\nmax_accuracy_drop = -0.0\n"
                          "[profiles.smoke.methods.original]\nmin_accuracy = 100\n")
    r = _suite(tmp_path, "--benchmark-only", "--zoo-models", "EnhancedLeNet5",
               "--compression-methods", "original,dynamic_int8,static_int8", "--thresholds", str(t))
    assert r.returncode == 1
    assert "2 failed, 1 passed" in r.stdout
    assert "FAILED benchmarks/test_compression_bench.py::test_variant[EnhancedLeNet5-original-bs64-t1]" in r.stdout
    assert "FAILED benchmarks/test_compression_bench.py::test_variant[EnhancedLeNet5-static_int8-bs64-t1]" in r.stdout
    assert "EnhancedLeNet5 / original: accuracy" in r.stdout and "below the required 100.00%" in r.stdout
    assert "gates failed (each in its own test)" in r.stdout  # and the session end still lists them all
    assert "EnhancedLeNet5 / static_int8 @ batch 64, 1 thread: size 0.2" in r.stdout and "at most 0.010x" in r.stdout


def test_a_selection_without_the_original_still_applies_size_and_speed_gates(tmp_path):
    t = _strict(tmp_path, "[profiles.smoke.methods.static_int8]\nmax_size_ratio = 0.01\n")
    r = _suite(tmp_path, "--benchmark-only", "--zoo-models", "EnhancedLeNet5",
               "--compression-methods", "original,static_int8", "--thresholds", str(t), "-k", "static_int8")
    assert r.returncode == 1, r.stdout[-3000:]
    assert "1 failed, 1 deselected" in r.stdout
    assert "FAILED benchmarks/test_compression_bench.py::test_variant[EnhancedLeNet5-static_int8-bs64-t1]" in r.stdout
    assert "size 0.2" in r.stdout and "at most 0.010x" in r.stdout
    (rec,) = json.loads((tmp_path / "report" / "results.json").read_text())["results"]
    assert rec["reference_latency_median_ms"] > 0 and rec["speedup"] > 0  # the original was timed beside it


def test_speed_gates_on_an_unsteady_machine_are_inconclusive_not_failed(tmp_path):
    # --max-timing-drift 0: any movement of the original's blocks counts as a busy machine, so the test retimes
    # MAX_ATTEMPTS times, then reports its impossible speed gate as inconclusive (exit 6), not as a failure
    t = _strict(tmp_path, "[profiles.smoke.methods.static_int8]\nmin_speedup = 1000\n")
    args = ["--benchmark-only", "--zoo-models", "EnhancedLeNet5", "--compression-methods", "original,static_int8",
            "--thresholds", str(t), "--max-timing-drift", "0"]
    r = _suite(tmp_path, *args)
    assert r.returncode == 6, r.stdout[-3000:]
    assert "2 passed" in r.stdout and "speed gates inconclusive" in r.stdout
    assert "inconclusive: the machine was too busy to measure" in r.stdout and "required at least 1000.00x" in r.stdout
    rec = json.loads((tmp_path / "report" / "results.json").read_text())["results"][1]
    assert rec["timing_attempts"] == timing.MAX_ATTEMPTS and rec["inconclusive"] and not rec["gate_failures"]
    # a real failure beside it wins: exit 1
    t.write_text(t.read_text() + "max_size_ratio = 0.01\n")
    r = _suite(tmp_path, *args)
    assert r.returncode == 1 and "1 failed, 1 passed" in r.stdout


def test_a_real_int8_variant_is_faster_than_its_original_with_the_suites_own_protocol(tmp_path):
    """The guard against timing the wrong object: EnhancedLeNet5's static INT8 variant, timed with
    timing.paired at one thread, batch 64, is at least 1.5x faster than its float original (5.4-7.1x
    measured here)."""
    import torch
    from compression_bench.benchmarks import pipeline
    cache = zoo.ArtifactCache(tmp_path / "cache")
    tm = zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None)
    int8 = pipeline.get_variant(tm, "static_int8", cache).model
    x = tm.data.val.first_batch(64)

    def runner(model):
        def run():
            with torch.inference_mode():
                return model(x)
        return run
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        p = timing.paired(runner(tm.model), runner(int8), warmup_rounds=3, rounds=30, reference_rounds=30)
    finally:
        torch.set_num_threads(before)
    assert p.speedup >= 1.5, p.speedup


@pytest.mark.parametrize("args, message", [
    (["--zoo-models", "VGG16"], "unknown model 'VGG16' in --zoo-models; valid models are: SimpleCNN_6x2"),
    (["--compression-methods", "int4"], "unknown method 'int4' in --compression-methods; valid methods are: original"),
    (["--latency-batch-size", "0"], "--latency-batch-size takes integers from 1 to 1024"),
    (["--zoo-profile", "fast"], "unknown profile 'fast'"),
])
def test_bad_options_fail_before_anything_trains(tmp_path, args, message):
    r = _suite(tmp_path, "--benchmark-only", *args)
    assert r.returncode != 0 and message in r.stderr
    assert not (tmp_path / "cache" / "trained").exists()


def test_several_seeds_train_each_model_again_and_the_table_shows_mean_and_spread(tmp_path):
    r = _suite(tmp_path, "--benchmark-only", "--zoo-models", "EnhancedLeNet5", "--compression-methods",
               "original,static_int8", "--zoo-seeds", "2", f"--benchmark-json={tmp_path / 'bench.json'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "4 passed" in r.stdout
    # the first seed keeps the ids of a one-seed run (saved runs still match); the others add -seed<k>
    names = {b["name"] for b in json.loads((tmp_path / "bench.json").read_text())["benchmarks"]}
    assert names == {"test_variant[EnhancedLeNet5-original-bs64-t1]", "test_variant[EnhancedLeNet5-static_int8-bs64-t1]",
                     "test_variant[EnhancedLeNet5-original-seed1-bs64-t1]",
                     "test_variant[EnhancedLeNet5-static_int8-seed1-bs64-t1]"}
    assert "EnhancedLeNet5/smoke/seed1" in r.stdout  # the second seed was trained, not reused
    results = json.loads((tmp_path / "report" / "results.json").read_text())["results"]
    assert sorted((x["method"], x["seed"]) for x in results) == [("original", 0), ("original", 1),
                                                                  ("static_int8", 0), ("static_int8", 1)]
    originals = [x for x in results if x["method"] == "original"]
    # each seed is its own model: each variant is paired with the original of its seed
    for x in results:
        if x["method"] != "original":
            own = next(o for o in originals if o["seed"] == x["seed"])
            assert x["accuracy_delta"] == pytest.approx(x["accuracy"] - own["accuracy"])
    assert "mean ± standard deviation over 2 seeds" in r.stdout
    # what every seed shares keeps its form in the averaged title: 100 images and batch 64, not 100.0 and 64.0
    assert "### EnhancedLeNet5 — digits test split (100 images), profile smoke, latency at batch 64, 1 thread" in r.stdout
    mean = sum(o["accuracy"] for o in originals) / 2
    assert f"| **Original**" in r.stdout and f"{mean:.2f} ± " in r.stdout
