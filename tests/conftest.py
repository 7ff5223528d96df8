"""Shared by the tests: tiers, the in-process suite runner, and a clean environment for children.

Tiers. ``pytest tests/`` runs the fast tier: unit and in-process integration tests. Tests marked
``e2e`` (the suite end to end in a child process), ``timing`` (real speedups, page faults: they depend
on the machine's speed) and ``slow`` (real architectures and compilers, minutes) are left out unless a
``-m`` expression is given, e.g. ``pytest tests/ -m "e2e or timing or slow" -n 2`` (CI runs both).

pytest-xdist marks its workers with ``PYTEST_XDIST_*`` variables; a ``pytest benchmarks/`` started
from a test inherits them, and pytest-benchmark then disables timing. Removing them per test lets
``pytest tests/ -n 2`` run the end-to-end tests as a serial run does.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import types

import pytest

SLOW_TIERS = ("e2e", "timing", "slow")
ZOO_VARIABLES = ("ZOO_PROFILE", "ZOO_CACHE", "ZOO_DATA_ROOT", "ZOO_TRAIN_DEVICE", "ZOO_TRAIN_THREADS",
                 "ZOO_SEEDS", "ZOO_STEADY_HEAP")


def pytest_collection_modifyitems(config, items):
    if config.option.markexpr:  # an explicit -m chooses the tier
        return
    fast, left_out = [], []
    for item in items:
        (left_out if any(item.get_closest_marker(m) for m in SLOW_TIERS) else fast).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = fast


def pytest_report_header(config):
    if not config.option.markexpr:
        return ("fast tier: tests marked e2e, timing or slow are left out; "
                "run them with -m 'e2e or timing or slow'")


@pytest.fixture(autouse=True)
def _no_xdist_marks_for_subprocesses(monkeypatch):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _whole_package() -> None:
    """Every module of the project imported, before any ``pytester`` fixture starts: pytester removes
    the modules imported during a test when it ends, and a registry entry whose class's module was
    removed (or a module imported twice, registering twice) breaks later tests."""
    import importlib
    import pkgutil

    import compression_bench.benchmarks
    import compression_bench.compression
    import compression_bench.zoo
    for package in (compression_bench.zoo, compression_bench.compression, compression_bench.benchmarks):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.rsplit(".", 1)[-1].startswith(("test_", "conftest")):
                importlib.import_module(info.name)
    # torch's own module that registers the quantized_decomposed operators when static INT8 is first
    # converted: imported again in a second in-process run, it fails "Only a single TORCH_LIBRARY ..."
    importlib.import_module("torch.ao.quantization.fx._decomposed")
    # the importlib_metadata backport (imported by MLflow, in a session that tracks) appends its finder to
    # sys.meta_path and deletes the stdlib PathFinder's find_distributions when first imported; imported
    # in a pytester run, the finder is dropped at its end (pytester restores sys.meta_path) while the
    # deletion stays: no distribution is found any more, so the next in-process run loads no pytest11
    # entry point (pytest-benchmark: "unrecognized arguments: --benchmark-only").
    # torch.export, which the onnxruntime runtime's exporter imports on its first export: it imports
    # torch._inductor modules that register in torch.compiler's artifact factory (kept, being imported
    # before the run); imported again in a later run, "Artifact of type=autotune already registered"
    for name in ("importlib_metadata", "torch.export._trace", "torch.onnx._internal.exporter._core"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


SHARED_MODEL = "EnhancedLeNet5"  # trains in about two seconds on the smoke profile


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """A cache holding the smoke profile's trained ``EnhancedLeNet5``, built once per test session and
    shared by every xdist worker (a lock in the workers' common temporary root): for tests that need
    a trained model, not its training. Read-only: a test that writes to a cache copies it first
    (:func:`copy_of`); a test about building uses an empty cache of its own."""
    from filelock import FileLock

    from compression_bench import zoo
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") or root.name.startswith("popen-gw"):
        root = root.parent  # the workers' common root
    path = root / "shared-smoke-cache"
    with FileLock(str(path) + ".lock"):
        if not (path / "complete").exists():
            zoo.get_trained(SHARED_MODEL, "smoke", cache=zoo.ArtifactCache(path), progress=None)
            (path / "complete").write_text("")
    return path


def copy_of(shared, destination):
    """A writable copy of the shared cache at ``destination``."""
    shutil.copytree(shared, destination, ignore=shutil.ignore_patterns("complete", "*.lock"))
    return destination


@pytest.fixture
def smoke_cache_copy(smoke_cache, tmp_path):
    """A writable copy of :func:`smoke_cache` in the test's own temporary directory."""
    return copy_of(smoke_cache, tmp_path / "cache")


@pytest.fixture
def suite_inprocess(_whole_package, pytester, monkeypatch, tmp_path):
    """``run(*args, env={})``: the benchmark suite's pytest plugin run in this process (pytester) on
    the smoke profile with a cache of the test's own, as a ``subprocess.CompletedProcess``-like result
    (``returncode``, ``stdout``, ``stderr``). For runs that stop in ``pytest_configure`` (bad input,
    missing data), before anything is collected: milliseconds instead of a child that imports torch.
    One child per exit status (tests marked ``e2e``) proves the same wiring from the command line."""

    def run(*args, env=None):
        env = {"ZOO_CACHE": str(tmp_path / "cache"), **(env or {})}
        for name in ZOO_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        profile = () if "ZOO_PROFILE" in env or any(str(a).startswith("--zoo-profile") for a in args) \
            else ("--zoo-profile", "smoke")
        report = () if any(str(a).startswith("--report-dir") for a in args) \
            else ("--report-dir", str(tmp_path / "report"))
        if not any(getattr(f, "find_distributions", None) for f in sys.meta_path):  # see _whole_package
            pytest.fail("no finder on sys.meta_path finds distributions (a module imported in an earlier "
                        "in-process run removed it): this run would load no pytest11 plugin; import that "
                        "module in _whole_package")
        # -p, not a conftest: loaded whatever paths the arguments name (a conftest is found from them)
        r = pytester.runpytest_inprocess("-p", "compression_bench.benchmarks.plugin", "-p", "no:cacheprovider", *profile, *report, "--latency-target-s", "0.05",
                                         "--latency-warmup", "1", "--float-baselines", "none",
                                         "--peak-memory", "off", *map(str, args))
        return types.SimpleNamespace(returncode=int(r.ret), stdout="\n".join(r.outlines),
                                     stderr="\n".join(r.errlines))
    run.path = pytester.path  # where the run starts: a test file written there is collected
    return run
