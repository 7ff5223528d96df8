"""Session-end tables and result files. Plain functions over records (dicts), no pytest.

A record is one (model, method, batch size) measurement; see :data:`FIELDS`.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable

from tabulate import tabulate

FIELDS = [
    "model", "method", "label", "compression", "family", "level", "profile", "dataset",
    "batch_size", "threads", "accuracy", "accuracy_delta", "params", "nonzero_params", "sparsity",
    "size_mib", "zero_aware_size_mib", "macs", "density_weighted_macs", "latency_median_ms",
    "latency_iqr_ms", "latency_stddev_ms", "latency_rounds", "speedup", "size_ratio",
]

HEADERS = ["Method", "Compression", "Val. accuracy (%)", "Δ acc (pts)", "Num of params (M)",
           "Nonzero (M)", "Size (MiB)", "Zero-aware (MiB)", "MACs (M)", "Latency (ms)",
           "Speedup", "Size ratio"]


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _fmt(v, spec: str, suffix: str = "") -> str:
    v = _num(v)
    return "–" if v is None else f"{v:{spec}}{suffix}"


def add_ratios(records: list[dict]) -> list[dict]:
    """Fill accuracy_delta, speedup and size_ratio against the original of the same model and batch."""
    originals = {(r["model"], r["batch_size"]): r for r in records if r["method"] == "original"}
    by_model = {r["model"]: r for r in records if r["method"] == "original"}
    for r in records:
        o = originals.get((r["model"], r["batch_size"])) or by_model.get(r["model"])
        if o is None:
            continue
        r["accuracy_delta"] = r["accuracy"] - o["accuracy"]
        r["size_ratio"] = r["size_mib"] / o["size_mib"] if o["size_mib"] else None
        lat, olat = _num(r.get("latency_median_ms")), _num(o.get("latency_median_ms"))
        r["speedup"] = olat / lat if lat and olat and o["batch_size"] == r["batch_size"] else None
    return records


def table_rows(records: Iterable[dict]) -> list[list[str]]:
    rows = []
    for r in sorted(records, key=lambda r: (-r["accuracy"], r["method"] != "original")):
        method = f"**{r['label']}**" if r["method"] == "original" else r["label"]
        rows.append([
            method, r["compression"], _fmt(r["accuracy"], ".2f"),
            "–" if r["method"] == "original" else _fmt(r.get("accuracy_delta"), "+.2f"),
            _fmt(r["params"] / 1e6, ".3f"), _fmt(r["nonzero_params"] / 1e6, ".3f"),
            _fmt(r["size_mib"], ".2f"), _fmt(r["zero_aware_size_mib"], ".2f"),
            _fmt(r["macs"] / 1e6 if r.get("macs") is not None else None, ".1f"),
            _fmt(r.get("latency_median_ms"), ".2f"),
            _fmt(r.get("speedup"), ".2f", "x"), _fmt(r.get("size_ratio"), ".3f", "x"),
        ])
    return rows


def groups(records: list[dict]) -> list[tuple[str, int | None, list[dict]]]:
    """(model, batch size, records) in first-seen model order, batch sizes ascending."""
    order: dict[str, None] = {}
    for r in records:
        order.setdefault(r["model"], None)
    out = []
    for model in order:
        mine = [r for r in records if r["model"] == model]
        for bs in sorted({r["batch_size"] for r in mine}, key=lambda b: (b is None, b)):
            out.append((model, bs, [r for r in mine if r["batch_size"] == bs]))
    return out


def render_tables(records: list[dict]) -> str:
    parts = []
    for model, bs, recs in groups(records):
        r0 = recs[0]
        title = (f"### {model} — {r0.get('dataset', '?')} validation, profile {r0.get('profile', '?')}, "
                 f"latency at batch {bs}, {r0.get('threads', '?')} threads")
        parts.append(title + "\n\n" + tabulate(table_rows(recs), headers=HEADERS, tablefmt="github",
                                               disable_numparse=True))
    return "\n\n".join(parts)


def render_report(records: list[dict], header: dict) -> str:
    lines = ["# Compression benchmark report", ""]
    for k, v in header.items():
        lines.append(f"- **{k}**: {v}")
    lines += ["", "Size is the serialized `state_dict` (MiB); zero-aware size stores only nonzero values plus a "
              "1-bit mask per element. Params count every stored weight element, packed INT8 included. "
              "MACs are per image, counted on the float graph. Latency is the median per batch; "
              "speedup and size ratio are against the original measured in the same session.", "",
              render_tables(records), ""]
    return "\n".join(lines)


def write_results(records: list[dict], header: dict, report_dir: str | Path) -> dict[str, Path]:
    d = Path(report_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"report": d / "report.md", "json": d / "results.json", "csv": d / "results.csv"}
    paths["report"].write_text(render_report(records, header))
    clean = [{k: r.get(k) for k in FIELDS} for r in records]
    paths["json"].write_text(json.dumps({"format": 1, "header": header, "results": clean}, indent=2))
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(clean)
    return paths
