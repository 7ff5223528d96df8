"""The example of a model the suite was not written for (examples/mobilenet_v3_small), end to end on its
smoke settings, from a copy of its directory: make the PNG files, train the checkpoint for one epoch,
run the benchmark there with the suite's plugin loaded by the example's own conftest.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compression_bench import compression

pytestmark = pytest.mark.e2e  # a child process end to end (tests/conftest.py: tiers)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mobilenet_v3_small"


def _run(args, cwd, env):
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="the example directory is not in this checkout")
def test_the_mobilenet_example_runs_end_to_end_on_its_smoke_settings(tmp_path):
    here = tmp_path / "example"
    shutil.copytree(EXAMPLE, here, ignore=shutil.ignore_patterns("data", "checkpoint.pt", "reports", "__pycache__",
                                                                 ".benchmarks"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ZOO_"))}
    env["ZOO_CACHE"] = str(tmp_path / "cache")
    _run(["make_data.py"], here, env)
    _run(["train.py", "--smoke"], here, env)
    assert (here / "checkpoint.pt").is_file()
    r = _run(["-m", "pytest", "-p", "no:cacheprovider", "--benchmark-only", "--zoo-profile", "smoke",
              "--latency-target-s", "0.2", "--latency-warmup", "1"], here, env)
    rows = json.loads((here / "reports" / "results.json").read_text())["results"]
    assert {row["model"] for row in rows} == {"MobileNetV3Small"}
    assert [row["method"] for row in rows if row["runtime"] == "eager"] == compression.list_methods()
    # the float original on ONNX Runtime too (--float-baselines): the model as a user might ship it
    assert [(row["method"], row["runtime"]) for row in rows if row["runtime"] != "eager"] == [("original", "onnxruntime")]
    for row in rows:
        assert row["status"] is None or row["status"].startswith("n/a: "), row
        # the user's model pickles into the child process that measures its peak memory
        assert row["status"] or row["peak_increase_mib"] > 0, row
    measured = {row["method"]: row for row in rows if row["status"] is None and row["runtime"] == "eager"}
    ort = [row for row in rows if row["runtime"] == "onnxruntime"][0]
    assert abs(ort["accuracy"] - measured["original"]["accuracy"]) <= 0.5 and ort["speedup_vs_eager"] > 0
    assert measured["original"]["dataset"] == "digits5" and measured["original"]["params"] > 1e6
    assert measured["static_int8"]["size_mib"] < measured["original"]["size_mib"] / 3
    assert "MobileNetV3Small" in r.stdout
