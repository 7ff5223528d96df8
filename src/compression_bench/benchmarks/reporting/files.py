"""The session's files and header: report.md, results.json and results.csv written atomically to the
report folder, and the run header they carry (date, profile, datasets, CPU and capability class, library
versions, the git commit of the checkout). The file I/O and the git call of reporting, apart from the
rendering in :mod:`benchmarks.reporting.report`. No pytest.
"""
from __future__ import annotations

import csv
import io
import json
import platform
import subprocess
import time
from pathlib import Path

from compression_bench.benchmarks.measurement import machine as machine_
from compression_bench.benchmarks.reporting.report import render_report
from compression_bench.benchmarks.results.document import results_document
from compression_bench.benchmarks.results.schema import FIELDS
from compression_bench.zoo.cache import write_atomic


def git_commit(repo: str | Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of ``repo``, noting uncommitted changes to tracked files; else "unknown"."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    try:
        if git("status", "--porcelain", "--untracked-files=no"):
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        pass
    return commit or "unknown"


def datasets_text(records: list[dict]) -> str:
    """``digits``, or ``MNIST (SimpleCNN_6x2, EnhancedLeNet5); CIFAR-10 (ResNet50Custom)``."""
    by: dict[str, list[str]] = {}
    for r in records:
        if r.get("dataset") is None and any(x.get("model") == r["model"] and x.get("dataset") for x in records):
            continue  # a row that did not run (n/a, failed) has no dataset; its model's other rows say it
        models = by.setdefault(str(r.get("dataset") or "?"), [])
        if r["model"] not in models:
            models.append(r["model"])
    if len(by) <= 1:
        return next(iter(by), "?")
    return "; ".join(f"{d} ({', '.join(m)})" for d, m in by.items())


def run_header(records: list[dict], *, profile: str, batch_sizes, threads, versions: dict,
               repo: str | Path | None = None, machine: dict | None = None) -> dict:
    """The run header of report.md and results.json; ``machine``: :func:`benchmarks.measurement.machine.identify`."""
    header = {"Date": time.strftime("%Y-%m-%d %H:%M:%S %Z").strip(), "Profile": profile,
              "Dataset": datasets_text(records), "Batch size(s)": ", ".join(map(str, batch_sizes)),
              "Threads": threads, "Python": platform.python_version()}
    machine = machine or machine_.identify()
    header["CPU"] = machine_.describe(machine)
    header["Capability class"] = machine["capability_class"]
    header["Machine key"] = machine["key"]
    header.update({k: v for k, v in (machine.get("versions") or {}).items() if k not in versions})
    header.update(versions)
    header["Git commit"] = git_commit(repo)
    return header


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_results(records: list[dict], header: dict, report_dir: str | Path,
                  **report_options) -> tuple[dict[str, Path], list[str]]:
    """report.md, results.json and results.csv in ``report_dir``, each written atomically;
    ``report_options`` go to :func:`render_report` (within, method_order, comparison, plots, notices).

    Returns (the files written, one sentence per file that could not be written): a failure to write
    one file does not stop the others."""
    d = Path(report_dir)
    document = results_document(records, header)
    contents = {
        "report": ("report.md", lambda: render_report(records, header, **report_options)),
        "json": ("results.json", lambda: json.dumps(document, indent=2)),
        "csv": ("results.csv", lambda: _csv(document["results"])),
    }
    paths, unwritten = {}, []
    for key, (name, render) in contents.items():
        path = d / name
        try:
            d.mkdir(parents=True, exist_ok=True)
            write_atomic(path, render())
        except OSError as err:
            unwritten.append(f"could not write {path} ({err.strerror or err}); the tables above are complete, "
                             f"the file was left as it was")
        else:
            paths[key] = path
    return paths, unwritten
