"""A steady heap for timing: glibc's malloc told to keep freed memory instead of handing it back. No pytest.

Eager PyTorch allocates every activation tensor anew on each inference and frees it at the end.
glibc serves a large allocation either from its heap or from a fresh ``mmap``, and gives memory at
the top of its heap back to the system once more than a threshold is free; both thresholds move
with the history of the process (a freed ``mmap`` chunk raises them). So the same model can run
on memory that stays mapped, or on pages the kernel must map and zero again on every inference,
depending on what the process did before. Measured here (2-core VM, one thread, batch 64):
EnhancedLeNet5's float model took 17.7 ms in one process and 27.2 ms in another, identical but
for earlier allocations; the slow one took 3,852 page faults per inference, the fast one none. In
a benchmark session this showed as the original switching between about 18 and 28 ms from one
test to the next, while its pruned variants (other tensor sizes) did not, so even paired speedups
carried it (structured_50: 2.5x in one seed's tests, 4.0x in another's).

:func:`steady_heap` sets both thresholds once, at the start of a timing session: allocations up
to 32 MiB (glibc's largest mmap threshold) come from the heap, and up to 1 GiB of freed heap is
kept. Every inference then runs on memory that is already mapped, as it does with jemalloc or
tcmalloc, the allocators PyTorch's CPU performance guide recommends. The process keeps more
resident memory between inferences; peak memory is measured in child processes of their own
(``peakmem``), which this does not touch. ``ZOO_STEADY_HEAP=0`` leaves glibc's defaults.
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2 ** 20  # the largest value glibc accepts on 64-bit systems
TRIM_THRESHOLD = 2 ** 30


def steady_heap() -> str:
    """Set glibc's mmap and trim thresholds for this process; returns what was done, in words
    (recorded with each saved run)."""
    if os.environ.get("ZOO_STEADY_HEAP", "1").strip().lower() in ("0", "false", "no", "off"):
        return "allocator defaults (ZOO_STEADY_HEAP=0)"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "allocator defaults (not glibc)"
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them: no library search
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        ok = False
    if not ok:
        return "allocator defaults (mallopt failed)"
    return f"glibc malloc: mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB"
