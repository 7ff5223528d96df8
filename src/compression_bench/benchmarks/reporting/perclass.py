"""report.md's per-class section: how each variant's predictions differ from the original's, class by class.

Plain functions over records (dicts), no pytest. Compressed models lose accuracy unevenly across classes
even when top-1 barely moves, so per model and runtime report.md lists every variant's agreement with the
original (share of images with the same predicted class) and the change of each class's accuracy, then,
for each variant whose drop is significant (``benchmarks.measurement.stats``), the classes that lost most.
"""
from __future__ import annotations

from tabulate import tabulate

from compression_bench.benchmarks.results import schema
from compression_bench.benchmarks.results.records import measured, number

MAX_CLASS_COLUMNS = 20  # above this many classes the per-class table lists only the classes that lost most


def render(group: list[dict], split: str, runtime_titles: dict, heading: str = "### ") -> list[str]:
    """report.md lines for one model and runtime: per variant the agreement with the original and the
    change of each class's accuracy (points), then, for each variant whose drop is significant, the
    classes that lost most. Empty when no record carries per-class figures."""
    rows = [r for r in measured(group) if r["method"] != "original" and r.get("per_class_delta")]
    if not rows:
        return []
    r0 = rows[0]
    classes = sorted({k for r in rows for k in r["per_class_delta"]}, key=lambda k: (len(k), k))
    runtime = r0.get("runtime") or "eager"
    out = [f"{heading}{r0['model']}: agreement with the original and per-class change on "
           f"{runtime_titles.get(runtime, runtime).split(' (')[0]} ({split})", "",
           "Agree: share of images on which the variant predicts the original's class. Class columns: "
           "the change of that class's accuracy against the original, in points.", ""]
    wide = len(classes) <= MAX_CLASS_COLUMNS
    headers = ["Method", "Δ acc (pts)", "Agree (%)"] + ([f"class {k}" for k in classes] if wide else
                                                         ["classes that lost most (pts)"])
    table = []
    for r in rows:
        d = r["per_class_delta"]
        row = [r["method"], schema.delta_cell(r), f"{number(r.get('agreement')) or 0:.1f}"]
        row += [f"{d[k]:+.1f}" if k in d else "–" for k in classes] if wide else [_losers(d)]
        table.append(row)
    out += [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]
    drops = [r for r in rows if (r.get("delta_significant") or r.get("significant_seeds"))
             and (number(r.get("accuracy_delta")) or 0) < 0]
    if drops:
        out += ["Significant drops, and the classes that lost most:", ""]
        out += [f"- {r['method']}: {schema.delta_cell(r)}; {_losers(r['per_class_delta'])}" for r in drops]
    else:
        out += ["No variant's drop is significant at the 5% level on these images."]
    return out + [""]


def _losers(per_class: dict, k: int = 3) -> str:
    worst = sorted(((v, c) for c, v in per_class.items() if v < 0))[:k]
    return ", ".join(f"class {c} {v:+.1f}" for v, c in worst) or "no class lost accuracy"
