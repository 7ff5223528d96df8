"""A benchmark session's configuration: every setting it uses, checked and typed, in one frozen
:class:`Config`. No pytest.

:meth:`Config.from_options` is the one place the settings are read: the option values by ``dest``
(:data:`benchmarks.settings.options.OPTIONS` and the zoo options), each zoo option falling back to its
environment variable (:data:`benchmarks.settings.options.ZOO_OPTIONS`), and the MLflow tracking URI to
``$MLFLOW_TRACKING_URI`` (:func:`benchmarks.settings.options.tracking_uri`). Every check runs there,
before anything trains: a bad value is a :class:`SessionError` (exit status 4) whose one sentence names
the option, what is valid and what was given.

    from compression_bench.benchmarks.settings.config import Config
    config = Config.from_options({"zoo_profile": "smoke", "zoo_models": "EnhancedLeNet5"})
    config.cases()                       # (model, method, runtime, seed) of every test
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from compression_bench import compression, zoo
from compression_bench.benchmarks import runtimes as runtimes_pkg
from compression_bench.benchmarks.settings import options
from compression_bench.benchmarks.errors import SessionError
from compression_bench.benchmarks.gates.thresholds import Thresholds, ThresholdsError


def _opt_in_models() -> str:
    """The registered models outside the default matrix, for the error of an unknown name."""
    optional = [m for m in zoo.list_models(include_optional=True) if m not in zoo.list_models()]
    return f"; opt-in: {', '.join(optional)}" if optional else ""


@dataclass(frozen=True)
class Config:
    """The checked settings of one session (the option each comes from in brackets).

    ``profile`` (``--zoo-profile``); the selections ``models``, ``methods``, ``runtimes`` and
    ``baselines`` (``--float-baselines``, less the runtimes already chosen); ``batch_sizes`` and
    ``thread_counts`` (sorted, distinct); ``seeds`` (how many of each model); ``measure_memory``
    (``--peak-memory``); the timing protocol's ``warmup``, ``target_s``, ``precision`` and ``slices`` (``--speed-slices``); ``within``
    (``--recommend-within``, points); ``compare_fail`` (``--compare-fail-accuracy``, points) and
    ``compare_fail_speedup`` (a fraction), which need ``comparing`` (``--benchmark-compare``);
    ``train_device`` as given (checked usable here); the loaded ``thresholds``; the ``cache``
    (writable); ``report_dir`` (created, writable); ``data_root`` and ``download``; ``mlflow_uri``
    (None: no logging) and ``mlflow_experiment`` (None: the default)."""
    profile: zoo.Profile
    models: tuple[str, ...]
    methods: tuple[str, ...]
    runtimes: tuple[str, ...]
    baselines: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    thread_counts: tuple[int, ...]
    seeds: int
    measure_memory: bool
    warmup: int
    target_s: float
    precision: float
    slices: int
    within: float
    compare_fail: float | None
    compare_fail_speedup: float | None
    train_device: str
    thresholds: Thresholds
    cache: zoo.ArtifactCache
    report_dir: Path
    data_root: str | None = None
    download: bool = False
    mlflow_uri: str | None = None
    mlflow_experiment: str | None = None
    comparing: bool = False

    @classmethod
    def from_options(cls, values: Mapping[str, object] | None = None, *, comparing: bool = False) -> Config:
        """The configuration of ``values``, which maps option ``dest`` names (:func:`options.dests`) to raw
        values as given on the command line, as text or as the option's ``type`` made them (``"3"`` or 3);
        missing ones (or None) take their defaults, a zoo option its environment variable. ``comparing``: a saved run will be compared against (``--benchmark-compare``)."""
        given = {k: v for k, v in (values or {}).items() if v is not None}
        given = {**{o.dest: o.default for o in options.OPTIONS}, **given}
        get = given.get

        def env(dest: str, default=None):
            return given.get(dest) or os.environ.get(options.ZOO_OPTIONS[dest]) or default
        try:
            profile = zoo.get_profile(env("zoo_profile"))
            models = options.names(get("zoo_models"), zoo.list_models(), "model", "--zoo-models",
                                   check=zoo.get_model_info, more=_opt_in_models())
            methods = options.names(get("compression_methods"), compression.list_methods(), "method",
                                    "--compression-methods", check=compression.get_method,
                                    more="; " + compression.other_forms())
            known = runtimes_pkg.list_runtimes()
            chosen = options.names(get("runtimes"), known, "runtime", "--runtimes")
            base = get("float_baselines")
            baselines = [] if str(base).strip().lower() == "none" else [
                r for r in options.names(base, known, "runtime", "--float-baselines") if r not in chosen]
            for name in chosen + baselines:  # a missing package fails the run now, with its pip command
                runtimes_pkg.check_available(runtimes_pkg.get_runtime(name))
            checked = dict(
                batch_sizes=tuple(options.batch_sizes(get("latency_batch_size"))),
                thread_counts=tuple(options.thread_counts(get("bench_threads"))),
                seeds=options.seeds(env("zoo_seeds")),
                measure_memory=options.on_off(get("peak_memory"), "--peak-memory"),
                warmup=options.warmup(get("latency_warmup")),
                target_s=options.target_seconds(get("latency_target_s")),
                slices=options.slices(get("speed_slices")),
                precision=options.fraction(get("speedup_precision"), "--speedup-precision"),
                within=options.points(get("recommend_within"), "--recommend-within", "1.0"),
                compare_fail=options.points(get("compare_fail_accuracy"), "--compare-fail-accuracy", "0.5"))
            train_device = env("zoo_train_device", "cpu")
            zoo.trained.resolve_device(train_device)
            zoo.training.train_threads()  # ZOO_TRAIN_THREADS, read where training runs: checked now
            thresholds = Thresholds.load(get("thresholds"), models=zoo.list_models(include_optional=True),
                                         methods=compression.list_methods(), profiles=zoo.PROFILES, runtimes=known)
            cache = zoo.ArtifactCache(env("zoo_cache"))
            cache.check_writable()
            report_dir = options.report_dir(get("report_dir"))
        except (zoo.UnknownProfileError, options.OptionError, ThresholdsError, zoo.CacheError, ValueError,
                runtimes_pkg.RuntimeUnavailableError) as err:
            raise SessionError(str(err)) from None
        try:
            speed = options.drop_fraction(get("compare_fail_speedup"), "--compare-fail-speedup")
        except options.OptionError as err:
            raise SessionError(str(err)) from None
        for flag, value in (("--compare-fail-speedup", speed), ("--compare-fail-accuracy", checked["compare_fail"])):
            if value is not None and not comparing:
                raise SessionError(f"{flag} needs a run to compare against: add --benchmark-compare "
                                   "(the latest saved run) or --benchmark-compare=0001.")
        experiment = get("mlflow_experiment")
        return cls(profile=profile, models=tuple(models), methods=tuple(methods), runtimes=tuple(chosen),
                   baselines=tuple(baselines), **checked, compare_fail_speedup=speed, train_device=train_device,
                   thresholds=thresholds, cache=cache, report_dir=report_dir, data_root=env("zoo_data_root"),
                   download=bool(get("zoo_download")), comparing=comparing,
                   mlflow_uri=options.tracking_uri(None if get("mlflow_uri") is None else str(get("mlflow_uri"))),
                   mlflow_experiment=None if experiment is None else str(experiment))

    def cases(self) -> list[tuple[str, str, str, int]]:
        """(model, method, runtime, seed) of every test, model by model and seed by seed, each runtime's
        methods together, then the float original on each ``--float-baselines`` runtime; the eager float
        original of each model is in whatever runtimes were chosen (every row's speedup against it needs it)."""
        out = []
        for m in self.models:
            for s in range(self.seeds):
                out += [(m, "original", "eager", s)] if "eager" not in self.runtimes else []
                out += [(m, k, r, s) for r in self.runtimes for k in self.methods]
                out += [(m, "original", r, s) for r in self.baselines if "eager" != r]
        return out
