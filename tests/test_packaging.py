"""The project's import names never collide with the standard library, on any Python it supports.

Python 3.14 added a ``compression`` package to the standard library; the project is one package,
``src/compression_bench`` (its ``compression`` is ``compression_bench.compression``), and nothing at the
repository root can be imported as ``compression``.
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
    assert _config()["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]
    stdlib = set(sys.stdlib_module_names) | NEW_IN_314
    assert "compression" in stdlib
    tops = {p.name for p in (ROOT / "src").iterdir() if (p / "__init__.py").exists() or p.suffix == ".py"}
    assert tops == {"compression_bench"}
    assert not tops & stdlib
    scripts = _config()["project"]["scripts"]
    for target in scripts.values():
        assert target.split(".")[0] == "compression_bench"


def test_requires_python_has_no_upper_cap():
    spec = _config()["project"]["requires-python"]
    assert spec.startswith(">=3.11") and "<" not in spec


def test_importing_the_suite_leaves_the_name_compression_to_the_standard_library():
    code = ("import sys, compression_bench.compression, compression_bench.zoo, compression_bench.benchmarks.variants.cached; "
            "m = sys.modules.get('compression'); print(getattr(m, '__file__', None) or 'not imported')")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd="/", check=True)
    # on 3.14 the standard library's own may be imported by something; never our folder
    assert str(ROOT) not in out.stdout and out.stdout.strip(), out.stdout


def test_nothing_at_the_root_or_in_the_tests_children_shadows_a_standard_library_module():
    """A child Python started from the repository root has the root on its path (``python -m`` and
    ``-c`` put the working directory first): no folder there may be importable as ``compression``,
    and the tests start their children with ``-P`` and no ``PYTHONPATH`` of the root anyway."""
    code = ("import importlib.util; s = importlib.util.find_spec('compression'); "
            "print(s.origin if s and s.origin else 'none')")
    for flags in (["-P"], []):
        out = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        assert not out.stdout.strip().startswith(str(ROOT)), out.stdout
    for test in sorted(set((ROOT / "tests").glob("test_*.py")) - {Path(__file__).resolve()}):
        text = test.read_text(encoding="utf-8")
        for launch in ('[sys.executable, "-m"', '[sys.executable, "-c"', "PYTHONPATH=str(ROOT)"):
            assert launch not in text, f"{test.name} starts a child with the source folders on its path: {launch}"
