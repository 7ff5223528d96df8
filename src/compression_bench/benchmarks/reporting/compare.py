"""Comparing two runs metric by metric: accuracy, size, params and latency. No pytest, no torch.

Runs are loaded by :mod:`benchmarks.reporting.saved` (pytest-benchmark saved runs or the suite's
``results.json``). Variants are matched by
benchmark name (the test id: ``test_variant[<model>-<method>-bs<batch>-t<threads>]`` on eager, with
``-<runtime>`` after the method on another runtime and ``-seed<k>`` after that for seed k > 0) when
both sides have names, else by (model, method, batch size, threads, runtime, seed), which is what the
test id is made of.

pytest-benchmark compares timings only; this module is what compares accuracy and size, both for
``compression-bench compare A B`` and for the session-end tables of a run started with
``--benchmark-compare``.

Its length (about 350 lines) is one comparison: pairing records, the change of each metric with its
interval and noise floor, the regressions and the rendered tables share the same pairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tabulate import tabulate

from compression_bench.benchmarks.results.records import groups as _groups
from compression_bench.benchmarks.results.records import number as _num
from compression_bench.benchmarks.results.records import measured, setting_of, setting_text
from compression_bench.benchmarks.reporting.saved import CompareError, Run, load_run, record_from_benchmark

__all__ = ["SAME", "HEADERS", "Pair", "Comparison", "row",
           "compare_records", "compare_runs", "accuracy_regressions", "speedup_regressions", "session_comparison",
           "render_markdown", "render_text", "Change", "change", "SPEEDUP_NOISE", "LATENCY_NOISE"]

SAME = 0.005  # accuracy changes below this many points print as 0.00
#: Changes smaller than these are never called significant, however narrow their interval: what two runs
#: of the same code moved by on the 2-core VMs this suite was built on (docs/guide/reports.md). A
#: speedup's interval covers the noise within its test, not a machine that changes state between
#: processes: two warm default runs back to back (2026-12-04, re-timing on) moved 95% of 40 speedups by
#: at most 5.1% (median 1.7%). A latency median carries all of the drift (the whole machine ran a few
#: percent slower in one of two runs).
SPEEDUP_NOISE = 0.05
LATENCY_NOISE = 0.10
Z95 = 1.959963984540054

HEADERS = ["Method", "Accuracy A → B (%)", "Δ acc (pts)", "Size A → B (MiB)", "Size B/A",
           "Params A → B (M)", "Params B/A", "Latency A → B (ms)", "Latency B/A [95% CI]", "Speedup A → B",
           "Speedup B/A [95% CI]", "p99 A → B (ms)", "Peak mem A → B (MiB)"]


@dataclass(frozen=True)
class Change:
    """How a figure moved from run A to run B: the ratio B/A, its 95% interval (None where a side has
    no interval), and whether it is a significant change: the interval excludes 1 and the change is
    larger than the noise floor."""
    ratio: float
    low: float | None
    high: float | None
    noise: float

    @property
    def significant(self) -> bool:
        if self.low is None or self.high is None:
            return False
        return (self.high < 1.0 or self.low > 1.0) and abs(self.ratio - 1.0) > self.noise

    def text(self) -> str:
        """``0.88x (0.85-0.91) ▼``: ▼/▲ mark a significant fall/rise, ≈ a change within noise; no mark
        without an interval (a run saved before speedups had one)."""
        if self.low is None or self.high is None:
            return f"{self.ratio:.2f}x"
        ci = f" ({self.low:.2f}-{self.high:.2f})"
        mark = (" ▼" if self.ratio < 1 else " ▲") if self.significant else " ≈"
        return f"{self.ratio:.2f}x{ci}{mark}"


def _log_se(r: Mapping, key: str, low: str, high: str) -> float | None:
    """The standard error of log(``key``) from its 95% interval ``low``-``high`` (None without one)."""
    v, lo, hi = _num(r.get(key)), _num(r.get(low)), _num(r.get(high))
    if v is None or lo is None or hi is None or lo <= 0 or hi < lo:
        return None
    import math
    return (math.log(hi) - math.log(lo)) / (2 * Z95)


def change(old: Mapping, new: Mapping, key: str, low: str, high: str, noise: float) -> Change | None:
    """The :class:`Change` of ``key`` from ``old`` to ``new``, its interval combining both sides'
    (in logarithms, as independent)."""
    import math
    a, b = _num(old.get(key)), _num(new.get(key))
    if not a or not b or a <= 0 or b <= 0:
        return None
    ratio = b / a
    se_a, se_b = _log_se(old, key, low, high), _log_se(new, key, low, high)
    if se_a is None or se_b is None:
        return Change(ratio, None, None, noise)
    half = Z95 * math.hypot(se_a, se_b)
    return Change(ratio, ratio * math.exp(-half), ratio * math.exp(half), noise)


def _key(r: Mapping, by_name: bool):
    return r["name"] if by_name else (r["model"], r["method"], *setting_of(r), r.get("seed") or 0)


def _ratio(new, old) -> float | None:
    new, old = _num(new), _num(old)
    return new / old if new is not None and old else None


@dataclass
class Pair:
    """One variant in run A (old) and run B (new); either side may be missing."""
    old: dict | None
    new: dict | None

    @property
    def ref(self) -> dict:
        return self.new or self.old

    @property
    def model(self) -> str:
        return self.ref["model"]

    @property
    def method(self) -> str:
        return self.ref["method"]

    @property
    def setting(self) -> tuple:
        return setting_of(self.ref)

    @property
    def where(self) -> str:
        return f"{self.model} / {self.method} @ {setting_text(self.setting)}"

    @property
    def accuracy_delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return float(self.new["accuracy"]) - float(self.old["accuracy"])

    def ratio(self, key: str) -> float | None:
        if self.old is None or self.new is None:
            return None
        return _ratio(self.new.get(key), self.old.get(key))

    def speedup_change(self, noise: float = SPEEDUP_NOISE) -> Change | None:
        if self.old is None or self.new is None or self.method == "original":
            return None
        return change(self.old, self.new, "speedup", "speedup_low", "speedup_high", noise)

    def latency_change(self, noise: float = LATENCY_NOISE) -> Change | None:
        if self.old is None or self.new is None:
            return None
        return change(self.old, self.new, "latency_median_ms", "latency_low_ms", "latency_high_ms", noise)


@dataclass
class Comparison:
    a: str                       # name of run A (the older / compared run)
    b: str                       # name of run B (the newer run)
    pairs: list[Pair]
    notes: list[str] = field(default_factory=list)

    def groups(self) -> list[tuple[str, object, list[Pair]]]:
        return _groups(self.pairs, key=lambda p: (p.model, p.setting))

    def changed(self, tolerance: float = SAME) -> list[Pair]:
        return [p for p in self.pairs if p.accuracy_delta is not None and abs(p.accuracy_delta) >= tolerance]

    def render(self, *, heading: str = "###", models: Sequence[str] | None = None) -> str:
        parts = []
        for model, bs, pairs in self.groups():
            if models is not None and model not in models:
                continue
            at = f" at {setting_text(bs)}" if bs[0] is not None else ""
            title = f"{heading} {model}{at}: A = {self.a}, B = {self.b}"
            parts.append(title + "\n\n" + tabulate([row(p) for p in pairs], headers=HEADERS, tablefmt="github",
                                                   disable_numparse=True))
        return "\n\n".join(parts)

    def summary(self) -> list[str]:
        matched = [p for p in self.pairs if p.old is not None and p.new is not None]
        lines = list(self.notes)
        changed = self.changed()
        drops = sorted((p for p in changed if p.accuracy_delta < 0), key=lambda p: p.accuracy_delta)
        text = f"accuracy changed in {len(changed)} of {len(matched)} matched variants"
        if drops:
            w = drops[0]
            text += (f"; largest drop: {w.where}, {float(w.old['accuracy']):.2f}% "
                     f"→ {float(w.new['accuracy']):.2f}% ({w.accuracy_delta:+.2f} pts)")
        lines.append(text + ".")
        moved = [(p, p.speedup_change()) for p in self.pairs]
        moved = [(p, c) for p, c in moved if c is not None]
        if moved:
            sig = [(p, c) for p, c in moved if c.significant]
            text = (f"speedup changed significantly (95% interval of B/A excludes 1.00x and the change exceeds the "
                    f"{SPEEDUP_NOISE:.0%} noise floor) in {len(sig)} of {len(moved)} matched variants")
            if sig:
                text += ": " + "; ".join(f"{p.where} {c.text()}" for p, c in sig)
            lines.append(text + ".")
        only_a = [p for p in self.pairs if p.new is None]
        only_b = [p for p in self.pairs if p.old is None]
        if only_a:
            lines.append(f"only in A ({self.a}): " + ", ".join(p.where for p in only_a))
        if only_b:
            lines.append(f"only in B ({self.b}): " + ", ".join(p.where for p in only_b))
        return lines


def _pair_text(old, new, spec: str, scale: float = 1.0) -> str:
    def f(v):
        v = _num(v)
        return "–" if v is None else f"{v / scale:{spec}}"
    return f"{f(old)} → {f(new)}"


def _x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}x"


def _change_text(c: Change | None) -> str:
    return "–" if c is None else c.text()


def row(p: Pair) -> list[str]:
    o, n = p.old or {}, p.new or {}
    d = p.accuracy_delta
    if d is None:
        delta = "only in B" if p.old is None else "only in A"
    else:
        delta = "0.00" if abs(d) < SAME else f"{d:+.2f}"
    method = f"**{p.method}**" if p.method == "original" else p.method
    return [method, _pair_text(o.get("accuracy"), n.get("accuracy"), ".2f"), delta,
            _pair_text(o.get("size_mib"), n.get("size_mib"), ".2f"), _x(p.ratio("size_mib")),
            _pair_text(o.get("params"), n.get("params"), ".3f", 1e6), _x(p.ratio("params")),
            _pair_text(o.get("latency_median_ms"), n.get("latency_median_ms"), ".2f"),
            _change_text(p.latency_change()), _pair_text(o.get("speedup"), n.get("speedup"), ".2f"),
            _change_text(p.speedup_change()),
            _pair_text(o.get("latency_p99_ms"), n.get("latency_p99_ms"), ".2f"),
            _pair_text(o.get("peak_increase_mib"), n.get("peak_increase_mib"), ".1f")]


def compare_records(old: Iterable[dict], new: Iterable[dict], a: str = "A", b: str = "B", *,
                    keep_only_old: bool = True) -> Comparison:
    """Pair the records of two runs (by test id where both have one); ``keep_only_old=False`` drops
    variants that the new run did not measure (a run of a subset compared to a full run)."""
    old, new = measured(old), measured(new)
    by_name = all(r.get("name") for r in old + new)
    old_map = {_key(r, by_name): r for r in old}
    pairs, seen = [], set()
    for r in new:
        k = _key(r, by_name)
        seen.add(k)
        pairs.append(Pair(old_map.get(k), r))
    if keep_only_old:
        pairs += [Pair(r, None) for k, r in old_map.items() if k not in seen]
    return Comparison(a, b, pairs)


def compare_runs(a: Run, b: Run) -> Comparison:
    c = compare_records(a.records, b.records, a.name, b.name)
    if a.profile and b.profile and a.profile != b.profile:
        c.notes.append(f"warning: A was run on profile {a.profile} and B on profile {b.profile}, "
                       f"so their figures are not comparable.")
    if a.machine and b.machine and a.machine != b.machine:
        c.notes.append(machine_note(a.machine, b.machine))
    return c


def machine_note(a: str, b: str) -> str:
    """What a comparison across two machines (keys ``a`` and ``b``) must say."""
    ca, cb = a.rsplit("-", 1)[0], b.rsplit("-", 1)[0]
    what = (f"another capability class ({ca} → {cb}): INT8 and pruning gains differ between classes, so speed "
            f"changes are the machines', not the code's" if ca != cb else
            "the same capability class but another CPU model or library versions: speed changes may be the "
            "machines'")
    return f"warning: A and B ran on different machines ({a} → {b}), {what}."


def accuracy_regressions(comparison: Comparison, max_drop: float) -> list[str]:
    """One message per variant whose accuracy dropped by more than ``max_drop`` points from A to B."""
    out = []
    for p in comparison.pairs:
        d = p.accuracy_delta
        if d is not None and -d > max_drop + 1e-9:
            out.append(f"{p.where}: accuracy dropped from "
                       f"{float(p.old['accuracy']):.2f}% in {comparison.a} to {float(p.new['accuracy']):.2f}% "
                       f"({d:+.2f} pts), more than the allowed {max_drop:.2f} points (--compare-fail-accuracy)")
    return out


def speedup_regressions(comparison: Comparison, max_drop: float, noise: float = SPEEDUP_NOISE) -> list[str]:
    """One message per variant whose speedup fell significantly (:class:`Change`) and by more than
    ``max_drop`` (a fraction: 0.1 for 10%) from A to B (``--compare-fail-speedup``). A run saved without
    speedup intervals cannot show significance: its drops are not failures."""
    out = []
    for p in comparison.pairs:
        c = p.speedup_change(noise)
        if c is not None and c.significant and c.ratio < 1.0 - max_drop:
            out.append(f"{p.where}: speedup fell from {float(p.old['speedup']):.2f}x in {comparison.a} to "
                       f"{float(p.new['speedup']):.2f}x, B/A {c.text()}, a significant drop of more than "
                       f"{max_drop:.0%} (--compare-fail-speedup)")
    return out


def _saved_machine(path: str) -> str | None:
    """The machine key a saved pytest-benchmark run recorded, if any."""
    try:
        return load_run(path).machine
    except CompareError:
        return None


def session_comparison(compared_mapping: Mapping | None, records: Sequence[dict], *,
                       current: str = "this run", machine_key: str | None = None) -> Comparison | None:
    """The comparison of this session's records against the run pytest-benchmark loaded for
    ``--benchmark-compare`` (``BenchmarkSession.compared_mapping``: ``{path: {fullname: bench}}``).
    None when nothing was loaded; the newest file when a glob matched several."""
    if not compared_mapping:
        return None
    path, benches = list(compared_mapping.items())[-1]
    source = str(path)
    old = [record_from_benchmark(b, source) for b in benches.values()]
    c = compare_records(old, measured(records), Path(source).stem, current, keep_only_old=False)
    if len(compared_mapping) > 1:
        c.notes.append(f"--benchmark-compare matched {len(compared_mapping)} saved runs; accuracy and size are "
                       f"compared against the newest, {Path(source).stem}.")
    old_machine = _saved_machine(source)
    if machine_key and old_machine and machine_key != old_machine:
        c.notes.append(machine_note(old_machine, machine_key))
    profiles = {r.get("profile") for r in old} - {None}
    now = {r.get("profile") for r in records} - {None}
    if profiles and now and profiles != now:
        c.notes.append(f"warning: {Path(source).stem} was run on profile {', '.join(sorted(profiles))} and this run "
                       f"on {', '.join(sorted(now))}, so their figures are not comparable.")
    return c


def render_markdown(a: Run, b: Run, c: Comparison) -> str:
    lines = [f"# Comparison: {a.name} → {b.name}", "",
             f"- **A**: {a.describe()}", f"- **B**: {b.describe()}", "",
             "Accuracy changes are in points (B − A); size, params and latency as ratios B/A "
             "(below 1.00x: smaller or faster in B). Latency is the median per batch; speedup is the "
             "variant's against the original timed in the same test, which drifts less between runs "
             f"than latency does. ▼/▲ mark a significant change: its 95% interval excludes 1.00x and it "
             f"exceeds the noise floor ({SPEEDUP_NOISE:.0%} for speedups, {LATENCY_NOISE:.0%} for latency); "
             "≈ marks a change within noise.", "",
             c.render(heading="##"), ""]
    lines += [f"- {s}" for s in c.summary()]
    return "\n".join(lines) + "\n"


def render_text(a: Run, b: Run, c: Comparison) -> str:
    lines = [f"A: {a.describe()}", f"B: {b.describe()}", "", c.render(heading="###"), ""]
    lines += c.summary()
    return "\n".join(lines)
