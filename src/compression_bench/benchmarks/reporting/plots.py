"""Trade-off plots: accuracy vs latency and accuracy vs size, one point per variant.

Plain functions over records (the dict form of :class:`benchmarks.results.schema.Record`), no pytest, no torch.
Per model and setting ``<model>-bs<N>-t<threads>-accuracy-latency.png``; per model
``<model>-accuracy-size.png`` (size does not depend on the batch). Each plot marks the original
distinctly, tells methods apart by colour (family: quantization / unstructured / structured) and
marker, labels every point with its method id and draws the Pareto front (maximize accuracy,
minimize latency or size).

Figures are drawn on an explicit Agg canvas (no pyplot), so the caller's matplotlib backend and global
state are left alone and nothing needs a display.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from compression_bench.benchmarks.results.records import groups, measured, number, setting_text

FAMILIES = ("quantization", "unstructured", "structured", "other")
COLOURS = {"original": "black", "quantization": "tab:blue", "unstructured": "tab:orange",
           "structured": "tab:green", "other": "tab:gray"}
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h")

NO_LATENCY = "latency plots skipped: latency was not measured in this run (--benchmark-disable or xdist)"


@dataclass
class PlotResult:
    """What :func:`make_plots` produced: files per model (title, path) and one-line notices."""
    by_model: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [p for items in self.by_model.values() for _, p in items]


def plot_family(record: dict) -> str:
    """original, quantization, unstructured, structured or other."""
    if record["method"] == "original":
        return "original"
    if record.get("family") == "quantization":
        return "quantization"
    text = f"{record['method']} {record.get('label', '')}".lower()
    if "unstructured" in text:
        return "unstructured"
    if "structured" in text:
        return "structured"
    return "other"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower-or-equal x and higher-or-equal y, one
    strictly. Sorted by x ascending (so accuracy rises along the front). Of identical points the
    first one is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))


def latency_plot_name(model: str, batch_size, threads=None, runtime: str | None = None) -> str:
    t = "" if threads is None else f"-t{threads}"
    r = "" if runtime in (None, "eager") else f"-{safe_name(runtime)}"
    return f"{safe_name(model)}-bs{batch_size}{t}{r}-accuracy-latency.png"


def size_plot_name(model: str) -> str:
    return f"{safe_name(model)}-accuracy-size.png"


def _num(v) -> float | None:
    v = number(v)
    return None if v is None or v < 0 else v


def _styles(records: Sequence[dict], method_order: Sequence[str]) -> dict[str, tuple[str, str, str]]:
    """method -> (family, colour, marker); markers count up within each family, in method order."""
    methods = list(dict.fromkeys([m for m in method_order if any(r["method"] == m for r in records)] +
                                 [r["method"] for r in records]))
    fam = {r["method"]: plot_family(r) for r in records}
    seen: dict[str, int] = {}
    out = {}
    for m in methods:
        f = fam[m]
        if f == "original":
            out[m] = (f, COLOURS[f], "*")
            continue
        k = seen.get(f, 0)
        seen[f] = k + 1
        out[m] = (f, COLOURS[f], MARKERS[k % len(MARKERS)])
    return out


def _clusters(xs: list[float], ys: list[float], log_x: bool, threshold: float = 0.045) -> list[list[int]]:
    """Greedy clusters of points that would sit on top of each other (in axis-fraction units)."""
    tx = [math.log10(x) if log_x else x for x in xs]
    span_x = (max(tx) - min(tx)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    clusters: list[list[int]] = []
    for i in sorted(range(len(xs)), key=lambda i: (tx[i], -ys[i])):
        for c in clusters:
            j = c[0]
            if abs(tx[i] - tx[j]) / span_x < threshold and abs(ys[i] - ys[j]) / span_y < threshold * 1.6:
                c.append(i)
                break
        else:
            clusters.append([i])
    return clusters


def _draw(records: list[dict], x_key: str, *, xlabel: str, title: str, path: Path, within: float | None,  # noqa: PLR0915 - one figure drawn top to bottom
          method_order: Sequence[str]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pts = [(float(r[x_key]), float(r["accuracy"])) for r in records]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    log_x = min(xs) > 0 and max(xs) / min(xs) > 10
    styles = _styles(records, method_order)

    fig = Figure(figsize=(10, 5.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())

    front = pareto_front(pts)
    if len(front) > 1:
        fx, fy = [xs[i] for i in front], [ys[i] for i in front]
        ax.plot(fx, fy, drawstyle="steps-post", linestyle="--", color="0.35", linewidth=1.2, zorder=1,
                label="Pareto front (max accuracy, min " + ("latency" if x_key.startswith("latency") else "size") + ")")
    front_set = set(front)

    original = next((r for r in records if r["method"] == "original"), None)
    if original is not None and within is not None:
        ax.axhline(float(original["accuracy"]) - within, color="0.5", linestyle=":", linewidth=1, zorder=0,
                   label=f"original − {within:g} point{'' if within == 1 else 's'} (recommendation budget)")

    fam_rank = {f: i for i, f in enumerate(("original",) + FAMILIES)}
    for i in sorted(range(len(records)), key=lambda i: (fam_rank[styles[records[i]["method"]][0]],
                                                       list(styles).index(records[i]["method"]))):
        r = records[i]
        fam, colour, marker = styles[r["method"]]
        is_orig = fam == "original"
        label = "original (float)" if is_orig else f"{fam} · {r['method']}"
        lo, hi = _num(r.get("accuracy_low")), _num(r.get("accuracy_high"))
        sd = _num(r.get("accuracy_sd"))
        if sd is not None:  # averaged over seeds: the bar is one standard deviation either side
            lo, hi = ys[i] - sd, ys[i] + sd
        if lo is not None and hi is not None:  # the 95% interval of the accuracy
            ax.errorbar([xs[i]], [ys[i]], yerr=[[max(0.0, ys[i] - lo)], [max(0.0, hi - ys[i])]], fmt="none",
                        ecolor=colour, elinewidth=1.0, capsize=3, alpha=0.7, zorder=2)
        ax.scatter([xs[i]], [ys[i]], s=260 if is_orig else 70, marker=marker, color=colour, zorder=4 if is_orig else 3,
                   edgecolors="black" if i in front_set and not is_orig else "none", linewidths=1.0, label=label)

    tx = [math.log10(x) if log_x else x for x in xs]
    for c in _clusters(xs, ys, log_x):
        top = max(c, key=lambda i: ys[i])
        text = "\n".join(records[i]["method"] for i in sorted(c, key=lambda i: -ys[i]))
        # labels of points in the right part of the plot go to their left, so they stay inside
        right = (tx[top] - min(tx)) > 0.65 * ((max(tx) - min(tx)) or 1.0)
        ax.annotate(text, (xs[top], ys[top]), textcoords="offset points", xytext=(-8 if right else 8, 5),
                    ha="right" if right else "left", va="bottom", fontsize=8, color="0.15", zorder=5)
    ax.margins(x=0.08)

    ax.set_xlabel(xlabel)
    split = next((r.get("accuracy_split") for r in records if r.get("accuracy_split")), "validation")
    seeds = max((r.get("seeds") or 1 for r in records), default=1)
    bars = f"mean ± sd over {seeds} seeds" if seeds > 1 else "95% interval"
    ax.set_ylabel(f"{split.capitalize()} top-1 accuracy (%), {bars}")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    lo, hi = min(ys), max(ys)
    pad = max(0.5, (hi - lo) * 0.08)
    ax.set_ylim(lo - pad, hi + pad * 1.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title="points with a black edge are on the front", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _by_model(records: Sequence[dict]) -> dict[str, list[tuple[tuple, list[dict]]]]:
    """model -> [(setting, records)], settings ascending (:func:`benchmarks.results.records.groups`)."""
    out: dict[str, list[tuple[tuple, list[dict]]]] = {}
    for model, setting, recs in groups(records):
        out.setdefault(model, []).append((setting, recs))
    return out


def make_plots(records: Sequence[dict], out_dir: str | Path, *, within: float | None = 1.0,
               method_order: Sequence[str] = ()) -> PlotResult:
    """Write the trade-off plots for ``records`` into ``out_dir``; never raises for plotting problems."""
    result = PlotResult()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        result.notices.append(f"plots skipped: cannot create {out} ({err.strerror or err})")
        return result
    untimed = False
    for model, settings in _by_model(measured(records)).items():
        items = result.by_model.setdefault(model, [])
        recs = [r for _, group in settings for r in group]
        r0 = recs[0]
        where = f"{r0.get('dataset', '?')}, profile {r0.get('profile', '?')}"
        for setting, group in settings:
            bs, threads, runtime = setting
            path = out / latency_plot_name(model, bs, threads, runtime)
            timed = [r for r in group if _num(r.get("latency_median_ms")) and _num(r.get("accuracy")) is not None]
            if len(timed) < 1 or not any(r["method"] == "original" for r in timed):
                untimed = True
                path.unlink(missing_ok=True)  # a stale plot from an earlier run would mislead
                continue
            title = f"{model}: accuracy vs latency ({setting_text(setting)}, {where})"
            try:
                _draw(timed, "latency_median_ms", xlabel=f"Latency, median per batch of {bs} (ms)", title=title,
                      path=path, within=within, method_order=method_order)
                items.append((f"{model}: accuracy vs latency at {setting_text(setting)}", path))
            except Exception as err:  # a plot is never worth failing the benchmark run for
                result.notices.append(f"plot {path.name} failed: {type(err).__name__}: {err}")
        # size does not depend on the batch size: one point per method
        per_method = {}
        for r in sorted(recs, key=lambda r: ((r.get("runtime") or "eager") != "eager", r.get("batch_size") is None,
                                             r.get("batch_size") or 0)):  # the eager row: the state dict's size
            if _num(r.get("size_mib")) and _num(r.get("accuracy")) is not None:
                per_method.setdefault(r["method"], r)
        path = out / size_plot_name(model)
        if not per_method:
            continue
        try:
            _draw(list(per_method.values()), "size_mib", xlabel="Size, serialized state_dict (MiB)",
                  title=f"{model}: accuracy vs size ({where})", path=path, within=within, method_order=method_order)
            items.append((f"{model}: accuracy vs size", path))
        except Exception as err:
            result.notices.append(f"plot {path.name} failed: {type(err).__name__}: {err}")
    if untimed:
        result.notices.append(NO_LATENCY)
    return result
