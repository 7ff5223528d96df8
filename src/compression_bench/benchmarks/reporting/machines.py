"""The method-by-machine table of ``compression-bench machines``: one model's speedups with their intervals,
a column per machine, from each machine's latest results (which :class:`~.tracking.Tracker` fetches from
MLflow). Rendering only: nothing here talks to a server."""
from __future__ import annotations


def machine_table(results: dict[str, dict], model: str) -> tuple[list[str], list[list[str]], list[str]]:
    """A method-by-machine table of ``model``'s speedups with their intervals, from each machine's
    results (machine key -> the dict of its results.json). Returns (headers, rows, notes)."""
    machines = sorted(results)
    cells: dict[tuple[str, str], dict[str, str]] = {}
    order: list[tuple[str, str]] = []
    notes = []
    for key in machines:
        header = results[key].get("header") or {}
        notes.append(f"{key}: {header.get('CPU', '?')}; commit {header.get('Git commit', '?')}, "
                     f"torch {header.get('torch', '?')}, onnxruntime {header.get('onnxruntime', '?')}, "
                     f"{header.get('Date', '?')}")
        for r in results[key].get("results") or []:
            if r.get("model") != model or r.get("seed") not in (0, None):
                continue
            row = (str(r.get("method")), str(r.get("runtime")))
            if row not in cells:
                cells[row] = {}
                order.append(row)
            cells[row][key] = _speedup_text(r)
    rows = [[m, rt] + [cells[(m, rt)].get(k, "–") for k in machines] for m, rt in order]
    return ["method", "runtime"] + machines, rows, notes


def _speedup_text(r: dict) -> str:
    if r.get("status"):
        return "failed"
    s = r.get("speedup")
    if s is None:
        return "1.00x (original)" if r.get("method") == "original" else "–"
    lo, hi = r.get("speedup_low"), r.get("speedup_high")
    return f"{s:.2f}x ({lo:.2f}-{hi:.2f})" if lo is not None and hi is not None else f"{s:.2f}x"
