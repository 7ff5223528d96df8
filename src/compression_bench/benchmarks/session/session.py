"""A benchmark session without pytest: checked options, trained models and variants, records, and the
session end (ratios, drift, comparison, plots, files, exit status). The pytest plugin
(:mod:`compression_bench.benchmarks.plugin`, loaded by ``benchmarks/conftest.py``) is a thin layer
over this class.

    from compression_bench.benchmarks.session.session import Session
    s = Session({"zoo_profile": "smoke", "zoo_models": "EnhancedLeNet5", "report_dir": "reports"})
    ...                                  # s.trained(...), s.variant(...), s.record(...), s.add(...)
    outcome = s.finish()                 # writes report.md, results.json, results.csv and the plots
    for text, style in outcome.lines:
        print(text)

Problems become :class:`SessionError` with the exit status they stand for: 4 for bad input (found
before anything trains), 7 when the cache cannot be read or written.

Its length (about 310 lines) is the session's one class: splitting its roles (the configuration, the
workspace that memoises models, variants and artifacts, the judge that makes records) into classes
of their own is the next step of the redesign; until then they stay together rather than be cut at a
line count.
"""
from __future__ import annotations

import functools
import os
import sys
import statistics
import time
import uuid
from pathlib import Path
from typing import Callable, Mapping

import torch

from compression_bench import compression, zoo
from compression_bench.benchmarks.measurement import machine, peakmem
from compression_bench.benchmarks.session import options, pipeline, runtime_variants
from compression_bench.benchmarks import runtimes
from compression_bench.benchmarks.reporting import session_end, summary, tracking
from compression_bench.benchmarks.measurement import stats as stats_
from compression_bench.benchmarks.session.errors import EXIT_FAULT, EXIT_USAGE, SessionError, VariantFailure
from compression_bench.benchmarks.reporting.session_end import Outcome
from compression_bench.benchmarks.session.records import setting_text
from compression_bench.benchmarks.session.schema import METRICS, Record, speedup
from compression_bench.benchmarks.session.thresholds import (Thresholds, ThresholdsError, accuracy_failures, size_failures,
                                                     slowdown_flags, speed_verdicts)
from compression_bench.benchmarks.measurement.timing import METHOD, Timing, percentile, samples_of
from compression_bench.zoo.keys import package_versions

#: the key under which a test hands its record (``Record.to_dict()``) to the session, in user_properties
RECORD_KEY = "compression_bench_record"
EXIT_OK, EXIT_FAILED = 0, 1
EXIT_INCONCLUSIVE = summary.EXIT_INCONCLUSIVE
VERSIONS = ("torch", "torchvision", "torch-pruning", "scikit-learn")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def compression_text(spec, metrics: Mapping) -> str:
    """The Compression column: the method's text, and for accuracy-aware INT8 the layers kept in float."""
    kept = metrics.get("float_layers")
    if kept is None:
        return spec.compression
    if not kept:
        return f"{spec.compression}, 0 layers float"
    names = ", ".join(kept[:3]) + (", ..." if len(kept) > 3 else "")
    return f"{spec.compression}, {len(kept)} layer(s) float ({names})"


def _tracker(uri: object, experiment: object) -> tracking.Tracker | None:
    """The MLflow tracker of ``--mlflow-uri`` (or ``$MLFLOW_TRACKING_URI``), checked now; None without one."""
    found = tracking.tracking_uri(None if uri is None else str(uri))
    if not found:
        return None
    tracker = tracking.Tracker(found, None if experiment is None else str(experiment))
    try:
        tracker.check()
    except tracking.TrackingError as err:
        raise SessionError(str(err)) from None
    return tracker


class Session:
    """Session state: the checked selections, trained models and variants, the collected records.

    ``values`` maps option ``dest`` names (:func:`benchmarks.session.options.dests`) to raw values as given
    on the command line; missing ones take their defaults (zoo options their environment variable).
    ``comparing`` says whether a saved run will be compared against (``--benchmark-compare``);
    ``say`` receives progress lines; ``root`` is the checkout whose git commit the report names."""

    def __init__(self, values: Mapping[str, object] | None = None, *, comparing: bool = False,
                 say: Callable[[str], None] | None = None, root: str | Path | None = None):
        given = {k: v for k, v in (values or {}).items() if v is not None}
        given = {**{o.dest: o.default for o in options.OPTIONS}, **given}
        get = given.get

        def env(dest: str, default=None):
            return given.get(dest) or os.environ.get(options.ZOO_OPTIONS[dest]) or default
        try:
            self.profile = zoo.get_profile(env("zoo_profile"))
            self.models = options.names(get("zoo_models"), zoo.list_models(), "model", "--zoo-models")
            self.methods = options.names(get("compression_methods"), compression.list_methods(), "method",
                                         "--compression-methods", check=compression.get_method,
                                         more="; " + compression.other_forms())
            self.runtimes = options.names(get("runtimes"), runtimes.list_runtimes(), "runtime", "--runtimes")
            base = get("float_baselines")
            self.baselines = [] if str(base).strip().lower() == "none" else [
                r for r in options.names(base, runtimes.list_runtimes(), "runtime", "--float-baselines")
                if r not in self.runtimes]
            for name in self.runtimes + self.baselines:  # a missing package fails the run now, with its pip command
                runtimes.check_available(runtimes.get_runtime(name))
            self.batch_sizes = options.batch_sizes(get("latency_batch_size"))
            self.thread_counts = options.thread_counts(get("bench_threads"))
            self.seeds = options.seeds(env("zoo_seeds"))
            self.measure_memory = options.on_off(get("peak_memory"), "--peak-memory")
            self.warmup = options.warmup(get("latency_warmup"))
            self.target_s = options.target_seconds(get("latency_target_s"))
            self.precision = options.fraction(get("speedup_precision"), "--speedup-precision")
            self.within = options.points(get("recommend_within"), "--recommend-within", "1.0")
            self.compare_fail = options.points(get("compare_fail_accuracy"), "--compare-fail-accuracy", "0.5")
            self.train_device = env("zoo_train_device", "cpu")
            zoo.trained.resolve_device(self.train_device)
            zoo.training.train_threads()  # ZOO_TRAIN_THREADS
            self.thresholds = Thresholds.load(get("thresholds"), models=zoo.list_models(),
                                              methods=compression.list_methods(), profiles=zoo.PROFILES,
                                              runtimes=runtimes.list_runtimes())
            self.cache = zoo.ArtifactCache(env("zoo_cache"))
            self.cache.check_writable()
            self.report_dir = options.report_dir(get("report_dir"))
        except (zoo.UnknownProfileError, options.OptionError, ThresholdsError, zoo.CacheError, ValueError,
                runtimes.RuntimeUnavailableError) as err:
            raise SessionError(str(err)) from None
        try:
            self.compare_fail_speedup = options.drop_fraction(get("compare_fail_speedup"), "--compare-fail-speedup")
        except options.OptionError as err:
            raise SessionError(str(err)) from None
        for flag, value in (("--compare-fail-speedup", self.compare_fail_speedup),
                            ("--compare-fail-accuracy", self.compare_fail)):
            if value is not None and not comparing:
                raise SessionError(f"{flag} needs a run to compare against: add --benchmark-compare "
                                   "(the latest saved run) or --benchmark-compare=0001.")
        self.comparing = comparing
        #: where the session is logged (None: nowhere); reachable, or the session stops here (exit 4)
        self.tracker = _tracker(get("mlflow_uri"), get("mlflow_experiment"))
        #: unique to this session: its MLflow run is found again by it (``compression-bench log``)
        self.session_id = uuid.uuid4().hex[:16]
        #: this machine: CPU, instruction-set features, capability class (benchmarks.measurement.machine)
        self.machine = machine.identify()
        self.cpu_class = self.machine["capability_class"]
        self.data_root, self.download = env("zoo_data_root"), bool(given.get("zoo_download"))
        self.say = say or _stderr
        self.heap: str | None = None  # what benchmarks.measurement.heap did to this process's allocator (set by the plugin)
        self.root = root
        self.records: list[Record] = []
        #: the original's median per (model, runtime, batch, threads, seed) in each test so far (seconds)
        self.originals: dict[tuple, list[float]] = {}
        self._trained: dict[tuple[str, int], zoo.TrainedModel] = {}
        self._variants: dict[tuple[str, str, int], pipeline.Variant] = {}
        self._artifacts = runtime_variants.Artifacts(self.variant, self.cache, say=lambda m: self.say("  " + m),
                                                     progress=self._progress)

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

    # ------------------------------------------------------------ models and variants

    def check_data(self) -> None:
        """Fail now when a selected model's dataset (mnist, cifar10) is not there or is unreadable,
        rather than at its first test, after the models before it have trained. Loading is cheap next
        to training, and ``zoo.get_data`` keeps what it loaded for the session."""
        for name in self.models:
            if self.profile.dataset_for(name) == "digits":
                continue
            try:
                zoo.get_data(name, self.profile, data_root=self.data_root, download=self.download)
            except zoo.DataError as err:
                raise SessionError(str(err)) from None

    def _progress(self, r: zoo.EpochReport) -> None:
        acc = "" if r.val_accuracy is None else f", val {r.val_accuracy:.2f}%"
        self.say(f"  [{r.tag}] epoch {r.epoch}/{r.epochs}, loss {r.loss:.4f}{acc}, {r.seconds:.1f}s")

    def trained(self, name: str, seed: int = 0) -> zoo.TrainedModel:
        """The trained model (its seed ``seed``), from the cache (trained on first use)."""
        key, tag = (name, seed), name + (f"/seed{seed}" if seed else "")
        if isinstance(self._trained.get(key), VariantFailure):
            raise self._trained[key]
        if key not in self._trained:
            t0 = time.perf_counter()
            try:
                tm = zoo.get_trained(name, self.profile, cache=self.cache, data_root=self.data_root,
                                     download=self.download, device=self.train_device, progress=self._progress,
                                     log=lambda m: self.say("  " + m), seed=seed)
            except zoo.DataError as err:
                raise SessionError(str(err), EXIT_USAGE) from None
            except zoo.CacheError as err:
                raise SessionError(str(err), EXIT_FAULT) from None
            except Exception as err:  # noqa: BLE001 - the user's model: one model's failure must not stop the others
                self._trained[key] = VariantFailure(f"the original of {tag} could not be trained or loaded: ", err)
                raise self._trained[key] from err
            if not tm.from_cache:
                how = f"loaded {tm.meta['weights']} and evaluated" if tm.meta.get("weights") else "trained"
                self.say(f"  [{tag}] {how} in {time.perf_counter() - t0:.1f}s, validation accuracy {tm.accuracy:.2f}%")
            self._trained[key] = tm
        return self._trained[key]

    def variant(self, name: str, method: str, seed: int = 0) -> pipeline.Variant:
        """The compressed variant (of the model's seed ``seed``), from the cache (built on first use)."""
        key = (name, method, seed)
        if isinstance(self._variants.get(key), VariantFailure):
            raise self._variants[key]
        if key not in self._variants:
            trained = self.trained(name, seed)
            try:
                self._variants[key] = pipeline.get_variant(trained, method, self.cache,
                                                           log=lambda m: self.say("  " + m),
                                                           progress=self._progress)
            except zoo.CacheError as err:
                raise SessionError(str(err), EXIT_FAULT) from None
            except Exception as err:  # noqa: BLE001 - a method that cannot handle this model: its row says why
                self._variants[key] = VariantFailure("", err)
                self.say(f"  [{name}/{method}] {self._variants[key].status}")
                raise self._variants[key] from err
        return self._variants[key]

    def on_runtime(self, name: str, method: str, runtime: str, batch_size: int, seed: int = 0):
        """The variant as ``runtime`` runs it: the eager :class:`pipeline.Variant`, or a
        :class:`runtime_variants.RuntimeVariant` (its artifact built on first use, then cached).
        :class:`runtime_variants.RuntimeUnsupported` when the runtime cannot express the method."""
        return self._artifacts.get(name, method, runtime, batch_size, seed)

    def peak_memory(self, variant, runtime, x: torch.Tensor, threads: int) -> dict:
        """Peak resident memory of loading and running the variant once (:mod:`benchmarks.measurement.peakmem`); {} when off."""
        if not self.measure_memory:
            return {}
        return peakmem.measure(variant, runtime, x, threads, self.cache, say=lambda m: self.say("  " + m))

    def unsupported(self, model: str, method: str, runtime: str = "eager") -> str | None:
        """The thresholds file's reason for not running ``method`` on ``model`` on ``runtime``, or None."""
        return self.thresholds.unsupported(model, method, self.profile.name, runtime, self.cpu_class)

    def status_record(self, model: str, method: str, status: str, *, batch_size: int, threads: int,
                      runtime: str = "eager", seed: int = 0) -> Record:
        """The row of a variant that has no figures: ``failed: ...`` (a gate failure) or ``n/a: ...``."""
        spec = compression.get_method(method)
        r = Record(model=model, method=spec.id, label=spec.label, compression=spec.compression, family=spec.family,
                   level=spec.level, profile=self.profile.name, batch_size=batch_size, threads=threads,
                   runtime=runtime, seed=seed, status=status, accuracy=None, params=None, size_mib=None)
        if status.startswith("failed"):
            r.gate_failures = [f"{model} / {method}: {status}"]
        return r

    # ------------------------------------------------------------ one measurement

    def typical_original(self, key: tuple) -> float | None:
        """The median of the original's per-test medians so far for ``key`` (model, runtime, batch size,
        threads, seed), in seconds; None before its first test."""
        seen = self.originals.get(key)
        return statistics.median(seen) if seen else None

    def note_original(self, key: tuple, seconds: float) -> None:
        """One more test's median of the original for ``key`` (see :meth:`typical_original`)."""
        self.originals.setdefault(key, []).append(seconds)

    def record(self, variant: pipeline.Variant, original: pipeline.Variant, *, batch_size: int, threads: int,
               timing: Timing | None = None, stats=None, runtime: str = "eager", memory: Mapping | None = None,
               timings: int = 1) -> Record:
        """The record of one measurement, its gates judged (:meth:`gate`). ``timing`` is the accepted
        timing (None when not timed); ``stats`` (default: ``timing``) gives the variant's latency
        statistics in seconds (``median``, ``iqr``, ``stddev``, ``rounds``), e.g. pytest-benchmark's;
        ``timings``: how many timings were made (2: timed again because the machine changed state)."""
        stats = timing if stats is None else stats
        m, trained, spec = variant.metrics, variant.trained, variant.method
        ms = lambda s: None if s is None else s * 1e3  # noqa: E731
        o_size = original.metrics["size_mib"]
        paired = timing is not None and bool(timing.reference_samples)
        r = Record(model=trained.name, method=spec.id, label=spec.label, compression=compression_text(spec, m),
                   family=spec.family, level=spec.level, profile=self.profile.name, dataset=trained.data.name,
                   batch_size=batch_size, threads=threads, runtime=runtime, seed=trained.seed,
                   # against the same runtime's float original, measured on the same images
                   original_accuracy=original.metrics["accuracy"],
                   **{k: m.get(k) for k in METRICS},
                   latency_median_ms=ms(stats.median) if stats else None,
                   latency_p90_ms=ms(percentile(samples_of(stats), 90)) if stats else None,
                   latency_p99_ms=ms(percentile(samples_of(stats), 99)) if stats else None,
                   peak_mib=(memory or {}).get("peak_mib"), peak_increase_mib=(memory or {}).get("peak_increase_mib"),
                   latency_iqr_ms=ms(stats.iqr) if stats else None,
                   latency_stddev_ms=ms(stats.stddev) if stats else None,
                   latency_rounds=stats.rounds if stats else None,
                   reference_latency_median_ms=ms(timing.reference_median) if paired else None,
                   reference_latency_rounds=len(timing.reference_samples) if paired else None,
                   reference_noise=timing.reference_noise if paired else None,
                   timing_seconds=timing.seconds if timing else None,
                   timings=timings if timing else None,
                   size_ratio=m["size_mib"] / o_size if o_size else None)
        if timing is not None and timing.samples:
            r.latency_low_ms, r.latency_high_ms = (ms(v) for v in timing.median_interval)
        if paired:  # the centre of the per-round ratios, with its interval
            r.speedup, r.speedup_low, r.speedup_high = timing.speedup, timing.speedup_low, timing.speedup_high
            r.speedup_half_width, r.speedup_method = timing.half_width, METHOD
        else:
            r.speedup = speedup(r.reference_latency_median_ms, r.latency_median_ms)
        if m.get("predictions") is not None:  # the interval, and the paired test against the original
            stats_.annotate(r, m["predictions"], original.metrics.get("predictions"), trained.data.report.labels.tolist())
        return self.gate(r)

    def gate(self, r: Record) -> Record:
        """Judge the record's accuracy, size and speed gates (``thresholds`` for this machine's class); fills
        ``gate_failures``, ``inconclusive`` (a speed gate whose interval straddles it with the estimate
        on the wrong side) and ``flags`` (slower than what it replaces)."""
        where = f"{r.model} / {r.method} @ {setting_text((r.batch_size, r.threads, r.runtime))}"
        gates = self.thresholds.gates(r.model, r.method, self.profile.name, r.runtime or "eager", self.cpu_class)
        problems = accuracy_failures(r.model, r.method, r.accuracy, r.original_accuracy, gates, r.delta_p_value)
        if r.method != "original":
            problems += size_failures(where, r.size_ratio, gates)
        speed, inconclusive = speed_verdicts(where, r.speedup, gates, r.speedup_low, r.speedup_high)
        r.flags = slowdown_flags(r, self._parent_record(r), self.cpu_class)
        if r.flags and gates.get("fail_if_slower"):
            problems += [f"{where}: {flag} (fail_if_slower is set for class {self.cpu_class})" for flag in r.flags]
        r.gate_failures, r.inconclusive = problems + speed, inconclusive
        return r

    def _parent_record(self, r: Record) -> Record | None:
        """The record of a composition's pruned parent in the same setting, when this session has it."""
        spec = compression.get_method(r.method)
        if not spec.steps:
            return None
        parent = "+".join(s.id for s in spec.steps[:-1])
        return next((p for p in self.records if p.model == r.model and p.method == parent and p.runtime == r.runtime
                     and p.batch_size == r.batch_size and p.threads == r.threads and p.seed == r.seed), None)

    def add(self, record: Record) -> None:
        self.records.append(record)

    # ------------------------------------------------------------ the session end

    @functools.cached_property
    def versions(self) -> dict:
        return package_versions(*VERSIONS)

    def machine_info(self) -> dict:
        """What pytest-benchmark saves about the run beside its machine's."""
        return {"profile": self.profile.name, "threads": self.thread_counts, **self.versions,
                "quantized_engine": torch.backends.quantized.engine, "batch_sizes": self.batch_sizes,
                "heap": self.heap, "machine": self.machine}

    def finish(self, compared: Mapping | None = None) -> Outcome:
        """Sort, derive ratios, note drift, compare, plot, write the files; see :func:`benchmarks.reporting.session_end.finish`."""
        return session_end.finish(self, compared)
