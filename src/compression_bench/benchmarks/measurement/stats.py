"""How sure an accuracy figure is: intervals, the paired test of a change, agreement, per-class change.

Plain functions over plain Python sequences (no pytest, no torch), so that they can be checked by hand:

- :func:`wilson`: the 95% Wilson score interval of an accuracy measured on ``n`` images. On the
  default profile's 225 test images an accuracy near 98% is uncertain by about ±2 points (94.9-99.0%
  around 97.8%), so a one-image change (0.44 points) says nothing on its own.
- :func:`mcnemar_exact`: the exact (binomial) McNemar test of a variant against the original on the
  same images. Only the images where exactly one of the two is right carry information: ``b`` the
  original got right and the variant wrong, ``c`` the other way round. With no difference between
  the two models each of those ``b + c`` images is equally likely to fall on either side, so the
  two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))`` for ``X ~ Binomial(b + c, 1/2)``.
- :func:`paired_change`: everything the suite reports about one variant against its original:
  the McNemar counts and p-value, whether the change is significant at :data:`ALPHA`, the share of
  images on which the two predict the same class, and the change of each class's accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from scipy import stats as scipy_stats

#: a change whose McNemar p-value is below this is called significant
ALPHA = 0.05
Z95 = 1.959963984540054  # the standard normal quantile of 0.975: a two-sided 95% interval


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``correct / n``, in percent (95% by default); (0, 100) for n = 0.
    scipy's ``binomtest(...).proportion_ci(method="wilson")`` computes it."""
    if n <= 0:
        return 0.0, 100.0
    ci = scipy_stats.binomtest(correct, n).proportion_ci(confidence_level=2 * scipy_stats.norm.cdf(z) - 1,
                                                          method="wilson")
    return 100.0 * max(0.0, ci.low), 100.0 * min(1.0, ci.high)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant images (see the module text):
    the exact binomial test of ``b`` successes in ``b + c`` trials at one half (scipy's ``binomtest``)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts cannot be negative, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return min(1.0, float(scipy_stats.binomtest(b, b + c, 0.5).pvalue))


@dataclass(frozen=True)
class PairedChange:
    """A variant against its original on the same ``n`` images."""
    n: int
    only_original: int            # b: the original right, the variant wrong
    only_variant: int             # c: the variant right, the original wrong
    p_value: float                # exact McNemar, two-sided
    agreement: float              # percent of images on which both predict the same class
    per_class: dict = field(default_factory=dict)  # class -> change of that class's accuracy (points)

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def delta(self) -> float:
        """The accuracy change in points (variant - original), from the same counts."""
        return 100.0 * (self.only_variant - self.only_original) / self.n if self.n else 0.0


def paired_change(variant: Sequence[int], original: Sequence[int], labels: Sequence[int]) -> PairedChange:
    """Compare two prediction vectors over the same labelled images (same order, same length)."""
    if not (len(variant) == len(original) == len(labels)):
        raise ValueError(f"predictions and labels must cover the same images: got {len(variant)}, "
                         f"{len(original)} and {len(labels)}")
    b = c = same = 0
    seen: dict[int, list[int]] = {}   # class -> [images, original right, variant right]
    for v, o, y in zip(variant, original, labels):
        v, o, y = int(v), int(o), int(y)
        ok_v, ok_o = v == y, o == y
        b += ok_o and not ok_v
        c += ok_v and not ok_o
        same += v == o
        counts = seen.setdefault(y, [0, 0, 0])
        counts[0] += 1
        counts[1] += ok_o
        counts[2] += ok_v
    n = len(labels)
    per_class = {k: 100.0 * (cv - co) / m for k, (m, co, cv) in sorted(seen.items())}
    return PairedChange(n, b, c, mcnemar_exact(b, c), 100.0 * same / n if n else 100.0, per_class)


def p_text(p: float | None) -> str:
    """``p=0.63``, ``p=0.004``, ``p<0.001``."""
    if p is None:
        return "p not measured"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def significance_text(p: float | None) -> str:
    """What a gate message or a recommendation says about a change: significant or not, and its p."""
    if p is None:
        return "significance not measured"
    word = "significant" if p < ALPHA else "not significant"
    return f"{word}: exact McNemar {p_text(p)}"


def annotate(record, variant: Sequence[int] | None, original: Sequence[int] | None,
             labels: Sequence[int]) -> None:
    """Fill a :class:`benchmarks.results.schema.Record`'s interval (``accuracy_low``, ``accuracy_high``) from
    the variant's predictions and, for a compressed variant, its paired change against the original
    (``delta_p_value``, ``delta_significant``, ``agreement``, ``per_class_delta``). Predictions that
    were not recorded leave the fields empty."""
    if variant is None or len(variant) != len(labels):
        return
    correct = sum(int(v) == int(y) for v, y in zip(variant, labels))
    record.accuracy_low, record.accuracy_high = wilson(correct, len(labels))
    if record.method == "original" or original is None or len(original) != len(labels):
        return
    change = paired_change(variant, original, labels)
    record.delta_p_value = change.p_value
    record.delta_significant = change.significant
    record.agreement = change.agreement
    record.per_class_delta = {str(k): v for k, v in change.per_class.items()}
