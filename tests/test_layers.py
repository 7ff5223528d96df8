"""The import layers of pyproject.toml's [tool.importlinter] hold, and `lint-imports` (run by .ci/run)
fails on an upward import or a cycle planted in a copy of the package, deferred inside a function."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import compression_bench

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is in the test extra: pip install -e '.[test]'")


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts on the ``compression_bench`` found in ``package_parent``."""
    env = dict(os.environ, PYTHONPATH=str(package_parent))
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], env=env,
                          capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(Path(compression_bench.__file__).parent, tmp_path / "compression_bench",
                    ignore=shutil.ignore_patterns("__pycache__", "embedded"))
    return tmp_path


def _plant(tmp_path: Path, module: str, imported: str) -> None:
    path = tmp_path / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _planted():\n    import {imported}  # noqa: F401\n")


def test_the_package_keeps_its_layers_and_has_no_cycles():
    done = _lint(Path(compression_bench.__file__).parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path):
    """measurement (below the runtimes) importing a runtime, as peak memory did before the layers."""
    _plant(_copy(tmp_path), "compression_bench.benchmarks.measurement.stats", "compression_bench.benchmarks.runtimes")
    done = _lint(tmp_path)
    assert done.returncode == 1
    assert "compression_bench.benchmarks.measurement is not allowed to import" in done.stdout
    assert "compression_bench.benchmarks.measurement.stats ->" in done.stdout


def test_a_cycle_within_one_layer_breaks_the_acyclic_contract(tmp_path):
    """zoo.images (below splits and streaming) importing zoo.streaming, which imports it."""
    _plant(_copy(tmp_path), "compression_bench.zoo.images", "compression_bench.zoo.streaming")
    done = _lint(tmp_path)
    assert done.returncode == 1
    assert "No cycles are allowed in compression_bench.zoo" in done.stdout
    assert "layers:" in done.stdout and "KEPT" in done.stdout  # the layers themselves still hold
