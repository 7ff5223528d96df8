"""Session-end tables and result files. Plain functions over records (dicts), no pytest.

A record is one (model, method, batch size, threads, runtime, seed) measurement, the dict form of
:class:`benchmarks.results.schema.Record`; the table's columns and the files' fields come from the schema.
Records are grouped by model and *setting* (batch size, threads and runtime), one table per group
(:func:`benchmarks.results.records.groups`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tabulate import tabulate

from compression_bench.benchmarks.reporting import crossruntime, perclass, recommend
from compression_bench.benchmarks.results import schema
from compression_bench.benchmarks.measurement import timing
from compression_bench.benchmarks.results import records as records_
from compression_bench.benchmarks.results.records import measured, number, setting_text

FIELDS, HEADERS = schema.FIELDS, schema.HEADERS  # from the schema: one list of fields for every consumer
groups = records_.groups
add_ratios = records_.add_ratios


def cell(r: dict, key: str, col: schema.Column):
    """One table cell: the field formatted as its :class:`schema.Column` says; "–" when not measured."""
    if r.get("status") and key != "label":
        return r["status"] if key == "accuracy" else (r.get(key) if key == "compression" else "–")
    if key == "label" and r.get("seeds") == 1:  # one seed left in a table of several: no mean, no spread
        return cell({**r, "seeds": None, "label": f"{r.get('label')} (n=1)"}, key, col)
    if r["method"] == "original" and col.original is not None:
        shown = col.render(r) if col.render is not None and "{}" in col.original else r.get(key)
        return col.original.format(shown)
    if col.render is not None:
        return col.render(r)
    if not col.spec:
        return r.get(key)
    v = number(r.get(key))
    return "–" if v is None else f"{v / col.scale:{col.spec}}{col.suffix}"


DRIFT_NOTICE = 0.05  # a spread of the original's latency above this is reported as a notice


def latency_drift(records: list[dict]) -> list[tuple[str, object, list[float], float]]:
    """Per (model, setting): the original's median latency each time this run timed it (its own
    test, then once per paired variant test) and their spread, (max - min) / median. The original
    does not change, so the spread is how much the machine's speed changed during the run."""
    out = []
    for model, bs, recs in groups(measured(records)):
        seen = [number(r.get("latency_median_ms")) for r in recs if r["method"] == "original"]
        seen += [number(r.get("reference_latency_median_ms")) for r in recs if r["method"] != "original"]
        seen = [v for v in seen if v]
        s = timing.spread(seen)
        if s is not None:
            out.append((model, bs, seen, s))
    return out


def drift_lines(records: list[dict]) -> list[str]:
    return [f"{model} @ {setting_text(bs)}: the original timed {len(seen)} times, {min(seen):.2f}–{max(seen):.2f} ms "
            f"(spread {s:.1%})" for model, bs, seen, s in latency_drift(records)]


def drift_notice(records: list[dict]) -> str | None:
    """One sentence when the machine's speed changed by more than DRIFT_NOTICE during the run."""
    drift = latency_drift(records)
    if not drift:
        return None
    model, bs, _, worst = max(drift, key=lambda d: d[3])
    if worst <= DRIFT_NOTICE:
        return None
    return (f"the machine's speed changed during this run: the original of {model} @ {setting_text(bs)} varied by "
            f"{worst:.1%} across its tests. Absolute latencies are uncertain to about that much; speedups are "
            f"paired (original and variant timed in the same test) and do not carry it, so compare runs and gate "
            f"on speedup.")


def noise_line(records: list[dict]) -> str | None:
    """One line on how noisy timing was in this run: the speedup intervals' half-widths and the
    original's round-to-round variation (None when nothing was paired)."""
    widths = [(number(r.get("speedup_half_width")), r) for r in measured(records)]
    widths = [(w, r) for w, r in widths if w is not None]
    if not widths:
        return None
    ws = sorted(w for w, _ in widths)
    worst, wr = max(widths, key=lambda x: x[0])
    noise = sorted(v for v in (number(r.get("reference_noise")) for r in records) if v is not None)
    seconds = [v for v in (number(r.get("timing_seconds")) for r in records) if v is not None]
    return (f"timing noise: speedup 95% intervals ±{ws[len(ws) // 2]:.1%} median, ±{worst:.1%} at most "
            f"({wr['model']} / {wr['method']} on {wr.get('runtime') or 'eager'}); the original's round-to-round "
            f"variation {noise[len(noise) // 2]:.1%} median" if noise else "timing noise: –") + (
            f"; {sum(seconds) / len(seconds):.1f} s of paired rounds per test on average" if seconds else "") + (
            _sliced(records)) + _retimed(records)


def _sliced(records: list[dict]) -> str:
    """How the speed slices of the run disagreed (``dispersion`` of records timed in slices)."""
    sliced = [r for r in records if (number(r.get("speed_slices")) or 0) > 1]
    if not sliced:
        return ""
    worst = max(sliced, key=lambda r: number(r.get("dispersion")) or 1.0)
    ratio = number(worst.get("dispersion")) or 1.0
    return (f"; {int(number(worst['speed_slices']))} slices per variant, spread over the session: their estimates "
            f"disagreed up to {ratio:.1f} times more (in variance) than their own intervals said, and the "
            f"intervals are widened by that" if ratio > 1.05 else
            f"; {int(number(worst['speed_slices']))} slices per variant, spread over the session: their estimates "
            f"agreed as their intervals said")


def _retimed(records: list[dict]) -> str:
    again = [r for r in records if (number(r.get("timings")) or 0) > 1]
    if not again:
        return ""
    names = ", ".join(f"{r['model']} / {r['method']}" for r in again[:4]) + (", ..." if len(again) > 4 else "")
    return (f"; {len(again)} test(s) timed again because the original ran more than 10% off its median in "
            f"the session's other tests (the machine changed state): {names}")


def table_rows(records: Iterable[dict]) -> list[list[str]]:
    """The table's rows, most accurate first (the original first among equals)."""
    return [[cell(r, key, col) for key, col in schema.COLUMNS]
            for r in sorted(records, key=lambda r: (bool(r.get("status")), -(number(r.get("accuracy")) or 0.0),
                                                    r["method"] != "original"))]


#: what each runtime's rows are, in the table titles
RUNTIME_TITLES = {"eager": "eager PyTorch (INT8 rows: torch.ao FX)",
                  "inductor": "Inductor, AOT-compiled (INT8 rows: torchao PT2E, X86InductorQuantizer)",
                  "onnxruntime": "ONNX Runtime, CPU (INT8 rows: QDQ from onnxruntime.quantization)"}


def group_title(model: str, setting: tuple, recs: list[dict]) -> str:
    r0 = recs[0]
    runtime = setting[2] if len(setting) > 2 else "eager"
    seeds = max((r.get("seeds") or 1 for r in recs), default=1)
    one = "; n=1: the one seed left, its own figures" if any(r.get("seeds") == 1 for r in recs) else ""
    return (f"### {model} — {split_text(recs)}, profile {r0.get('profile', '?')}, "
            f"latency at {setting_text(setting[:2])}, on {RUNTIME_TITLES.get(runtime, runtime)}"
            + (f"; mean ± standard deviation over {seeds} seeds (ratios: geometric mean ×/÷ geometric standard "
               f"deviation{one})" if seeds > 1 else ""))


def split_text(recs: list[dict]) -> str:
    """Where the accuracies come from: ``digits test split (225 images)``; ``digits validation`` for
    records of runs that did not say."""
    r0 = next((r for r in recs if r.get("accuracy_split")), recs[0])
    split, n = r0.get("accuracy_split") or "validation", r0.get("accuracy_images")
    return f"{r0.get('dataset', '?')} {split} split" + (f" ({n} images)" if n else "")


def render_table(recs: list[dict]) -> str:
    return tabulate(table_rows(recs), headers=HEADERS, tablefmt="github", disable_numparse=True)


def render_tables(records: list[dict]) -> str:
    return "\n\n".join(group_title(model, bs, recs) + "\n\n" + render_table(recs)
                        for model, bs, recs in groups(records_.across_seeds(records)))


NOTES = ("Accuracy is top-1 on the split the title names (the test split, held out from every choice of "
         "recipe and budget, where the dataset has one), with its 95% Wilson interval in brackets. Δ acc is "
         "the change against the original on the same images, with the exact McNemar test of it: (n.s.) "
         "marks a change that is not significant at the 5% level, otherwise its p-value is shown. Agree is "
         "the share of images on which the variant predicts the original's class. p90 and p99 are per "
         "call: percentiles of single timed calls of the variant after its paired rounds (n: how many). "
         "Size is the serialized `state_dict` (MiB); zero-aware size stores only nonzero values plus a "
         "1-bit mask per element. Params count every stored weight element, packed INT8 included. "
         "MACs are per image, counted on the float graph. Latency is the median per batch with its 95% "
         "bootstrap interval. Ref. latency is the original's median latency timed in the variant's own "
         "test: the two are timed alternately, round by round, and Speedup is the centre of the per-round "
         "ratios (10%-trimmed geometric mean) with its 95% bootstrap interval, so it need not equal the "
         "ratio of the two medians. ⚠ marks a variant meant for speed that is slower than what it "
         "replaces (listed with the likely cause at the end). Channels pruned is the fraction of channels "
         "structured pruning really removed (kept counts are rounded to a multiple of the kernels' block). "
         "Size ratio is against the original.")


def render_recommendations(records: list[dict], *, within: float = 1.0, method_order=None,
                           markdown: bool = False) -> list[str]:
    """One line per (model, setting): the smallest and the fastest variant within budget."""
    out = []
    for rec in recommend.recommend(records, within=within, method_order=method_order):
        where = f"{rec.model} @ {setting_text(rec.setting)}"
        out.append(f"{'- **' + where + '**' if markdown else where}: " + "; ".join(rec.lines()))
    return out


def render_report(records: list[dict], header: dict, *, within: float = 1.0, method_order=None,
                  comparison=None, plots=None, notices=()) -> str:
    """report.md: run header, notes, then per model its tables, recommendation, plots and (when the
    run was compared) the changes against the compared run.

    ``comparison`` is a :class:`benchmarks.reporting.compare.Comparison` (or None), ``plots`` a
    :class:`benchmarks.reporting.plots.PlotResult` (or None when plots were not attempted)."""
    records = records_.across_seeds(records)  # several seeds: one row per method, mean and spread
    lines = ["# Compression benchmark report", ""]
    for k, v in header.items():
        lines.append(f"- **{k}**: {v}")
    lines += ["", NOTES, ""]
    extra = list(notices) + (list(plots.notices) if plots is not None else [])
    if comparison is not None:
        extra += list(comparison.notes)
    for note in extra:
        lines += [f"> **Note:** {note}", ""]
    if comparison is not None:
        lines += [f"Changes against the compared run {comparison.a} (A) are shown under each model: accuracy "
                  f"in points (B − A), size, params and latency as ratios B/A, where B is this run.", ""]
    recs = {(r.model, r.setting): r for r in recommend.recommend(records, within=within, method_order=method_order)}
    models = list(dict.fromkeys(r["model"] for r in records))
    for model in models:
        lines += [f"## {model}", ""]
        for m, bs, group in groups(records):
            if m != model:
                continue
            lines += [group_title(model, bs, group), "", render_table(group), ""]
            for _model, _bs, seen, sp in latency_drift(group):
                lines += [f"Timing stability: the original, timed {len(seen)} times in this run (its own test and "
                          f"each variant's), took {min(seen):.2f}–{max(seen):.2f} ms, a spread of {sp:.1%}.", ""]
            rec = recs.get((model, bs))
            if rec is not None:
                acc = "" if rec.original_accuracy is None else f" ({rec.original_accuracy:.2f}%)"
                lines += [f"**Recommendation** at {setting_text(bs)}, within {recommend.points(within)} of the original's "
                          f"accuracy{acc}:", ""]
                lines += [f"- {line}" for line in rec.lines()] + [""]
        firsts = {bs[2]: group for m, bs, group in reversed(groups(records)) if m == model}  # per runtime: its first
        for group in firsts.values():  # setting (per-class figures do not depend on batch size or threads)
            lines += perclass.render(group, split_text(group), RUNTIME_TITLES)
        lines += crossruntime.render([r for r in records if r["model"] == model], within, heading="### ")
        if plots is not None:
            for title, path in plots.by_model.get(model, []):
                lines += [f"![{title}]({Path(path).name})", ""]
        if comparison is not None and any(p.model == model for p in comparison.pairs):
            lines += [comparison.render(heading="###", models=[model]), ""]
    return "\n".join(lines)
