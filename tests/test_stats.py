"""Accuracy you can trust: intervals, the paired test of a change, agreement, per-class change, tail latency.

The expected figures are worked out by hand in the comments, not taken from the code under test.
"""
import math

import pytest

from compression_bench.benchmarks.reporting import perclass, recommend, report
from compression_bench.benchmarks.results import schema
from compression_bench.benchmarks.gates import thresholds
from compression_bench.benchmarks.measurement import stats, tails, timing
from compression_bench.benchmarks.results.schema import Record


def test_wilson_interval_matches_hand_computed_values():
    # 5 of 10: centre (0.5 + 1.92/20) / (1 + 3.84/10) = 0.5; half-width 1.96/1.384 * sqrt(0.025 + 0.0096) = 0.2634
    lo, hi = stats.wilson(5, 10)
    assert lo == pytest.approx(23.66, abs=0.01) and hi == pytest.approx(76.34, abs=0.01)
    # 0 of 10: the interval starts at 0 and reaches z^2 / (n + z^2) = 3.8415 / 13.8415 = 27.75%
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(27.75, abs=0.01)
    # 441 of 450 (98%): about 96.2-98.9, so a one-image change (0.22 points) is well inside it
    # (the default profile's 225 test images are twice as coarse: 0.44 points, 94.9-99.0 at 97.8%)
    lo, hi = stats.wilson(441, 450)
    assert 96.0 < lo < 96.5 and 98.8 < hi < 99.1 and hi - lo > 10 * 0.22


def test_exact_mcnemar_p_values_known_by_hand():
    # b=1, c=9: 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024
    assert stats.mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(9, 1) == stats.mcnemar_exact(1, 9)        # two-sided: symmetric
    # b=0, c=5: 2 / 32 = 0.0625, not significant even though every discordant image went one way
    assert stats.mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert stats.mcnemar_exact(3, 3) == 1.0 and stats.mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError, match="negative"):
        stats.mcnemar_exact(-1, 2)


def test_a_constructed_pair_of_prediction_vectors():
    # 12 images of classes 0, 1, 2; the original is right on 10, the variant on 4 of those 10 plus
    # both the original missed: b = 6 (only the original right), c = 2 (only the variant right)
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    original = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0]   # wrong on the last two
    variant = [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]    # wrong on 2, 3 (class 0) and 6, 7 (class 1)
    change = stats.paired_change(variant, original, labels)
    assert (change.only_original, change.only_variant) == (4, 2)
    # b=4, c=2: 2 * (1 + 6 + 15) / 64 = 44 / 64
    assert change.p_value == pytest.approx(44 / 64) and not change.significant
    assert change.delta == pytest.approx(100 * (2 - 4) / 12)
    # same class on images 0, 1, 4, 5, 8, 9: 6 of 12
    assert change.agreement == pytest.approx(50.0)
    # class 0: 4 -> 2 right of 4 (-50 points); class 1: 4 -> 2 (-50); class 2: 2 -> 4 (+50)
    assert change.per_class == {0: -50.0, 1: -50.0, 2: 50.0}
    with pytest.raises(ValueError, match="same images"):
        stats.paired_change(variant[:-1], original, labels)


def _pair(n: int, lost: int, gained: int = 0):
    """Predictions on ``n`` images of 10 classes: the original right on all but 9, the variant loses
    ``lost`` of the original's right images and gains ``gained`` of its wrong ones."""
    labels = [i % 10 for i in range(n)]
    original = list(labels)
    for i in range(9):
        original[n - 1 - i] = (labels[n - 1 - i] + 1) % 10
    variant = list(original)
    for i in range(lost):
        variant[i] = (labels[i] + 1) % 10
    for i in range(gained):
        variant[n - 1 - i] = labels[n - 1 - i]
    return variant, original, labels


def test_a_drop_of_2_images_in_450_is_not_significant_and_a_drop_of_40_is():
    small = stats.paired_change(*_pair(450, lost=2))
    assert small.delta == pytest.approx(-2 / 4.5) and small.p_value == pytest.approx(0.5) and not small.significant
    large = stats.paired_change(*_pair(450, lost=40))
    # b=40, c=0: 2 / 2^40
    assert large.p_value == pytest.approx(2 / 2 ** 40) and large.significant
    # a drop made of many changes both ways is judged on the discordant images, not on the net change
    mixed = stats.paired_change(*_pair(450, lost=12, gained=6))   # net -6 images; b=12, c=6: p = 0.24
    assert not mixed.significant and mixed.p_value == pytest.approx(
        2 * sum(math.comb(18, k) for k in range(7)) / 2 ** 18)


def _record(method: str, accuracy: float, preds, original, labels) -> Record:
    r = Record(model="M", method=method, accuracy=accuracy, params=1, size_mib=1.0, original_accuracy=98.0,
               accuracy_delta=accuracy - 98.0)
    stats.annotate(r, preds, original, labels)
    return r


def test_records_carry_the_interval_and_the_significance_and_the_table_marks_them():
    variant, original, labels = _pair(450, lost=2)
    orig = _record("original", 98.0, original, None, labels)
    assert orig.delta_p_value is None and orig.accuracy_low < 98.0 < orig.accuracy_high
    small = _record("static_int8", 97.56, variant, original, labels)
    assert small.delta_significant is False and small.agreement == pytest.approx(100 * 448 / 450)
    assert schema.delta_cell(small.to_dict()) == "-0.44 (n.s.)"
    assert schema.accuracy_cell(small.to_dict()).startswith("97.56 (") and "–" in schema.accuracy_cell(small.to_dict())
    variant, original, labels = _pair(450, lost=40)
    large = _record("structured_70", 89.11, variant, original, labels)
    assert large.delta_significant is True and schema.delta_cell(large.to_dict()) == "-8.89 (p<0.001)"
    # the per-class change is in the record and in report.md, with the classes that lost most
    assert set(large.per_class_delta) == {str(k) for k in range(10)}
    lines = perclass.render([orig.to_dict(), small.to_dict(), large.to_dict()], "digits test split", report.RUNTIME_TITLES)
    text = "\n".join(lines)
    assert "| class 0 " in text and "Significant drops" in text and "- structured_70: -8.89 (p<0.001); class " in text
    assert "- static_int8" not in text   # not significant: not listed as a drop


def test_gate_message_and_recommendation_say_whether_a_change_is_significant():
    (msg,) = thresholds.accuracy_failures("M", "static_int8", 96.8, 98.0, {"max_accuracy_drop": 1.0}, p_value=0.12)
    assert "1.20 points below" in msg and "not significant: exact McNemar p=0.12" in msg
    (msg,) = thresholds.accuracy_failures("M", "static_int8", 90.0, 98.0, {"max_accuracy_drop": 1.0}, p_value=1e-6)
    assert "(the drop is significant: exact McNemar p<0.001)" in msg
    # a variant 0.4 points above the original on a non-significant difference is never called better
    assert recommend.gains_text(4.0, 2.0, 0.44, 0.5) == "4.0x smaller, 2.0x faster, accuracy unchanged within noise (+0.4 pts, n.s.)"
    assert recommend.gains_text(4.0, 2.0, -3.1, 0.0004) == "4.0x smaller, 2.0x faster, accuracy lower: -3.1 pts (p<0.001)"


def test_tail_latency_percentiles_interpolate_like_numpy():
    xs = [float(i) for i in range(1, 11)]
    assert tails.percentile(xs, 50) == pytest.approx(5.5)
    assert tails.percentile(xs, 90) == pytest.approx(9.1)   # rank 0.9 * 9 = 8.1: 9 + 0.1 * (10 - 9)
    assert tails.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert tails.percentile([], 90) is None and tails.percentile([3.0], 99) == 3.0
    assert timing.samples_of(timing.Timing([0.3, 0.1, 0.2])) == [0.3, 0.1, 0.2]
