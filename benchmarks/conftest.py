"""The pytest layer of the benchmark suite: options, parametrization, fixtures, reports.

Plain logic lives in ``benchmarks.options`` (option checks), ``benchmarks.pipeline`` (variants and
metrics), ``benchmarks.timing`` (paired timing), ``benchmarks.thresholds`` (gates) and
``benchmarks.report`` (tables, files); this module wires them into pytest. Every gate is asserted
in the variant's own test; the session end only lists them.

Exit statuses: 0 all gates passed; 1 a gate failed; 4 bad input (before anything trains);
6 no gate failed but some speed gates were inconclusive (the machine was too busy: retry);
7 the cache or the report files could not be read or written.
"""
from __future__ import annotations

import os
import time

import pytest
import torch

from compression_bench import compression
from compression_bench import zoo
from compression_bench.benchmarks import compare, options, pipeline, plots, report, summary, timing
from compression_bench.benchmarks.thresholds import Thresholds, ThresholdsError
from compression_bench.zoo.keys import package_versions

RECORD_KEY = "compression_bench_record"


EXIT_INCONCLUSIVE, EXIT_FAULT = summary.EXIT_INCONCLUSIVE, summary.EXIT_FAULT


def pytest_addoption(parser):
    g = parser.getgroup("compression-bench", "compression benchmark")
    g.addoption("--zoo-models", default=None,
                help=f"comma-separated models (default: all: {', '.join(zoo.list_models())})")
    g.addoption("--compression-methods", default=None,
                help=f"comma-separated method ids (default: all: {', '.join(compression.list_methods())})")
    g.addoption("--latency-batch-size", default="64",
                help=f"batch size(s) for latency, comma-separated, 1 to {options.MAX_BATCH_SIZE}, e.g. 1,64 "
                     f"(default: 64)")
    g.addoption("--latency-warmup", type=int, default=3,
                help=f"warm-up rounds before timing, 0 to {options.MAX_WARMUP} (default: 3)")
    g.addoption("--latency-target-s", type=float, default=2.0,
                help="seconds of timed rounds per test, split evenly between a variant and the original timed "
                     "alongside it; sets each round count between 10 and 300 (default: 2.0)")
    g.addoption("--report-dir", default="reports",
                help="where report.md, results.json and results.csv go; checked before anything trains "
                     "(default: ./reports)")
    g.addoption("--thresholds", default=None,
                help="TOML file of accuracy, speed and size gates (default: benchmarks/thresholds.toml)")
    g.addoption("--bench-threads", default="1",
                help="torch threads for timing, comma-separated, e.g. 1,2 times every variant at both; part of "
                     "the test id (default: 1, the most repeatable)")
    g.addoption("--max-timing-drift", type=float, default=timing.MAX_DRIFT, metavar="FRACTION",
                help="largest change of the original's speed within one test, (max - min) / median of its timed "
                     "blocks, that speed gates are judged on; above it the test is timed again, at most "
                     f"{timing.MAX_ATTEMPTS} times in all, then its speed gates are inconclusive "
                     f"(default: {timing.MAX_DRIFT})")
    g.addoption("--recommend-within", type=float, default=1.0, metavar="POINTS",
                help="report.md recommends the smallest and the fastest variant whose accuracy is within "
                     "this many points of the original's (default: 1.0)")
    g.addoption("--compare-fail-accuracy", type=float, default=None, metavar="POINTS",
                help="with --benchmark-compare: fail when any variant's accuracy dropped by more than this many "
                     "points against the compared run")


class Bench:
    """Session state: checked selections, trained models and variants, collected records."""

    def __init__(self, config):
        self.config = config
        opt = lambda name, env, default=None: config.getoption(name) or os.environ.get(env) or default  # noqa: E731
        try:
            self.profile = zoo.get_profile(opt("--zoo-profile", "ZOO_PROFILE"))
            self.models = options.names(config.getoption("--zoo-models"), zoo.list_models(), "model", "--zoo-models")
            self.methods = options.names(config.getoption("--compression-methods"), compression.list_methods(),
                                         "method", "--compression-methods")
            self.batch_sizes = options.batch_sizes(config.getoption("--latency-batch-size"))
            self.thread_counts = options.thread_counts(config.getoption("--bench-threads"))
            self.warmup = options.warmup(config.getoption("--latency-warmup"))
            self.target_s = options.target_seconds(config.getoption("--latency-target-s"))
            self.max_drift = options.fraction(config.getoption("--max-timing-drift"), "--max-timing-drift")
            self.within = options.points(config.getoption("--recommend-within"), "--recommend-within", "1.0")
            self.compare_fail = options.points(config.getoption("--compare-fail-accuracy"),
                                               "--compare-fail-accuracy", "0.5")
            self.train_device = opt("--zoo-train-device", "ZOO_TRAIN_DEVICE", "cpu")
            zoo.trained.resolve_device(self.train_device)
            zoo.training.train_threads()  # ZOO_TRAIN_THREADS
            self.thresholds = Thresholds.load(config.getoption("--thresholds"), models=zoo.list_models(),
                                              methods=compression.list_methods(), profiles=zoo.PROFILES)
            self.cache = zoo.ArtifactCache(opt("--zoo-cache", "ZOO_CACHE"))
            self.cache.check_writable()
            self.report_dir = options.report_dir(config.getoption("--report-dir"))
        except (zoo.UnknownProfileError, options.OptionError, ThresholdsError, zoo.CacheError, ValueError) as err:
            raise pytest.UsageError(str(err)) from None
        if self.compare_fail is not None and not config.getoption("benchmark_compare", None):
            raise pytest.UsageError("--compare-fail-accuracy needs a run to compare against: add "
                                    "--benchmark-compare (the latest saved run) or --benchmark-compare=0001.")
        self.data_root = opt("--zoo-data-root", "ZOO_DATA_ROOT")
        self.download = bool(config.getoption("--zoo-download"))
        self.comparison: compare.Comparison | None = None
        self.plots: plots.PlotResult | None = None
        self.notices: list[str] = []
        self.regressions: list[str] = []
        self.unwritten: list[str] = []
        self._trained: dict[str, zoo.TrainedModel] = {}
        self._variants: dict[tuple[str, str], pipeline.Variant] = {}
        self.records: list[dict] = []
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
                                     download=self.download, device=self.train_device, progress=self._progress,
                                     log=lambda m: self.say("  " + m))
            except zoo.DataError as err:
                pytest.exit(f"{err}", returncode=pytest.ExitCode.USAGE_ERROR)
            except zoo.CacheError as err:
                pytest.exit(str(err), returncode=EXIT_FAULT)
            if not tm.from_cache:
                self.say(f"  [{name}] trained in {time.perf_counter() - t0:.1f}s, accuracy {tm.accuracy:.2f}%")
            self._trained[name] = tm
        return self._trained[name]

    def variant(self, name: str, method: str) -> pipeline.Variant:
        key = (name, method)
        if key not in self._variants:
            try:
                self._variants[key] = pipeline.get_variant(self.trained(name), method, self.cache,
                                                           log=lambda m: self.say("  " + m),
                                                           progress=self._progress)
            except zoo.CacheError as err:
                pytest.exit(str(err), returncode=EXIT_FAULT)
        return self._variants[key]


def _check_data(b: Bench) -> None:
    """Fail before collection when a selected model's dataset (mnist, cifar10) is not there or is
    unreadable, rather than at its first test, after the models before it have trained. Loading is
    cheap next to training, and ``zoo.get_data`` keeps what it loaded for the session."""
    for name in b.models:
        if b.profile.dataset_for(name) == "digits":
            continue
        try:
            zoo.get_data(name, b.profile, data_root=b.data_root, download=b.download)
        except zoo.DataError as err:
            raise pytest.UsageError(str(err)) from None


def pytest_configure(config):
    _records.clear()
    if config.option.help:
        return
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
    metafunc.parametrize("threads", b.thread_counts, ids=[f"t{n}" for n in b.thread_counts])


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
    versions = package_versions("torch", "torchvision", "torch-pruning", "scikit-learn")
    machine_info["compression_bench"] = {
        "profile": b.profile.name, "threads": b.thread_counts, **versions,
        "quantized_engine": torch.backends.quantized.engine, "batch_sizes": b.batch_sizes,
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
    versions = package_versions("torch", "torchvision", "torch-pruning")
    header = report.run_header(records, profile=b.profile.name, batch_sizes=b.batch_sizes,
                               threads=", ".join(map(str, b.thread_counts)), versions=versions,
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


def _order(b: Bench, r: dict):
    model = b.models.index(r["model"]) if r["model"] in b.models else len(b.models)
    method = b.methods.index(r["method"]) if r["method"] in b.methods else len(b.methods)
    return model, method, r["batch_size"], r.get("threads") or 0


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput") or not _records or not hasattr(config, "_compression_bench"):
        return
    b = _bench(config)
    records = report.add_ratios(sorted(_records, key=lambda r: _order(b, r)))
    b.records = records
    drift = report.drift_notice(records)
    if drift:
        b.notices.append(drift)
    _compare(config, b, records)
    b.plots = plots.make_plots(records, b.report_dir, within=b.within, method_order=b.methods)
    b.paths, b.unwritten = report.write_results(records, _header(b, records), b.report_dir, within=b.within,
                                                method_order=b.methods, comparison=b.comparison, plots=b.plots,
                                                notices=b.notices)
    if session.exitstatus == 0:
        if b.regressions:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif b.unwritten:
            session.exitstatus = EXIT_FAULT
        elif any(r.get("inconclusive") for r in records):
            session.exitstatus = EXIT_INCONCLUSIVE


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput") or not hasattr(config, "_compression_bench"):
        return
    b = _bench(config)
    if not b.records:
        return
    tr = terminalreporter
    tr.section("compression benchmark")
    for line, style in summary.lines(b.records, within=b.within, method_order=b.methods, comparison=b.comparison,
                                     notices=b.notices + (b.plots.notices if b.plots else []), paths=b.paths,
                                     unwritten=b.unwritten, plots=b.plots, report_dir=b.report_dir,
                                     regressions=b.regressions):
        if style == "section":
            tr.section(line, red=True)
        elif style == "section-warn":
            tr.section(line, yellow=True)
        else:
            tr.write_line(line, **({style: True} if style else {}))
