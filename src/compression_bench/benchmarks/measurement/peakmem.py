"""Peak resident memory of this process, and of one call measured from a baseline. No pytest.

A process's resident memory only ever shows its high-water mark, and freed tensors stay with the
allocator, so the suite measures each variant in a fresh child process
(:mod:`benchmarks.variants.memory`), which calls :func:`peak_of_call` once its imports are done.
"""
from __future__ import annotations

import gc
import resource
import sys
from pathlib import Path
from typing import Callable


def status_mib(field: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` of this process from /proc (Linux), in MiB; None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Set this process's high-water mark (VmHWM) to its present resident size (Linux 4.0 and later)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mib() -> float:
    """This process's peak resident size. ``VmHWM`` belongs to the process's own address space, which a
    new program starts afresh; ``ru_maxrss`` (the fallback off Linux) also counts the parent's resident
    size at the fork, so on its own it would carry the benchmark process's memory into the child's."""
    hwm = status_mib("VmHWM")
    if hwm is not None:
        return hwm
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 2 ** 20


def peak_of_call(load: Callable[[], Callable], x) -> dict:
    """Run ``load()`` and the callable it returns once on ``x``: ``{"peak_mib", "peak_increase_mib",
    "baseline_mib"}``. The **baseline** is this process's resident size before, with its imports done
    (its high-water mark reset to it; where that is not possible, the high-water mark so far); the
    **peak** is the high-water mark after; the increase is what loading and running cost."""
    gc.collect()
    baseline = status_mib("VmRSS") if reset_peak() else peak_mib()
    run = load()
    run(x)
    peak = peak_mib()
    return {"peak_mib": peak, "peak_increase_mib": peak - baseline, "baseline_mib": baseline}
