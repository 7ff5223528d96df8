"""The pytest plugin of the benchmark suite: options, parametrization, fixtures, and hooks that forward
to a :class:`benchmarks.session.session.Session`, where the logic lives (no pytest there): the
options' values go to :meth:`benchmarks.settings.config.Config.from_options`, the one place settings are
read and checked.

The suite's own ``benchmarks/conftest.py`` loads it; in another repository a conftest.py loads it with
``pytest_plugins = ["compression_bench.benchmarks.plugin"]`` and a test module imports the test,
``from compression_bench.benchmarks.suite import test_variant``.

Every gate is asserted in the variant's own test; the session end only lists them. Exit statuses:
0 all gates passed; 1 a gate failed; 4 bad input (before anything trains); 6 no gate failed but some
speed gates were inconclusive (the machine was too busy: retry); 7 the cache or the report files could
not be read or written (:mod:`benchmarks.errors`). The plugin is the top layer: it opens the MLflow
tracker (checked before anything trains) and runs the session end
(:func:`benchmarks.reporting.session_end.finish`), which the session below it does not know.
"""
from __future__ import annotations

import os
import time

import pytest

from compression_bench import compression, zoo
from compression_bench.benchmarks import benchmark_fixture, runtimes
from compression_bench.benchmarks.errors import SessionError
from compression_bench.benchmarks.measurement import heap
from compression_bench.benchmarks.reporting import session_end, tracking
from compression_bench.benchmarks.results.schema import Record
from compression_bench.benchmarks.session import slices
from compression_bench.benchmarks.session.session import RECORD_KEY, Session
from compression_bench.benchmarks.settings import options
from compression_bench.benchmarks.settings.config import Config


def pytest_addoption(parser):
    options.add_zoo_options(parser)
    g = parser.getgroup("compression-bench", "compression benchmark")
    names = {"models": ", ".join(zoo.list_models()), "methods": ", ".join(compression.list_methods()),
             "runtimes": ", ".join(runtimes.list_runtimes())}
    for option in options.OPTIONS:
        g.addoption(option.flag, **option.kwargs(**names))


def _say(config):
    """Progress goes straight to the terminal, even while pytest captures output."""
    def say(message: str) -> None:
        capman, tr = (config.pluginmanager.getplugin(p) for p in ("capturemanager", "terminalreporter"))
        if tr is not None and capman is not None:
            with capman.global_and_fixture_disabled():
                tr.write_line(message)
    return say


def _fail(err: SessionError):
    if err.code == pytest.ExitCode.USAGE_ERROR:
        raise pytest.UsageError(str(err)) from None
    pytest.exit(str(err), returncode=err.code)


def pytest_configure(config):
    if config.option.help:
        return
    values = {dest: config.getoption(dest) for dest in options.dests()}
    try:
        try:
            benchmark_fixture.check()
        except benchmark_fixture.FixtureChanged as err:
            raise SessionError(str(err)) from None
        settings = Config.from_options(values, comparing=bool(config.getoption("benchmark_compare", None)))
        s = Session(settings, say=_say(config), root=config.rootpath)
        s.workspace.check_data()
        try:  # the plugin, the top layer, logs the session: the session itself knows no tracker
            config._compression_bench_tracker = tracking.open_tracker(settings.mlflow_uri, settings.mlflow_experiment)
        except tracking.TrackingError as err:
            raise SessionError(str(err)) from None
    except SessionError as err:
        _fail(err)
    parallel = config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None)
    if parallel and config.getoption("benchmark_only", False):
        raise pytest.UsageError(
            "--benchmark-only cannot time under xdist (-n): prepare and gate in parallel with "
            "'pytest benchmarks/ -n auto --benchmark-disable', then time serially with "
            "'pytest benchmarks/ --benchmark-only'.")
    if parallel and not hasattr(config, "workerinput"):
        # spinning OpenMP waits take the cores from the other worker (two 2-thread trainings on 2 cores:
        # 77 s each, 35 s with passive waits); workers inherit it, and it changes no result
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # timed inferences run on memory that stays mapped (src/compression_bench/benchmarks/measurement/heap.py: the cause of an 18 vs 28 ms
    # LeNet); set once per process, before anything is timed
    s.heap = heap.steady_heap()
    config._compression_bench = s
    config.pluginmanager.register(_Records(s), "compression-bench-records")


class _Records:
    """Hands each test's record (user_properties) to the session; serial runs and xdist's controller see all."""

    def __init__(self, session: Session):
        self.session = session

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == RECORD_KEY:
                # named by the test id, as pytest-benchmark names the benchmark: saved runs are matched on it
                self.session.judge.add(Record.from_dict(dict(value, name=report.nodeid.rsplit("::", 1)[-1])))


def _session(config) -> Session | None:
    return getattr(config, "_compression_bench", None)


def pytest_generate_tests(metafunc):
    if "method_id" not in metafunc.fixturenames:
        return
    c = _session(metafunc.config).config
    cases = c.cases()
    # the ids are what saved runs are matched on: test_variant[<model>-<method>-bs<batch>-t<threads>] on eager,
    # test_variant[<model>-<method>-<runtime>-bs<batch>-t<threads>] on another runtime; seeds after the
    # first (--zoo-seeds) add -seed<k> after the runtime
    metafunc.parametrize(("model_name", "method_id", "runtime", "zoo_seed"), cases,
                         ids=[f"{m}-{k}" + ("" if r == "eager" else f"-{r}") + (f"-seed{s}" if s else "")
                              for m, k, r, s in cases])
    metafunc.parametrize("batch_size", c.batch_sizes, ids=[f"bs{n}" for n in c.batch_sizes])
    metafunc.parametrize("threads", c.thread_counts, ids=[f"t{n}" for n in c.thread_counts])


#: the test's parameters that name a case, in the order :func:`slices.time_slices` takes them
CASE_PARAMS = ("model_name", "method_id", "runtime", "zoo_seed", "batch_size", "threads")


@pytest.fixture(scope="session")
def bench(request) -> Session:
    """The session; when timing, the speed slices of every selected test are timed first
    (:mod:`benchmarks.session.slices`), so that each test pools them with its own."""
    s = _session(request.config)
    timer = getattr(request.config, "_benchmarksession", None)
    if timer is not None and not timer.disabled and not timer.skip:
        cases = [tuple(item.callspec.params[p] for p in CASE_PARAMS) for item in request.session.items
                 if all(p in getattr(getattr(item, "callspec", None), "params", {}) for p in CASE_PARAMS)]
        # --benchmark-timer, as the tests use it (pytest-benchmark keeps it wrapped)
        clock = getattr(getattr(timer, "options", {}).get("timer"), "target", None) or time.perf_counter
        try:
            slices.time_slices(s, cases, clock)
        except SessionError as err:
            _fail(err)
    return s


def pytest_report_header(config):
    s = _session(config)
    if s is None:
        return None
    from compression_bench.benchmarks.measurement.machine import describe
    return [f"compression-bench machine: {describe(s.machine)}",
            f"compression-bench machine key: {s.machine['key']} (speed gates for class {s.judge.cpu_class})"]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["compression_bench"] = _session(config).machine_info()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    s = _session(config)
    if hasattr(config, "workerinput") or s is None:
        return
    bench_session = getattr(config, "_benchmarksession", None)
    config._compression_bench_outcome = outcome = session_end.finish(
        s, getattr(bench_session, "compared_mapping", None), getattr(config, "_compression_bench_tracker", None))
    if session.exitstatus == 0:
        session.exitstatus = outcome.status


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    outcome = getattr(config, "_compression_bench_outcome", None)
    if hasattr(config, "workerinput") or outcome is None or not outcome.records:
        return
    tr = terminalreporter
    tr.section("compression benchmark")
    for line, style in outcome.lines:
        if style == "section":
            tr.section(line, red=True)
        elif style == "section-warn":
            tr.section(line, yellow=True)
        else:
            tr.write_line(line, **({style: True} if style else {}))
