"""The steady heap of timing sessions (src/compression_bench/benchmarks/measurement/heap.py): with glibc's thresholds set, a large tensor
allocated and freed again and again stops costing page faults; ZOO_STEADY_HEAP=0 leaves the defaults."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from compression_bench.benchmarks.measurement import heap

CHILD = textwrap.dedent("""
    import resource, sys, torch
    from compression_bench.benchmarks.measurement import heap
    if sys.argv[1] == "steady":
        print(heap.steady_heap())
    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            torch.ones(64, 32, 28, 28).sum()  # 6.1 MiB, as EnhancedLeNet5's first activation at batch 64
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
    faults()
    print(faults())
""")

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def _faults(mode: str, **env) -> tuple[str, float]:
    # small fixed thresholds: every 6 MiB tensor gets a fresh mmap, as in the slow processes the module describes
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072", **env)
    r = subprocess.run([sys.executable, "-P", "-c", CHILD, mode], env=env, capture_output=True, text=True, timeout=360)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    return lines[0], float(lines[-1])


@pytest.mark.timing
@glibc
def test_a_steady_heap_maps_a_repeated_large_allocation_once():
    _, plain = _faults("plain")
    said, steady = _faults("steady")
    assert plain > 1000  # about 1,570 pages of 4 KiB mapped and zeroed on every allocation
    assert steady < 10 and said == "glibc malloc: mmap threshold 32 MiB, trim threshold 1024 MiB"


@pytest.mark.timing
@glibc
def test_zoo_steady_heap_0_leaves_the_allocator_alone():
    said, faults = _faults("steady", ZOO_STEADY_HEAP="0")
    assert said == "allocator defaults (ZOO_STEADY_HEAP=0)" and faults > 1000


def test_off_glibc_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(heap.platform, "libc_ver", lambda: ("", ""))
    assert heap.steady_heap() == "allocator defaults (not glibc)"
