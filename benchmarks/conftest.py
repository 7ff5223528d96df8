"""The pytest layer of the benchmark suite: options, parametrization, fixtures, gates, reports.

Plain logic lives in ``benchmarks.pipeline`` (variants and metrics), ``benchmarks.thresholds``
(gates) and ``benchmarks.report`` (tables, files); this module wires them into pytest.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

import compression
import zoo
from benchmarks import compare, pipeline, plots, recommend, report
from benchmarks.thresholds import Thresholds, ThresholdsError, ratio_failures

RECORD_KEY = "compression_bench_record"


def pytest_addoption(parser):
    g = parser.getgroup("compression-bench", "compression benchmark")
    g.addoption("--zoo-models", default=None,
                help=f"comma-separated models (default: all: {', '.join(zoo.list_models())})")
    g.addoption("--compression-methods", default=None,
                help=f"comma-separated method ids (default: all: {', '.join(compression.list_methods())})")
    g.addoption("--latency-batch-size", default="64",
                help="batch size(s) for latency, comma-separated, e.g. 1,64 (default: 64)")
    g.addoption("--latency-warmup", type=int, default=3, help="warm-up rounds before timing (default: 3)")
    g.addoption("--latency-target-s", type=float, default=2.0,
                help="seconds of timed rounds per test, split evenly between a variant and the original timed "
                     "alongside it; sets each round count between 10 and 300 (default: 2.0)")
    g.addoption("--report-dir", default="reports",
                help="where report.md, results.json and results.csv go (default: ./reports)")
    g.addoption("--thresholds", default=None,
                help="TOML file of accuracy, speed and size gates (default: benchmarks/thresholds.toml)")
    g.addoption("--bench-threads", type=int, default=None,
                help="torch threads (default: usable cores divided among xdist workers)")
    g.addoption("--recommend-within", type=float, default=1.0, metavar="POINTS",
                help="report.md recommends the smallest and the fastest variant whose accuracy is within "
                     "this many points of the original's (default: 1.0)")
    g.addoption("--compare-fail-accuracy", type=float, default=None, metavar="POINTS",
                help="with --benchmark-compare: fail when any variant's accuracy dropped by more than this many "
                     "points against the compared run")


def _names(text: str | None, valid: list[str], what: str, option: str) -> list[str]:
    if text is None:
        return list(valid)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise pytest.UsageError(f"{option} selects no {what}; valid {what}s are: {', '.join(valid)}")
    bad = [n for n in names if n not in valid]
    if bad:
        raise pytest.UsageError(f"unknown {what} {', '.join(map(repr, bad))} in {option}; "
                                f"valid {what}s are: {', '.join(valid)}")
    return names


def _batch_sizes(text: str) -> list[int]:
    out = []
    for part in str(text).split(","):
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value < 1:
            raise pytest.UsageError(f"--latency-batch-size takes positive integers such as 1,64; got {text!r}")
        out.append(value)
    return sorted(set(out))


def _threads(config) -> int:
    chosen = config.getoption("--bench-threads")
    if chosen:
        return chosen
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, cores // max(1, workers))


class Bench:
    """Session state: selections, caches of trained models and variants, collected records."""

    def __init__(self, config):
        self.config = config
        opt = lambda name, env, default=None: config.getoption(name) or os.environ.get(env) or default  # noqa: E731
        try:
            self.profile = zoo.get_profile(opt("--zoo-profile", "ZOO_PROFILE"))
        except zoo.UnknownProfileError as err:
            raise pytest.UsageError(str(err)) from None
        self.models = _names(config.getoption("--zoo-models"), zoo.list_models(), "model", "--zoo-models")
        self.methods = _names(config.getoption("--compression-methods"), compression.list_methods(),
                              "method", "--compression-methods")
        self.batch_sizes = _batch_sizes(config.getoption("--latency-batch-size"))
        try:
            self.thresholds = Thresholds.load(config.getoption("--thresholds"), models=zoo.list_models(),
                                              methods=compression.list_methods(), profiles=zoo.PROFILES)
        except ThresholdsError as err:
            raise pytest.UsageError(str(err)) from None
        self.cache = zoo.ArtifactCache(opt("--zoo-cache", "ZOO_CACHE"))
        try:
            self.cache.check_writable()
        except zoo.CacheError as err:
            raise pytest.UsageError(str(err)) from None
        self.data_root = opt("--zoo-data-root", "ZOO_DATA_ROOT")
        self.download = bool(config.getoption("--zoo-download"))
        self.train_device = opt("--zoo-train-device", "ZOO_TRAIN_DEVICE", "cpu")
        self.report_dir = Path(config.getoption("--report-dir"))
        self.within = config.getoption("--recommend-within")
        self.compare_fail = config.getoption("--compare-fail-accuracy")
        self.comparison: compare.Comparison | None = None
        self.plots: plots.PlotResult | None = None
        self.notices: list[str] = []
        self.regressions: list[str] = []
        self.threads = _threads(config)
        torch.set_num_threads(self.threads)
        self._trained: dict[str, zoo.TrainedModel] = {}
        self._variants: dict[tuple[str, str], pipeline.Variant] = {}
        self.records: list[dict] = []
        self.failures: list[str] = []
        self.paths: dict = {}

    # progress goes straight to the terminal, even while pytest captures output
    def say(self, message: str) -> None:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        tr = self.config.pluginmanager.getplugin("terminalreporter")
        if tr is None or capman is None:
            return
        with capman.global_and_fixture_disabled():
            tr.write_line(message)

    def _progress(self, r: zoo.EpochReport) -> None:
        acc = "" if r.val_accuracy is None else f", val {r.val_accuracy:.2f}%"
        self.say(f"  [{r.tag}] epoch {r.epoch}/{r.epochs}, loss {r.loss:.4f}{acc}, {r.seconds:.1f}s")

    def trained(self, name: str) -> zoo.TrainedModel:
        if name not in self._trained:
            t0 = time.perf_counter()
            try:
                tm = zoo.get_trained(name, self.profile, cache=self.cache, data_root=self.data_root,
                                     download=self.download, device=self.train_device, progress=self._progress)
            except zoo.DataError as err:
                pytest.exit(f"{err}", returncode=4)
            if not tm.from_cache:
                self.say(f"  [{name}] trained in {time.perf_counter() - t0:.1f}s, accuracy {tm.accuracy:.2f}%")
            self._trained[name] = tm
        return self._trained[name]

    def variant(self, name: str, method: str) -> pipeline.Variant:
        key = (name, method)
        if key not in self._variants:
            self._variants[key] = pipeline.get_variant(self.trained(name), method, self.cache,
                                                       log=lambda m: self.say("  " + m), progress=self._progress)
        return self._variants[key]


def _check_report_options(config) -> None:
    within = config.getoption("--recommend-within")
    if not within >= 0:
        raise pytest.UsageError(f"--recommend-within takes a number of points >= 0, such as 1.0; got {within}")
    fail = config.getoption("--compare-fail-accuracy")
    if fail is not None:
        if not fail >= 0:
            raise pytest.UsageError(f"--compare-fail-accuracy takes a number of points >= 0, such as 0.5; got {fail}")
        if not config.getoption("benchmark_compare", None):
            raise pytest.UsageError("--compare-fail-accuracy needs a run to compare against: add "
                                    "--benchmark-compare (the latest saved run) or --benchmark-compare=0001.")


def _check_data(b: Bench) -> None:
    """Fail before collection when a selected model's dataset (mnist, cifar10) is not there,
    rather than at its first test, after the models before it have trained. Loading is cheap
    next to training, and ``zoo.get_data`` keeps what it loaded for the session."""
    for name in b.models:
        if b.profile.dataset_for(name) == "digits":
            continue
        try:
            zoo.get_data(name, b.profile, data_root=b.data_root, download=b.download)
        except zoo.DataError as err:
            raise pytest.UsageError(str(err)) from None


def pytest_configure(config):
    _records.clear()
    _check_report_options(config)
    config._compression_bench = Bench(config)
    parallel = config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None)
    if parallel and config.getoption("benchmark_only", False):
        raise pytest.UsageError(
            "--benchmark-only cannot time under xdist (-n): prepare and gate in parallel with "
            "'pytest benchmarks/ -n auto --benchmark-disable', then time serially with "
            "'pytest benchmarks/ --benchmark-only'.")
    if parallel and not hasattr(config, "workerinput"):
        # Every worker trains with ZOO_TRAIN_THREADS threads, so together they run more threads than
        # there are cores, and OpenMP threads that spin while they wait take the cores from the other
        # worker: two 2-thread trainings at once on 2 cores took 77 s each, 35 s with passive waits.
        # Workers inherit this environment; the wait policy does not change any result.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not config.option.help:
        _check_data(config._compression_bench)


def _bench(config) -> Bench:
    return config._compression_bench


def pytest_generate_tests(metafunc):
    if "method_id" not in metafunc.fixturenames:
        return
    b = _bench(metafunc.config)
    cases = [(m, k) for m in b.models for k in b.methods]
    metafunc.parametrize(("model_name", "method_id"), cases, ids=[f"{m}-{k}" for m, k in cases])
    metafunc.parametrize("batch_size", b.batch_sizes, ids=[f"bs{n}" for n in b.batch_sizes])


@pytest.fixture(scope="session")
def bench(pytestconfig) -> Bench:
    return _bench(pytestconfig)


@pytest.fixture
def trained(bench, model_name) -> zoo.TrainedModel:
    """The trained float model, from the cache (trained on first use)."""
    return bench.trained(model_name)


@pytest.fixture
def variant(bench, trained, method_id) -> pipeline.Variant:
    """The compressed variant, from the cache (built on first use)."""
    return bench.variant(trained.name, method_id)


def pytest_benchmark_update_machine_info(config, machine_info):
    b = _bench(config)
    import sklearn
    import torch_pruning
    import torchvision
    machine_info["compression_bench"] = {
        "profile": b.profile.name, "threads": b.threads, "torch": torch.__version__,
        "torchvision": torchvision.__version__, "torch_pruning": torch_pruning.__version__,
        "scikit_learn": sklearn.__version__, "quantized_engine": torch.backends.quantized.engine,
        "batch_sizes": b.batch_sizes,
    }


def pytest_runtest_logreport(report):
    # serial runs and the xdist controller both see every report; records travel in user_properties
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == RECORD_KEY:
            # the test id, as pytest-benchmark names the benchmark: saved runs are matched on it
            _records.append(dict(value, name=report.nodeid.rsplit("::", 1)[-1]))


_records: list[dict] = []


def _header(b: Bench, records: list[dict]) -> dict:
    import torch_pruning
    import torchvision
    header = report.run_header(records, profile=b.profile.name, batch_sizes=b.batch_sizes, threads=b.threads,
                               versions={"torch": torch.__version__, "torchvision": torchvision.__version__,
                                         "torch-pruning": torch_pruning.__version__},
                               repo=b.config.rootpath)
    if b.comparison is not None:
        header["Compared against"] = b.comparison.a
    return header


def _compare(config, b: Bench, records: list[dict]) -> None:
    """Accuracy, size, params and latency against the run loaded by --benchmark-compare."""
    if not config.getoption("benchmark_compare", None):
        return
    session = getattr(config, "_benchmarksession", None)
    problem = None
    try:
        b.comparison = compare.session_comparison(getattr(session, "compared_mapping", None), records)
    except compare.CompareError as err:
        problem = f"accuracy and size not compared: {err}"
    else:
        if b.comparison is None:
            problem = "accuracy and size not compared: no saved run matched --benchmark-compare."
    if problem:
        b.notices.append(problem)
        if b.compare_fail is not None:
            b.regressions.append(f"--compare-fail-accuracy could not be checked: {problem}")
    elif b.compare_fail is not None:
        b.regressions += compare.accuracy_regressions(b.comparison, b.compare_fail)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput") or not _records:
        return
    b = _bench(config)
    records = report.add_ratios(sorted(_records, key=lambda r: (b.models.index(r["model"]),
                                                                 b.methods.index(r["method"]), r["batch_size"])))
    b.records = records
    for r in records:
        if r["method"] == "original":
            continue
        gates = b.thresholds.gates(r["model"], r["method"], b.profile.name)
        b.failures += ratio_failures(r["model"], r["method"], r["batch_size"], speedup=r.get("speedup"),
                                     size_ratio=r.get("size_ratio"), gates=gates)
    drift = report.drift_notice(records)
    if drift:
        b.notices.append(drift)
    _compare(config, b, records)
    b.plots = plots.make_plots(records, b.report_dir, within=b.within, method_order=b.methods)
    b.paths = report.write_results(records, _header(b, records), b.report_dir, within=b.within,
                                   method_order=b.methods, comparison=b.comparison, plots=b.plots,
                                   notices=b.notices)
    if (b.failures or b.regressions) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    b = _bench(config)
    if not b.records:
        return
    tr = terminalreporter
    tr.section("compression benchmark")
    tr.write_line(report.render_tables(b.records))
    tr.write_line("")
    if b.comparison is not None:
        tr.write_line(f"changes against {b.comparison.a} (A, the compared run) in this run (B): accuracy in points "
                      f"B − A, size, params and latency as ratios B/A")
        tr.write_line("")
        tr.write_line(b.comparison.render())
        tr.write_line("")
        for line in b.comparison.summary():
            tr.write_line(line)
        tr.write_line("")
    lines = report.drift_lines(b.records)
    if lines:
        tr.write_line("timing stability (the original's latency each time it was timed in this run):")
        for line in lines:
            tr.write_line("  " + line)
        tr.write_line("")
    tr.write_line(f"recommendations (within {recommend.points(b.within)} of the original's accuracy):")
    for line in report.render_recommendations(b.records, within=b.within, method_order=b.methods):
        tr.write_line("  " + line)
    tr.write_line("")
    for note in b.notices + (b.plots.notices if b.plots else []):
        tr.write_line(note, yellow=True)
    tr.write_line(f"results: {', '.join(str(p) for p in b.paths.values())}")
    if b.plots and b.plots.paths:
        tr.write_line(f"plots: {len(b.plots.paths)} PNG files in {b.report_dir}")
    if b.failures:
        tr.section("speed and size gates failed", red=True)
        for msg in b.failures:
            tr.write_line(msg, red=True)
    if b.regressions:
        tr.section("accuracy dropped against the compared run", red=True)
        for msg in b.regressions:
            tr.write_line(msg, red=True)
