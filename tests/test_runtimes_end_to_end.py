"""Each runtime end to end on the smoke profile: build, time and evaluate an INT8 and a pruned variant
through the suite, then a warm run that builds nothing (the cache's builds.log shows it). And the eager
INT8 rows in a torch without torch.ao.quantization's FX API: n/a, while the other runtimes' INT8 rows still run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # a child process end to end (tests/conftest.py: tiers)

ROOT = Path(__file__).resolve().parents[1]
MODEL = "EnhancedLeNet5"
METHODS = "original,static_int8,structured_50"


def _suite(tmp_path: Path, *args, cache: Path | None = None) -> tuple[subprocess.CompletedProcess, list[dict]]:
    env = dict(os.environ, ZOO_CACHE=str(cache or tmp_path / "cache"))
    report = tmp_path / "report"
    r = subprocess.run([sys.executable, "-P", "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "--zoo-profile", "smoke",
                        "--zoo-models", MODEL, "--compression-methods", METHODS, "--report-dir", str(report),
                        "--latency-target-s", "0.1", "--latency-warmup", "1", "--float-baselines", "none", *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=2700)
    rows = json.loads((report / "results.json").read_text())["results"] if (report / "results.json").exists() else []
    return r, rows


def _builds(cache: Path) -> list[str]:
    log = cache / "builds.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("runtime", ["onnxruntime", "inductor"])
def test_a_runtime_builds_times_and_evaluates_int8_and_pruned_variants_and_a_warm_run_builds_nothing(tmp_path, runtime):
    pytest.importorskip("onnxruntime" if runtime == "onnxruntime" else "torchao")
    cache = tmp_path / "cache"
    r, rows = _suite(tmp_path, "--benchmark-only", "--runtimes", runtime)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    by = {(row["runtime"], row["method"]): row for row in rows}
    assert sorted(by) == sorted([("eager", "original")] + [(runtime, m) for m in METHODS.split(",")])
    eager = by["eager", "original"]
    original, int8, pruned = (by[runtime, m] for m in METHODS.split(","))
    for row in (original, int8, pruned):
        assert row["status"] is None, row
        assert row["latency_median_ms"] > 0 and row["build_seconds"] > 0 and row["speedup_vs_eager"] > 0
        assert row["accuracy"] > 50  # evaluated through the runtime's own artifact on the test split
        # loading and running it once, in a child process of its own, took memory, and less than the whole process
        assert 0 < row["peak_increase_mib"] < row["peak_mib"], row
    # the float artifact computes what eager computes: the same accuracy within an image or two
    assert abs(original["accuracy"] - eager["accuracy"]) <= 0.5
    assert int8["speedup"] > 0 and int8["reference_latency_median_ms"] > 0  # paired with this runtime's original
    assert int8["size_ratio"] < 0.4                                          # INT8 weights in the artifact
    assert pruned["params"] < 0.5 * original["params"] and pruned["size_ratio"] < 0.6
    assert f"on {'ONNX Runtime' if runtime == 'onnxruntime' else 'Inductor'}" in r.stdout
    assert f"{MODEL}: fastest within 1 point of the eager float original" in r.stdout
    built = [line for line in _builds(cache) if line.split("\t")[2].startswith("runtime/")]
    assert len(built) == 3, _builds(cache)  # one artifact per method (the batch size is the only one)

    before = _builds(cache)
    r2, rows2 = _suite(tmp_path, "--benchmark-only", "--runtimes", runtime)
    assert r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    assert _builds(cache) == before  # warm: nothing exported, quantized or compiled again
    assert {(x["runtime"], x["method"]): x["accuracy"] for x in rows2} == {k: v["accuracy"] for k, v in by.items()}


# torch.ao.quantization's FX API (prepare_fx / convert_fx), as in a torch that no longer ships it; the
# rest of torch.ao.quantization stays (torchvision imports it)
HIDE_FX = """
import sys
import torch.ao.quantization
sys.modules["torch.ao.quantization.quantize_fx"] = None
torch.ao.quantization.__dict__.pop("quantize_fx", None)
"""


def test_without_torch_ao_fx_quantization_eager_int8_rows_are_n_a_and_onnxruntime_int8_still_runs(tmp_path):
    pytest.importorskip("onnxruntime")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_FX)
    env = dict(os.environ, ZOO_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(site))
    report = tmp_path / "report"
    r = subprocess.run([sys.executable, "-P", "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "--zoo-profile", "smoke",
                        "--zoo-models", MODEL, "--compression-methods", "original,static_int8",
                        "--runtimes", "eager,onnxruntime", "--float-baselines", "none", "--peak-memory", "off",
                        "--benchmark-disable",
                        "--report-dir", str(report)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=2700)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {(x["runtime"], x["method"]): x for x in json.loads((report / "results.json").read_text())["results"]}
    assert rows["eager", "static_int8"]["status"] == "n/a: torch.ao.quantization's FX API is not in this torch"
    assert rows["onnxruntime", "static_int8"]["status"] is None and rows["onnxruntime", "static_int8"]["accuracy"] > 50
    assert rows["eager", "original"]["status"] is None
