"""The suite's options as data, and checks of their values, done before anything trains. No pytest.

:data:`OPTIONS` declares the benchmark options (the pytest plugin adds each one;
:meth:`benchmarks.settings.config.Config.from_options` reads them by ``dest``). :data:`ZOO_OPTIONS` are the zoo options
that the repository's root conftest declares, with the environment variable each falls back to.
Each check returns the parsed value or raises :class:`OptionError` with one sentence that names the
option, the valid range and what was given; the pytest layer turns that into a usage error (exit 4).
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compression_bench.benchmarks.measurement.timing import MAX_ROUNDS, MIN_ROUNDS, PRECISION

#: Largest latency batch size: inputs and activations of the zoo's models at this batch fit in a few
#: GiB; beyond it a typo (1000000000) would try to allocate terabytes.
MAX_BATCH_SIZE = 1024
MAX_WARMUP = 100          # warm-up rounds per test
MAX_TARGET_S = 60.0       # seconds of timed rounds per test


class OptionError(ValueError):
    """An option value is unusable; the message says what is valid."""


@dataclass(frozen=True)
class Option:
    """One command-line option: its flag, default, help text (``{models}`` and ``{methods}`` are
    filled in with the valid names), and argparse's ``type`` and ``metavar``."""
    flag: str
    default: object
    help: str
    type: type | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def kwargs(self, **names: str) -> dict:
        # argparse expands %-formats in help texts (pytest --help would fail on "10%"): a plain % is %%
        kw = {"default": self.default, "help": self.help.format(**names).replace("%", "%%")}
        kw.update({k: v for k, v in (("type", self.type), ("metavar", self.metavar)) if v is not None})
        return kw


#: the runtimes every method runs on when --runtimes is not given, and the runtimes the float original
#: alone also runs on (--float-baselines); docs/concepts/fair-baselines.md says why these
DEFAULT_RUNTIMES = "eager"
DEFAULT_BASELINES = "onnxruntime"
MAX_SLICES = 5

OPTIONS = (
    Option("--zoo-models", None, "comma-separated models (default: all: {models})"),
    Option("--compression-methods", None, "comma-separated method ids (default: all: {methods})"),
    Option("--runtimes", DEFAULT_RUNTIMES, "comma-separated runtimes every method runs on ({runtimes}); the eager "
                                           f"float original is timed whatever is chosen (default: {DEFAULT_RUNTIMES})"),
    Option("--float-baselines", DEFAULT_BASELINES, "comma-separated runtimes the float original alone also runs on, "
                                                   "so every run shows the float model as a user would ship it, or "
                                                   f"'none' (default: {DEFAULT_BASELINES})"),
    Option("--latency-batch-size", "64", f"batch size(s) for latency, comma-separated, 1 to {MAX_BATCH_SIZE}, "
                                         f"e.g. 1,64 (default: 64)"),
    Option("--latency-warmup", 3, f"warm-up rounds before timing, 0 to {MAX_WARMUP} (default: 3)", int),
    Option("--latency-target-s", 2.0, "time budget per test, in seconds of paired rounds: timing stops when the "
                                      "speedup's interval is narrow enough (--speedup-precision) or this is spent, "
                                      f"after at least {MIN_ROUNDS} and at most {MAX_ROUNDS} rounds (default: 2.0)",
           float),
    Option("--speed-slices", 3, "time each compressed variant in this many slices spread over the session and pool "
                                "them: all but the last before the first test, the last in the variant's own test, "
                                "each with its share of --latency-target-s; 1 times it once, in its test "
                                f"(default: 3, at most {MAX_SLICES})", int),
    Option("--speedup-precision", PRECISION, "stop timing a test once the 95% interval of its speedup is within "
                                             "this fraction of the estimate, e.g. 0.02 for ±2% (default: "
                                             f"{PRECISION})", float, "FRACTION"),
    Option("--peak-memory", "on", "on: measure the peak resident memory of loading and running each variant once, "
                                  "in a child process per variant (cached with the variant); off: skip it "
                                  "(default: on)"),
    Option("--report-dir", "reports", "where report.md, results.json and results.csv go; checked before anything "
                                      "trains (default: ./reports)"),
    Option("--thresholds", None, "TOML file of accuracy, speed and size gates (default: src/compression_bench/benchmarks/thresholds.toml)"),
    Option("--bench-threads", "1", "torch threads for timing, comma-separated, e.g. 1,2 times every variant at "
                                   "both; part of the test id (default: 1, the most repeatable)"),
    Option("--recommend-within", 1.0, "report.md recommends the smallest and the fastest variant whose accuracy is "
                                      "within this many points of the original's (default: 1.0)", float, "POINTS"),
    Option("--compare-fail-speedup", None, "with --benchmark-compare: fail when any variant's speedup fell "
                                           "significantly (the 95% interval of the change excludes none) and by "
                                           "more than this, e.g. 10% or 0.1", None, "DROP"),
    Option("--mlflow-uri", None, "log the session to this MLflow tracking server (one run, a child run per "
                                 "record, the report files as artifacts); checked before anything trains "
                                 "(default: $MLFLOW_TRACKING_URI, else no logging)", None, "URI"),
    Option("--mlflow-experiment", None, "the MLflow experiment to log to (default: compression-bench)", None,
           "NAME"),
    Option("--compare-fail-accuracy", None, "with --benchmark-compare: fail when any variant's accuracy dropped by "
                                            "more than this many points against the compared run", float, "POINTS"),
)

#: zoo options -> the environment variable used when one is not given
ZOO_OPTIONS = {"zoo_profile": "ZOO_PROFILE", "zoo_cache": "ZOO_CACHE", "zoo_data_root": "ZOO_DATA_ROOT",
               "zoo_train_device": "ZOO_TRAIN_DEVICE", "zoo_download": None, "zoo_seeds": "ZOO_SEEDS"}
MAX_SEEDS = 20

#: the zoo options' flags and argparse keywords, shared by the test suite and the benchmark plugin
ZOO_FLAGS = (
    ("--zoo-profile", dict(default=None, help="smoke, default or full (default: $ZOO_PROFILE, else default)")),
    ("--zoo-cache", dict(default=None, help="cache directory for trained models and variants "
                                            "(default: $ZOO_CACHE, else ~/.cache/compression-bench)")),
    ("--zoo-data-root", dict(default=None, help="data root holding MNIST/ and cifar-10-batches-py/ for the full "
                                                "profile (default: $ZOO_DATA_ROOT, else ~/data)")),
    ("--zoo-download", dict(action="store_true", default=False,
                            help="download MNIST/CIFAR-10 into the data root when missing (needs network)")),
    ("--zoo-train-device", dict(default=None, help="device for training and fine-tuning: cpu, cuda, cuda:N or auto "
                                                   "(default: $ZOO_TRAIN_DEVICE, else cpu); timing always runs on CPU")),
    ("--zoo-seeds", dict(default=None, help="train N seeds of each model and build the variants of each; tables "
                                            "show mean and standard deviation across seeds, the files every "
                                            "seed's values (default: $ZOO_SEEDS, else 1)")),
)


def add_zoo_options(parser) -> None:
    """Declare the zoo options on a pytest ``parser``, once (the repository's root conftest and the
    benchmark plugin both call this)."""
    group = parser.getgroup("zoo", "model zoo (training data, profile, cache)")
    for flag, kwargs in ZOO_FLAGS:
        try:
            group.addoption(flag, **kwargs)
        except ValueError:  # already declared by the other caller
            pass


def dests() -> list[str]:
    """Every option a session reads, by ``dest``."""
    return [o.dest for o in OPTIONS] + list(ZOO_OPTIONS)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def names(text: str | None, valid: list[str], what: str, option: str,
          check: Callable[[str], object] | None = None, more: str = "") -> list[str]:
    """A comma list of names (all of ``valid`` when ``text`` is None), each at most once. A name is
    accepted when it is in ``valid`` or, given ``check``, when ``check(name)`` does not raise
    ``ValueError`` (methods: ``compression.get_method`` also takes ids such as ``structured@0.6``)."""
    if text is None:
        return list(valid)
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    if not chosen:
        raise OptionError(f"{option} selects no {what}; valid {what}s are: {', '.join(valid)}")
    bad, reasons = [], []
    for n in chosen:
        if n in valid:
            continue
        try:
            if check is None:
                raise ValueError("unknown")
            check(n)
        except ValueError as err:
            bad.append(n)
            if not str(err).startswith("unknown"):
                reasons.append(str(err))
    if bad:
        why = f" ({'; '.join(reasons)})" if reasons else ""
        raise OptionError(f"unknown {what} {', '.join(map(repr, bad))} in {option}{why}; "
                          f"valid {what}s are: {', '.join(valid)}{more}")
    twice = sorted({n for n in chosen if chosen.count(n) > 1}, key=chosen.index)
    if twice:
        raise OptionError(f"{option} names {', '.join(map(repr, twice))} more than once; name each {what} once "
                          f"(test ids must stay unique for saved runs to line up)")
    return chosen


def int_list(text, option: str, lo: int, hi: int, example: str, why: str = "") -> list[int]:
    """Sorted distinct integers from a comma list, each in ``lo..hi``."""
    out = []
    for part in str(text).split(","):
        try:
            value = int(part)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise OptionError(f"{option} takes integers from {lo} to {hi}{why} such as {example}; got {text!r}")
        out.append(value)
    if len(set(out)) != len(out):
        raise OptionError(f"{option} names a value more than once; got {text!r}")
    return sorted(out)


def batch_sizes(text) -> list[int]:
    return int_list(text, "--latency-batch-size", 1, MAX_BATCH_SIZE, "1,64")


def thread_counts(text) -> list[int]:
    cores = usable_cores()
    return int_list(text, "--bench-threads", 1, cores, "1 or 1,2", " (the usable cores here)")


def on_off(text, option: str) -> bool:
    value = str(text).strip().lower()
    if value not in ("on", "off"):
        raise OptionError(f"{option} takes on or off; got {text!r}")
    return value == "on"


def seeds(text) -> int:
    """How many seeds of each model to train: an integer from 1 to :data:`MAX_SEEDS` (None: 1)."""
    if text is None:
        return 1
    try:
        n = int(str(text).strip())
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_SEEDS:
        raise OptionError(f"--zoo-seeds takes a number of seeds from 1 to {MAX_SEEDS}, such as 3; got {text!r}")
    return n


def _number(value, kind: type[int] | type[float]) -> int | float | None:
    """``value`` as ``kind``: a number as argparse gives it (``Option.type``), or the text of one, as a caller
    of :meth:`Config.from_options` other than pytest may pass it; None when it is neither (bool included)."""
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return None
    return kind(value)


def _given(value) -> str:
    """``value`` as a message quotes it: text in quotes, a number as it is."""
    return repr(value) if isinstance(value, str) else str(value)


def warmup(value) -> int:
    n = _number(value, int)
    if n is None or not 0 <= n <= MAX_WARMUP:
        raise OptionError(f"--latency-warmup takes a number of rounds from 0 to {MAX_WARMUP}; got {_given(value)}")
    return n


def target_seconds(value) -> float:
    s = _number(value, float)
    if s is None or not (math.isfinite(s) and 0 < s <= MAX_TARGET_S):
        raise OptionError(f"--latency-target-s takes seconds above 0 and at most {MAX_TARGET_S:g}, such as 2.0; "
                          f"got {_given(value)}")
    return s


def slices(value) -> int:
    n = _number(value, int)
    if n is None or not 1 <= n <= MAX_SLICES:
        raise OptionError(f"--speed-slices takes a count from 1 to {MAX_SLICES}; got {_given(value)}")
    return n


def fraction(value, option: str) -> float:
    f = _number(value, float)
    if f is None or not (math.isfinite(f) and 0 <= f <= 10):
        raise OptionError(f"{option} takes a fraction from 0 to 10, such as 0.2 for 20%; got {_given(value)}")
    return f


def drop_fraction(value, option: str) -> float | None:
    """``10%`` or ``0.1`` -> 0.1: a relative drop between 0 and 1 (exclusive of 1)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        got = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        got = float("nan")
    if not (math.isfinite(got) and 0 <= got < 1):
        raise OptionError(f"{option} takes a relative drop such as 10% or 0.1 (from 0 up to 100%); got {value!r}")
    return got


def points(value, option: str, example: str) -> float | None:
    if value is None:
        return None
    got = _number(value, float)
    if got is None or not (math.isfinite(got) and 0 <= got <= 100):
        raise OptionError(f"{option} takes a number of points from 0 to 100, such as {example}; got {_given(value)}")
    return got


def report_dir(path: str) -> Path:
    """The report directory, created and proven writable now, not after the run."""
    d = Path(path).expanduser()
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".probe-"):
            pass
    except OSError as err:
        raise OptionError(f"--report-dir {str(path)!r} cannot hold the report ({err.strerror or err}); "
                          f"pass a writable directory") from None
    return d


def tracking_uri(given: str | None) -> str | None:
    """The tracking URI to log to: ``given`` (``--mlflow-uri``), else ``$MLFLOW_TRACKING_URI``, else None."""
    uri = (given or os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    return uri or None
