"""The statistics of paired timing (:mod:`benchmarks.measurement.timing`): the estimator of a speedup from
per-round ratios, its bootstrap interval and the widenings the machine's noise calls for, and the
pooling of slices timed at different moments of a session. Pure functions of numbers: no clock, no
pytest. Why each choice was made is in the timing module's doc and docs/concepts/paired-timing.md.
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable, Sequence

import numpy as np

TRIM = 0.1            # fraction of ratios trimmed from each end by the estimator
BOOTSTRAP = 2000      # bootstrap resamples
SEGMENTS = 5          # consecutive stretches of a test's rounds compared for a change of machine state
STATE_ALPHA = 0.05    # significance at which their means count as different
Z95 = 1.959963984540054


# ---------------------------------------------------------------- one timing's per-round ratios

def centre(log_ratios: Sequence[float], trim: float = TRIM) -> float:
    """The trimmed mean of ``log_ratios`` (``trim`` of the values cut from each end), exponentiated."""
    xs = np.sort(np.asarray(log_ratios, dtype=float))
    k = int(math.floor(trim * len(xs)))
    return float(math.exp(xs[k:len(xs) - k].mean()))


def lag1(xs: Sequence[float]) -> float:
    """Lag-1 autocorrelation of ``xs`` (0 for fewer than 3 values or no spread)."""
    a = np.asarray(xs, dtype=float)
    if len(a) < 3:
        return 0.0
    a = a - a.mean()
    den = float((a * a).sum())
    return float((a[1:] * a[:-1]).sum() / den) if den > 0 else 0.0


def block_length(xs: Sequence[float]) -> int:
    """1 when neighbouring values are uncorrelated (lag-1 autocorrelation within 2/sqrt(n) of 0), else
    n^(1/3) rounded up: the moving block bootstrap's block."""
    n = len(xs)
    return 1 if n < 4 or lag1(xs) <= 2.0 / math.sqrt(n) else max(2, math.ceil(n ** (1 / 3)))


def _resample_indices(n: int, block: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """``b`` rows of ``n`` indices drawn by the moving block bootstrap (plain bootstrap for block 1)."""
    if block <= 1:
        return rng.integers(0, n, size=(b, n))
    starts = rng.integers(0, n - block + 1, size=(b, math.ceil(n / block)))
    return (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(b, -1)[:, :n]


def interval(log_ratios: Sequence[float], *, trim: float = TRIM, resamples: int = BOOTSTRAP,
             seed: int = 0) -> tuple[float, float, int]:
    """The 95% percentile-bootstrap interval of :func:`centre` over ``log_ratios`` (as ratios), and the
    block length used. Deterministic for given values (``seed``)."""
    xs = np.asarray(log_ratios, dtype=float)
    n = len(xs)
    if n < 2:
        c = centre(xs, trim) if n else float("nan")
        return c, c, 1
    block = block_length(xs)
    idx = _resample_indices(n, block, resamples, np.random.default_rng(seed))
    samples = np.sort(xs[idx], axis=1)
    k = int(math.floor(trim * n))
    means = samples[:, k:n - k].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    # the percentile bootstrap is too narrow from few rounds (it knows the spread only from them):
    # widen it around the estimate by Student's t over the normal quantile, and the n / (n - 1) it
    # leaves out (x1.22 at 10 rounds, x1.05 at 40)
    c = math.log(centre(xs, trim))
    lo, hi = min(lo, c), max(hi, c)  # a skewed bootstrap can leave the estimate at an end: keep it inside
    widen = small_sample_factor(n)
    lo, hi = c - widen * (c - lo), c + widen * (hi - c)
    state = segment_half_width(xs)  # the machine changed state during the test: no narrower than that
    return float(math.exp(min(lo, c - state))), float(math.exp(max(hi, c + state))), block


def segment_half_width(log_ratios: Sequence[float], segments: int = SEGMENTS, alpha: float = STATE_ALPHA) -> float:
    """The half-width (in logs) of a 95% Student's t interval from the means of ``segments``
    consecutive stretches of the rounds, when those means differ significantly (one-way ANOVA at
    ``alpha``); 0 when they do not, or with fewer than 4 rounds a segment.

    Why: on a shared VM the machine also changes state for a second or more (another tenant's
    memory traffic), and a small INT8 model is slowed more than its float original, so the per-round
    ratio shifts for that long. Measured on a 2-core VM (2026-12-04, EnhancedLeNet5 static INT8, random
    weights, batch 64, one thread): timings whose original ran 8-15% slower than the machine's quiet
    21 ms read a speedup 4-9% lower, and 15-28% slower 8-17% lower, while the bootstrap over rounds
    said +-1-4%. A shift that lasts a few rounds is seen by the bootstrap's blocks; one that lasts a
    fifth of the test or more is seen here, as segments that disagree. Rounds without such a shift
    keep the bootstrap's interval (the ANOVA rarely fires on them)."""
    xs = np.asarray(log_ratios, dtype=float)
    if len(xs) < 4 * segments:
        return 0.0
    parts = np.array_split(xs, segments)
    from scipy.stats import f_oneway, t
    if not f_oneway(*parts).pvalue < alpha:  # also false for NaN: identical rounds
        return 0.0
    means = np.array([p.mean() for p in parts])
    return float(t.ppf(0.975, segments - 1) * means.std(ddof=1) / math.sqrt(segments))


def small_sample_factor(n: int) -> float:
    """t(0.975, n - 1) / z(0.975) * sqrt(n / (n - 1)): how much wider an interval from ``n`` values
    must be than the normal one."""
    from scipy.stats import t
    return float(t.ppf(0.975, n - 1) / Z95 * math.sqrt(n / (n - 1))) if n > 1 else 1.0


def normal_half_width(log_ratios: Sequence[float]) -> float:
    """The relative half-width of a 95% interval of the geometric mean by the normal approximation,
    widened for positive lag-1 autocorrelation: what the stopping rule checks after each round."""
    n = len(log_ratios)
    if n < 2:
        return float("inf")
    sd = statistics.stdev(log_ratios)
    rho = max(0.0, min(0.9, lag1(log_ratios)))
    rounds = Z95 * small_sample_factor(n) * sd / math.sqrt(n) * math.sqrt((1 + rho) / (1 - rho))
    return math.expm1(max(rounds, segment_half_width(log_ratios)))


def median_interval(values: Sequence[float], *, resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the median of ``values`` (rounds resampled in blocks as
    :func:`interval` does)."""
    xs = np.asarray(values, dtype=float)
    n = len(xs)
    if n < 2:
        return (float(xs[0]), float(xs[0])) if n else (float("nan"), float("nan"))
    idx = _resample_indices(n, block_length(np.log(xs)), resamples, np.random.default_rng(seed))
    meds = np.median(xs[idx], axis=1)
    lo, hi = np.quantile(meds, [0.025, 0.975])
    return float(lo), float(hi)


def half_width(low: float | None, high: float | None) -> float | None:
    """The relative half-width of an interval of a ratio: sqrt(high / low) - 1."""
    if not low or not high or low <= 0:
        return None
    return math.sqrt(high / low) - 1.0


# ---------------------------------------------------------------- slices of one test, pooled over a session

def slice_summary(log_ratios: Sequence[float]) -> tuple[float, float]:
    """One slice's estimate and standard error, both in logs: the log of :func:`centre`, and the
    half-width of :func:`interval` (bootstrap, small-sample and segment widening included) over z."""
    lo, hi, _ = interval(log_ratios)
    return math.log(centre(log_ratios)), (math.log(hi) - math.log(lo)) / (2 * Z95)


def dispersion(groups: Iterable[Sequence[tuple[float, float]]]) -> tuple[float, int]:
    """How much more slices of the same test disagree than their standard errors say: the Birge ratio
    (Cochran's Q over its degrees of freedom, pooled over tests) of ``groups``, each the
    :func:`slice_summary` of one test's slices; at least 1. Returns (ratio, degrees of freedom); (1, 0)
    when no test has two slices.

    Why: a slice's interval covers the noise of its own second or two; on a shared VM the machine
    also changes state for seconds to tens of seconds (another tenant), and a small INT8 model is
    slowed more than its float original then, so slices a minute apart differ by more than their
    intervals (measured on a 2-core VM: EnhancedLeNet5 static INT8 estimates spread 5% between
    processes against 0.7% claimed by each). The ratio measures that excess in this session, on every
    test at once (one test's two or three slices are too few to measure it alone), and each pooled
    interval is widened by its square root."""
    q, df = 0.0, 0
    for g in groups:
        if len(g) < 2:
            continue
        w = [1.0 / max(se, 1e-6) ** 2 for _, se in g]
        mean = sum(wi * c for wi, (c, _) in zip(w, g)) / sum(w)
        q += sum(wi * (c - mean) ** 2 for wi, (c, _) in zip(w, g))
        df += len(g) - 1
    return (max(1.0, q / df), df) if df else (1.0, 0)


def pooled_interval(summaries: Sequence[tuple[float, float]], ratio: float = 1.0,
                    df: int = 0) -> tuple[float, float, int]:
    """The 95% interval (as ratios) of the geometric mean of slices' estimates, from their
    :func:`slice_summary` ``summaries``: standard error sqrt(ratio * sum(se^2)) / k, with ``ratio`` the
    session's :func:`dispersion` and Student's t on its ``df`` degrees of freedom (the normal quantile
    without). The third value, the bootstrap block, is 1."""
    k = len(summaries)
    c = statistics.fmean(m for m, _ in summaries)
    se = math.sqrt(ratio * sum(s * s for _, s in summaries)) / k
    from scipy.stats import t
    q = float(t.ppf(0.975, df)) if df else Z95
    return math.exp(c - q * se), math.exp(c + q * se), 1
