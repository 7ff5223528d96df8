"""Which variant to pick: the smallest and the fastest within N points of the original's accuracy.

Plain functions over records (the dict form of :class:`benchmarks.results.schema.Record`), no pytest, no torch.

Rules:
- a variant qualifies when its accuracy is at least the original's minus ``within`` points;
- the original itself is never a recommendation;
- "smallest" ranks by serialized size (what a deployment ships) and only counts variants that are
  actually smaller than the original; "fastest" ranks by speedup (the original's latency over the
  variant's, paired in the variant's test, else the two medians of the run) and only counts
  variants at least :data:`FASTEST_MIN_SPEEDUP` times faster than the original in the same setting
  (batch size and threads): below that a "speedup" is within what timing noise gives on a shared
  machine (unstructured pruning, which runs dense kernels, measures 0.98-1.03x here);
- a variant's accuracy change is described with its paired test (``benchmarks.measurement.stats``): one that is
  not significant is "unchanged within noise", never better or worse than the original;
- ties are broken deterministically: higher accuracy first, then the method order given (the
  order of the run), then the method id;
- when no variant of the group was timed (``--benchmark-disable``, xdist), "fastest" is
  reported as not measured;
- every pick's speed is said twice: against the float original of its own runtime (the paired
  speedup), and against the fastest float original of the model at the same batch size and threads on
  any runtime of the session, the float model a user would otherwise ship. A static INT8 model 6.0x
  faster than eager float is only 1.28x faster than ONNX Runtime's float model when that runs 4.7x
  faster than eager; a pick slower than that float model is said to be no gain over shipping it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from compression_bench.benchmarks.results.records import groups, measured
from compression_bench.benchmarks.results.records import number as _num
from compression_bench.benchmarks.results.records import setting_of
from compression_bench.benchmarks.results.schema import speedup as _speedup
from compression_bench.benchmarks.measurement.stats import ALPHA, p_text

#: Smallest speedup that makes a variant "fastest": below it the gain is within timing noise.
FASTEST_MIN_SPEEDUP = 1.10


@dataclass(frozen=True)
class Pick:
    """One recommended variant and what it gains against the original."""
    record: dict
    size_gain: float | None      # original size / variant size (3.9 = 3.9x smaller)
    speed_gain: float | None     # the speedup: original latency / variant latency (2.7 = 2.7x faster)
    accuracy_delta: float        # variant - original, in points
    #: the fastest float original of the model at the pick's batch size and threads on any runtime of the
    #: session (None: none was timed), and the pick's speed against it (its latency over the pick's)
    fastest_float: dict | None = None
    vs_fastest: float | None = None

    @property
    def method(self) -> str:
        return self.record["method"]

    def describe(self) -> str:
        """``static_int8: 3.9x smaller, 6.0x faster than eager float, 1.28x faster than the fastest float
        original (onnxruntime), accuracy unchanged within noise (-0.2 pts, n.s.)``."""
        p_value = _num(self.record.get("delta_p_value"))
        return (f"{self.method}: "
                f"{gains_text(self.size_gain, self.speed_gain, self.accuracy_delta, p_value, speed=self.speed_text())}")

    def speed_text(self) -> str:
        """The speedup against the float original of the pick's runtime, and against the fastest float
        original of the session: ``6.0x faster than eager float, 1.28x faster than the fastest float
        original (onnxruntime)``; ``... (the fastest float original measured)`` when they are the same."""
        runtime = setting_of(self.record)[2]
        own = _gain(self.speed_gain, "faster", "slower", "speed")
        best, vs = self.fastest_float, self.vs_fastest
        if self.speed_gain is None:
            return own
        own += f" than {runtime} float"
        if best is None or vs is None:
            return own
        where = setting_of(best)[2]
        if where == runtime:
            return own + " (the fastest float original measured)"
        if vs >= 1:
            return own + f", {vs:.2f}x faster than the fastest float original ({where})"
        return (own + f", but {1 / vs:.2f}x slower than the fastest float original ({where}: "
                      f"{_num(best['latency_median_ms']):.2f} ms against {_num(self.record['latency_median_ms']):.2f} "
                      f"ms, no gain over shipping that)")


@dataclass
class Recommendation:
    """The picks for one model at one batch size."""
    model: str
    setting: tuple               # (batch size, threads, runtime)
    within: float
    original_accuracy: float | None
    smallest: Pick | None = None
    fastest: Pick | None = None
    latency_measured: bool = False
    qualifying: list[str] = field(default_factory=list)   # method ids within the accuracy budget
    variants: int = 0                                      # compressed variants in the group

    def lines(self) -> list[str]:
        """Plain sentences (Markdown-safe): ``smallest — static_int8: 3.9x smaller, 2.7x faster, -0.2 pts``."""
        if self.original_accuracy is None:
            return ["none: the original was not measured in this run, so there is nothing to measure gains against"]
        if not self.variants:
            return ["none: no compressed variant of this model was run"]
        if not self.qualifying:
            return [f"none: no variant stays within {points(self.within)} of the original's "
                    f"{self.original_accuracy:.2f}%"]
        out = ["smallest — " + (self.smallest.describe() if self.smallest else
                                "none: no qualifying variant is smaller than the original")]
        if not self.latency_measured:
            out.append("fastest — not measured (latency was not timed in this run)")
        else:
            out.append("fastest — " + (self.fastest.describe() if self.fastest else
                                       f"none: no qualifying variant is at least {FASTEST_MIN_SPEEDUP:.2f}x faster "
                                       f"than the original"))
        return out


def points(within: float) -> str:
    """``1 point``, ``0.5 points``."""
    return f"{within:g} point" + ("" if within == 1 else "s")


def _gain(gain: float | None, better: str, worse: str, what: str) -> str:
    if gain is None:
        return f"{what} not measured"
    return f"{gain:.1f}x {better}" if gain >= 1 else f"{1 / gain:.1f}x {worse}"


def gains_text(size_gain: float | None, speed_gain: float | None, delta: float | None,
               p_value: float | None = None, *, speed: str | None = None) -> str:
    """``3.9x smaller, 2.7x faster, -0.2 pts``; with the change's McNemar ``p_value`` a change that is
    not significant is called unchanged within noise (never better or worse), a significant one
    carries its p-value. ``speed``, when given, is the speed's text (:meth:`Pick.speed_text`)."""
    parts = [_gain(size_gain, "smaller", "larger", "size"), speed or _gain(speed_gain, "faster", "slower", "speed")]
    if delta is not None:
        pts = f"{0.0 if abs(delta) < 0.05 else delta:+.1f} pts"
        if p_value is None:
            parts.append(pts)
        elif p_value >= ALPHA:
            parts.append(f"accuracy unchanged within noise ({pts}, n.s.)")
        else:
            parts.append(f"accuracy {'higher' if delta > 0 else 'lower'}: {pts} ({p_text(p_value)})")
    return ", ".join(parts)


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def recommend_group(records: Sequence[dict], *, within: float = 1.0,
                    method_order: Sequence[str] | None = None) -> Recommendation:
    """Recommendation for the records of one model at one batch size."""
    if not records:
        raise ValueError("recommend_group needs at least one record")
    model, setting = records[0]["model"], setting_of(records[0])
    original = next((r for r in records if r["method"] == "original"), None)
    orig_acc = _num(original["accuracy"]) if original else _num(records[0].get("original_accuracy"))
    rec = Recommendation(model, setting, within, orig_acc)
    if orig_acc is None:
        return rec
    order = list(method_order or [])
    for r in records:
        if r["method"] not in order:
            order.append(r["method"])

    def tiebreak(r: dict):
        return (-(_num(r["accuracy"]) or 0.0), order.index(r["method"]), r["method"])

    # a small epsilon so that "exactly 1.0 pts below" qualifies despite float rounding
    candidates = [r for r in records if r["method"] != "original" and _num(r.get("accuracy")) is not None
                  and _num(r["accuracy"]) >= orig_acc - within - 1e-9]
    rec.variants = sum(r["method"] != "original" for r in records)
    rec.qualifying = [r["method"] for r in sorted(candidates, key=tiebreak)]

    o_size = _num(original.get("size_mib")) if original else None
    o_lat = _num(original.get("latency_median_ms")) if original else None

    def speedup(r: dict) -> float | None:
        paired = _num(r.get("speedup"))
        return paired if paired is not None else _speedup(o_lat, r.get("latency_median_ms"))

    def pick(r: dict) -> Pick:
        return Pick(r, _ratio(o_size, _num(r.get("size_mib"))), speedup(r), _num(r["accuracy"]) - orig_acc)

    if o_size:
        smaller = [r for r in candidates if _num(r.get("size_mib")) is not None and _num(r["size_mib"]) < o_size]
        if smaller:
            rec.smallest = pick(min(smaller, key=lambda r: (_num(r["size_mib"]), tiebreak(r))))
    rec.latency_measured = any(speedup(r) is not None for r in candidates)
    if rec.latency_measured:
        faster = [r for r in candidates if (speedup(r) or 0.0) >= FASTEST_MIN_SPEEDUP]
        if faster:
            rec.fastest = pick(min(faster, key=lambda r: (-speedup(r), tiebreak(r))))
    return rec


def recommend(records: Iterable[dict], *, within: float = 1.0,
              method_order: Sequence[str] | None = None) -> list[Recommendation]:
    """One :class:`Recommendation` per (model, setting), models in first-seen order."""
    rows = measured(records)
    floats: dict[tuple, dict] = {}  # (model, batch, threads) -> the fastest float original on any runtime
    for r in rows:
        lat = _num(r.get("latency_median_ms"))
        if r["method"] == "original" and lat:
            key = (r["model"], *setting_of(r)[:2])
            if key not in floats or lat < _num(floats[key]["latency_median_ms"]):
                floats[key] = r
    out = []
    for _, _, recs in groups(rows):
        rec = recommend_group(recs, within=within, method_order=method_order)
        best = floats.get((rec.model, *rec.setting[:2]))
        if best is not None:
            rec.smallest, rec.fastest = (_against(p, best) for p in (rec.smallest, rec.fastest))
        out.append(rec)
    return out


def _against(pick: Pick | None, best: dict) -> Pick | None:
    """``pick`` with its speed against ``best``, the fastest float original: the paired speedup when that
    is the original of the pick's own runtime, else the ratio of the two medians (as in the cross-runtime
    table)."""
    if pick is None:
        return None
    if setting_of(best)[2] == setting_of(pick.record)[2]:
        vs = pick.speed_gain
    else:
        vs = _speedup(best.get("latency_median_ms"), pick.record.get("latency_median_ms"))
    return replace(pick, fastest_float=best, vs_fastest=vs)
