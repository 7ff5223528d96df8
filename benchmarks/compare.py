"""Comparing two runs metric by metric: accuracy, size, params and latency. No pytest, no torch.

A run is either a pytest-benchmark saved run (``--benchmark-save``/``--benchmark-autosave``/
``--benchmark-json``: per benchmark ``name``, ``stats`` in seconds and the suite's figures in
``extra_info``) or the ``results.json`` the suite writes next to ``report.md``. Variants are matched
by benchmark name (the test id, ``test_variant[<model>-<method>-bs<batch>]``) when both sides have
names, else by (model, method, batch size), which is what the test id is made of.

pytest-benchmark compares timings only; this module is what compares accuracy and size, both for
``compression-bench compare A B`` and for the session-end tables of a run started with
``--benchmark-compare``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tabulate import tabulate

from compression_bench.benchmarks.records import number as _num
from compression_bench.benchmarks.records import setting_of, setting_sort_key, setting_text

# figures a saved benchmark must carry in extra_info to be compared (older saved runs lack them)
REQUIRED = ("model", "method", "accuracy", "size_mib", "params")
NUMERIC = ("accuracy", "size_mib", "params")
DEFAULT_STORAGE = ".benchmarks"
SAME = 0.005  # accuracy changes below this many points print as 0.00

HEADERS = ["Method", "Accuracy A → B (%)", "Δ acc (pts)", "Size A → B (MiB)", "Size B/A",
           "Params A → B (M)", "Params B/A", "Latency A → B (ms)", "Latency B/A", "Speedup A → B"]


class CompareError(Exception):
    """A run cannot be compared; the message is one sentence that names the file and the fix."""


# ---------------------------------------------------------------- loading



_BS = re.compile(r"-bs(\d+)(?:-t\d+)?\]$")


def record_from_benchmark(bench: Mapping, source: str) -> dict:
    """One record (see :data:`benchmarks.report.FIELDS`) from one saved pytest-benchmark entry."""
    if not isinstance(bench, Mapping):
        raise CompareError(f"{source} has a malformed benchmark entry (expected an object, got "
                           f"{type(bench).__name__}).")
    name = bench.get("name") or bench.get("fullname") or "?"
    extra = bench.get("extra_info")
    extra = extra if isinstance(extra, Mapping) else {}
    missing = [k for k in REQUIRED if k not in extra]
    if missing:
        raise CompareError(f"{source} was saved in an older format: benchmark {name!r} lacks "
                           f"{', '.join(missing)} in extra_info, so save a new run with the current suite "
                           f"(pytest benchmarks/ --benchmark-only --benchmark-save=NAME).")
    bad = [k for k in NUMERIC if _num(extra[k]) is None]
    if bad:
        raise CompareError(f"{source} has non-numeric {', '.join(bad)} for benchmark {name!r}.")
    rec = dict(extra)
    rec["name"] = str(name).rsplit("::", 1)[-1]
    if rec.get("batch_size") is None:
        m = _BS.search(rec["name"])
        rec["batch_size"] = int(m.group(1)) if m else None
    stats = bench.get("stats")
    median = _num(stats.get("median")) if isinstance(stats, Mapping) else None
    rec["latency_median_ms"] = None if median is None else median * 1e3
    rec.setdefault("label", rec["method"])
    return rec


def records_from_run(data, source: str) -> list[dict]:
    """Records from a parsed saved run (pytest-benchmark JSON or the suite's results.json)."""
    if isinstance(data, Mapping) and isinstance(data.get("benchmarks"), list):
        if not data["benchmarks"]:
            raise CompareError(f"{source} holds no benchmarks (was the run made with --benchmark-disable?).")
        return [record_from_benchmark(b, source) for b in data["benchmarks"]]
    if isinstance(data, Mapping) and isinstance(data.get("results"), list) and "format" in data:
        out = []
        for r in data["results"]:
            if not isinstance(r, Mapping) or any(k not in r for k in REQUIRED) or \
                    any(_num(r[k]) is None for k in NUMERIC):
                raise CompareError(f"{source} is a results file with an incomplete entry (each needs "
                                   f"{', '.join(REQUIRED)}).")
            out.append(dict(r))
        if not out:
            raise CompareError(f"{source} holds no results.")
        return out
    raise CompareError(f"{source} is not a saved benchmark run of this suite (it has no 'benchmarks' list "
                       f"as pytest-benchmark writes, nor a 'results' list as results.json has).")


@dataclass
class Run:
    """A loaded run: where it came from, what it says about itself, and its records."""
    name: str
    path: str
    records: list[dict]
    profile: str | None = None
    saved: str | None = None
    commit: str | None = None

    def describe(self) -> str:
        bits = [f"saved {self.saved}" if self.saved else None,
                f"profile {self.profile}" if self.profile else None,
                f"commit {self.commit}" if self.commit else None]
        bits = [b for b in bits if b]
        return f"{self.name} ({self.path}" + (f"; {', '.join(bits)})" if bits else ")")


def run_from_data(data, path: str, name: str | None = None) -> Run:
    records = records_from_run(data, path)
    name = name or Path(path).stem
    if "benchmarks" in data:
        info = data.get("machine_info") if isinstance(data.get("machine_info"), Mapping) else {}
        bench_info = info.get("compression_bench") if isinstance(info.get("compression_bench"), Mapping) else {}
        commit = data.get("commit_info") if isinstance(data.get("commit_info"), Mapping) else {}
        cid = str(commit.get("id") or "")[:7] or None
        if cid and commit.get("dirty"):
            cid += " (uncommitted changes)"
        return Run(name, path, records, profile=bench_info.get("profile") or records[0].get("profile"),
                   saved=data.get("datetime"), commit=cid)
    header = data.get("header") if isinstance(data.get("header"), Mapping) else {}
    low = {str(k).lower(): v for k, v in header.items()}
    return Run(name, path, records, profile=low.get("profile") or records[0].get("profile"),
               saved=low.get("date"), commit=low.get("git commit"))


def load_run(path: str | Path, name: str | None = None) -> Run:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CompareError(f"{p} is not a JSON file (it is not even UTF-8 text).") from None
    except OSError as err:
        raise CompareError(f"cannot read {p} ({err.strerror or err}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CompareError(f"{p} is not a JSON file ({err.msg} at line {err.lineno}, column {err.colno}).") from None
    return run_from_data(data, str(p), name)


def resolve(ref: str, storage: str | Path = DEFAULT_STORAGE) -> Path:
    """A path as given, or a pytest-benchmark run id (``0001``, ``0001_base``, ``<machine>/0001``)
    looked up in the storage folder the way ``--benchmark-compare`` does."""
    p = Path(ref)
    if p.is_file():
        return p
    store = Path(storage)
    if not store.is_dir():
        raise CompareError(f"no saved run {ref!r}: it is not a file, and there is no benchmark storage folder "
                           f"{str(store)!r} to look up a run id in (choose one with --storage).")
    stem = ref.rstrip("*")
    found: list[Path] = []
    if not stem.endswith(".json") and len(p.parts) <= 2:
        if len(p.parts) == 2:
            found = sorted(store.glob(f"{p.parts[0]}/{p.parts[1].rstrip('*')}*.json"))
        else:
            found = sorted(set(store.glob(f"*/{stem}*.json")) | set(store.glob(f"{stem}*.json")))
    if not found:
        raise CompareError(f"no saved run {ref!r}: it is not a file, and no run id in {str(store)!r} starts with it "
                           f"(list them with 'pytest-benchmark --storage {store} list').")
    if len(found) > 1:
        shown = ", ".join(str(f.relative_to(store)) for f in found[:5]) + (", ..." if len(found) > 5 else "")
        raise CompareError(f"run id {ref!r} is ambiguous in {str(store)!r} ({shown}); pass a longer id or a file path.")
    return found[0]


# ---------------------------------------------------------------- comparing

def _key(r: Mapping, by_name: bool):
    return r["name"] if by_name else (r["model"], r["method"], *setting_of(r))


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


@dataclass
class Comparison:
    a: str                       # name of run A (the older / compared run)
    b: str                       # name of run B (the newer run)
    pairs: list[Pair]
    notes: list[str] = field(default_factory=list)

    def groups(self) -> list[tuple[str, object, list[Pair]]]:
        models = list(dict.fromkeys(p.model for p in self.pairs))
        out = []
        for m in models:
            mine = [p for p in self.pairs if p.model == m]
            for setting in sorted({p.setting for p in mine}, key=setting_sort_key):
                out.append((m, setting, [p for p in mine if p.setting == setting]))
        return out

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
            _x(p.ratio("latency_median_ms")), _pair_text(o.get("speedup"), n.get("speedup"), ".2f")]


def compare_records(old: Iterable[dict], new: Iterable[dict], a: str = "A", b: str = "B", *,
                    keep_only_old: bool = True) -> Comparison:
    """Pair the records of two runs (by test id where both have one); ``keep_only_old=False`` drops
    variants that the new run did not measure (a run of a subset compared to a full run)."""
    old, new = list(old), list(new)
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
    return c


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


def session_comparison(compared_mapping: Mapping | None, records: Sequence[dict], *,
                       current: str = "this run") -> Comparison | None:
    """The comparison of this session's records against the run pytest-benchmark loaded for
    ``--benchmark-compare`` (``BenchmarkSession.compared_mapping``: ``{path: {fullname: bench}}``).
    None when nothing was loaded; the newest file when a glob matched several."""
    if not compared_mapping:
        return None
    path, benches = list(compared_mapping.items())[-1]
    source = str(path)
    old = [record_from_benchmark(b, source) for b in benches.values()]
    c = compare_records(old, records, Path(source).stem, current, keep_only_old=False)
    if len(compared_mapping) > 1:
        c.notes.append(f"--benchmark-compare matched {len(compared_mapping)} saved runs; accuracy and size are "
                       f"compared against the newest, {Path(source).stem}.")
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
             "than latency does.", "",
             c.render(heading="##"), ""]
    lines += [f"- {s}" for s in c.summary()]
    return "\n".join(lines) + "\n"


def render_text(a: Run, b: Run, c: Comparison) -> str:
    lines = [f"A: {a.describe()}", f"B: {b.describe()}", "", c.render(heading="###"), ""]
    lines += c.summary()
    return "\n".join(lines)
