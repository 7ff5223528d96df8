"""The project's import names never collide with the standard library, on any Python it supports.

Python 3.14 added a ``compression`` package to the standard library; the source folder
``compression/`` is therefore installed as ``compression_bench.compression``, never as
``compression``.
"""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: top-level modules that Python 3.14 added to the standard library (``sys.stdlib_module_names`` on
#: 3.14 has them; the interpreter running this test may be older)
NEW_IN_314 = {"annotationlib", "compression", "_zstd"}


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_no_import_name_is_a_standard_library_module():
    packages = _config()["tool"]["setuptools"]["packages"]
    stdlib = set(sys.stdlib_module_names) | NEW_IN_314
    assert "compression" in stdlib
    tops = {p.split(".")[0] for p in packages}
    assert tops == {"compression_bench"}
    assert not tops & stdlib
    scripts = _config()["project"]["scripts"]
    for target in scripts.values():
        assert target.split(".")[0] == "compression_bench"


def test_requires_python_has_no_upper_cap():
    spec = _config()["project"]["requires-python"]
    assert spec.startswith(">=3.11") and "<" not in spec


def test_importing_the_suite_leaves_the_name_compression_to_the_standard_library():
    code = ("import sys, compression_bench.compression, compression_bench.zoo, compression_bench.benchmarks.pipeline; "
            "m = sys.modules.get('compression'); print(getattr(m, '__file__', None) or 'not imported')")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd="/", check=True)
    # on 3.14 the standard library's own may be imported by something; never our folder
    assert str(ROOT) not in out.stdout and out.stdout.strip(), out.stdout


def test_the_tests_child_processes_do_not_put_the_source_folders_on_the_import_path():
    """A child Python started from the repository root with the working directory or the root on
    its path sees the source folder ``compression/`` as the top-level ``compression`` and hides
    Python 3.14's own: the tests start children with ``-P`` and no ``PYTHONPATH`` of the root."""
    code = ("import importlib.util; s = importlib.util.find_spec('compression'); "
            "print(s.origin if s and s.origin else 'none')")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert not out.stdout.strip().startswith(str(ROOT)), out.stdout
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert bare.stdout.strip().startswith(str(ROOT / "compression"))  # what -P prevents
    for test in sorted(set((ROOT / "tests").glob("test_*.py")) - {Path(__file__).resolve()}):
        text = test.read_text(encoding="utf-8")
        for launch in ('[sys.executable, "-m"', '[sys.executable, "-c"', "PYTHONPATH=str(ROOT)"):
            assert launch not in text, f"{test.name} starts a child with the source folders on its path: {launch}"
