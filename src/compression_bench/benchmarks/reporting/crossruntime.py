"""The cross-runtime table: per model, every (method, runtime) that keeps accuracy within N points of
the eager float original, fastest first. It answers "what is the fastest way to run this model within N
points?" and shows what the float original alone gains from each runtime, so that nobody reads an
INT8-vs-eager ratio as the gain over a compiled float model. Plain functions over record dicts.
"""
from __future__ import annotations

from tabulate import tabulate

from compression_bench.benchmarks.reporting.recommend import points
from compression_bench.benchmarks.results.records import measured, number, setting_of, setting_text

HEADERS = ["Runtime", "Method", "Accuracy (%)", "Δ vs eager float (pts)", "Latency (ms)", "vs eager float",
           "vs same runtime's float", "vs fastest float", "Size (MiB)"]


def _eager_originals(rows: list[dict]) -> dict:
    return {(r["model"], *setting_of(r)[:2]): r for r in rows if r["method"] == "original"
            and setting_of(r)[2] == "eager" and number(r.get("latency_median_ms"))}


def fastest(records: list[dict], within: float) -> list[tuple[str, tuple, dict, list[dict], int]]:
    """``(model, (batch, threads), eager original, rows within budget fastest first, rows left out)``
    for each model and setting that ran on more than one runtime with the eager original timed."""
    rows = [r for r in measured(records) if number(r.get("latency_median_ms"))]
    out = []
    for key, base in _eager_originals(rows).items():
        model, bs, threads = key
        mine = [r for r in rows if r["model"] == model and setting_of(r)[:2] == (bs, threads)]
        if len({setting_of(r)[2] for r in mine}) < 2:
            continue
        floor = base["accuracy"] - within
        kept = sorted((r for r in mine if r["accuracy"] >= floor - 1e-9), key=lambda r: r["latency_median_ms"])
        out.append((model, (bs, threads), base, kept, len(mine) - len(kept)))
    return out


def _name(r: dict) -> str:
    """``Pruning (Structured) 50%``: the label and, where it tells levels apart, the compression."""
    label, what = r.get("label") or r["method"], r.get("compression")
    return f"{label} {what}" if what and what not in ("N/A", "INT8") else label


def _x(v) -> str:
    v = number(v)
    return "–" if v is None else f"{v:.2f}x"


def render(records: list[dict], within: float, *, heading: str = "") -> list[str]:
    """Lines: per model a title, the table, and which float runtime is fastest."""
    lines = []
    for model, setting, base, kept, left_out in fastest(records, within):
        title = (f"{model}: fastest within {points(within)} of the eager float original ({base['accuracy']:.2f}%), "
                 f"{setting_text(setting)}")
        floats = [r for r in measured(records) if r["model"] == model and r["method"] == "original"
                  and setting_of(r)[:2] == setting and number(r.get("latency_median_ms"))]
        best = min(floats, key=lambda r: r["latency_median_ms"])

        def vs_best(r: dict) -> str:  # a compressed row slower than the fastest float original is no gain
            ratio = best["latency_median_ms"] / r["latency_median_ms"]
            return f"{ratio:.2f}x" + (" (no gain)" if ratio < 1 and r["method"] != "original" else "")
        table = [[r.get("runtime") or "eager", _name(r), f"{r['accuracy']:.2f}",
                  f"{r['accuracy'] - base['accuracy']:+.2f}", f"{r['latency_median_ms']:.2f}",
                  _x(r.get("speedup_vs_eager")), "–" if r["method"] == "original" else _x(r.get("speedup")),
                  vs_best(r), f"{r['size_mib']:.2f}" if number(r.get("size_mib")) is not None else "–"] for r in kept]
        lines += [f"{heading}{title}", "", tabulate(table, headers=HEADERS, tablefmt="github", disable_numparse=True), ""]
        lines.append(f"Fastest float original: {best.get('runtime') or 'eager'}, {best['latency_median_ms']:.2f} ms "
                     f"({_x(number(base['latency_median_ms']) / best['latency_median_ms'])} eager float); read every "
                     f"INT8 speedup against it, not against eager."
                     + (f" {left_out} row(s) lost more than {points(within)} and are left out." if left_out else ""))
        lines.append("")
    return lines
