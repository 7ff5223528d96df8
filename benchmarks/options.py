"""Checks of the suite's option values, done before anything trains. Plain functions, no pytest.

Each check returns the parsed value or raises :class:`OptionError` with one sentence that names the
option, the valid range and what was given; the pytest layer turns that into a usage error (exit 4).
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

#: Largest latency batch size: inputs and activations of the zoo's models at this batch fit in a few
#: GiB; beyond it a typo (1000000000) would try to allocate terabytes.
MAX_BATCH_SIZE = 1024
MAX_WARMUP = 100          # warm-up rounds per test
MAX_TARGET_S = 60.0       # seconds of timed rounds per test


class OptionError(ValueError):
    """An option value is unusable; the message says what is valid."""


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def names(text: str | None, valid: list[str], what: str, option: str) -> list[str]:
    """A comma list of names from ``valid`` (all of them when ``text`` is None), each at most once."""
    if text is None:
        return list(valid)
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    if not chosen:
        raise OptionError(f"{option} selects no {what}; valid {what}s are: {', '.join(valid)}")
    bad = [n for n in chosen if n not in valid]
    if bad:
        raise OptionError(f"unknown {what} {', '.join(map(repr, bad))} in {option}; "
                          f"valid {what}s are: {', '.join(valid)}")
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


def warmup(value: int) -> int:
    if not 0 <= value <= MAX_WARMUP:
        raise OptionError(f"--latency-warmup takes a number of rounds from 0 to {MAX_WARMUP}; got {value}")
    return value


def target_seconds(value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= MAX_TARGET_S):
        raise OptionError(f"--latency-target-s takes seconds above 0 and at most {MAX_TARGET_S:g}, such as 2.0; "
                          f"got {value}")
    return value


def fraction(value: float, option: str) -> float:
    if not (math.isfinite(value) and 0 <= value <= 10):
        raise OptionError(f"{option} takes a fraction from 0 to 10, such as 0.2 for 20%; got {value}")
    return value


def points(value: float | None, option: str, example: str) -> float | None:
    if value is not None and not (math.isfinite(value) and 0 <= value <= 100):
        raise OptionError(f"{option} takes a number of points from 0 to 100, such as {example}; got {value}")
    return value


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
