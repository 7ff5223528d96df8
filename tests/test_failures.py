"""A model the suite was not written for, benchmarked from another directory the way a user's repository
does it (``pytest_plugins`` in its conftest, the suite's test imported by its test module): a method that
cannot handle the model fails its own test with ``failed: <error>`` and the rest of the matrix completes;
once the thresholds file declares the method unsupported the row reads ``n/a: <reason>`` and the run
passes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.e2e  # a child process end to end (tests/conftest.py: tiers)

CONFTEST = textwrap.dedent('''
    import torch
    from torch import nn
    from compression_bench import zoo

    pytest_plugins = ["compression_bench.benchmarks.plugin"]


    class Branchy(nn.Module):
        """A convolution, then a branch on the data: FX's symbolic tracing cannot follow it."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 16, 3, padding=1)
            self.bn = nn.BatchNorm2d(16)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            if y.mean() > 100:
                y = y * 0.5
            return self.head(y.mean((2, 3)))


    zoo.register_model("Branchy", input_shape=(1, 28, 28), num_classes=10, description="data-dependent branch",
                       recipe=zoo.Recipe(epochs=1, lr=0.05))(Branchy)
''')

METHODS = "original,dynamic_int8,static_int8,structured_30"


def _run(tmp_path, *extra):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_bench.py").write_text("from compression_bench.benchmarks.suite import test_variant  # noqa: F401\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ZOO_"))}
    env["ZOO_CACHE"] = str(tmp_path / "cache")
    cmd = [sys.executable, "-P", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--zoo-profile", "smoke",
           "--zoo-models", "Branchy", "--compression-methods", METHODS, "--benchmark-disable", "--float-baselines", "none", "--peak-memory", "off", "--report-dir", str(tmp_path / "reports"), *extra]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=2700)
    rows = json.loads((tmp_path / "reports" / "results.json").read_text())["results"]
    return r, {row["method"]: row for row in rows}


def test_a_method_that_cannot_handle_the_model_fails_alone_then_is_declared_unsupported(tmp_path):
    # the user's own gates: none (the built-in size gates are for the zoo's models, not a 16-channel toy)
    (tmp_path / "gates.toml").write_text("[defaults]\n")
    r, rows = _run(tmp_path, "--thresholds", str(tmp_path / "gates.toml"))
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert set(rows) == set(METHODS.split(","))  # the whole matrix is in the results
    failed = rows["static_int8"]
    assert failed["status"].startswith("failed: TraceError: ") and failed["accuracy"] is None
    assert "FAILED test_bench.py::test_variant[Branchy-static_int8-bs64-t1]" in r.stdout
    assert "1 failed, 3 passed" in r.stdout
    for method in ("original", "dynamic_int8", "structured_30"):
        assert rows[method]["status"] is None and rows[method]["accuracy"] is not None, rows[method]
    assert rows["structured_30"]["params"] < rows["original"]["params"]
    assert "failed: " in (tmp_path / "reports" / "report.md").read_text()

    (tmp_path / "gates.toml").write_text('[defaults]\n[models.Branchy.methods.static_int8]\n'
                                         'unsupported = "FX cannot trace the branch on the data"\n')
    r, rows = _run(tmp_path, "--thresholds", str(tmp_path / "gates.toml"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert rows["static_int8"]["status"] == "n/a: FX cannot trace the branch on the data"
    assert "3 passed, 1 skipped" in r.stdout
    assert "n/a: FX cannot trace the branch on the data" in r.stdout  # in the session-end table
