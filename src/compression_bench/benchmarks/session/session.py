"""A benchmark session without pytest: its four parts composed. The pytest plugin
(:mod:`compression_bench.benchmarks.plugin`, loaded by ``benchmarks/conftest.py``) is a thin layer over
this class; it also opens the MLflow tracker and runs the session end
(:func:`benchmarks.reporting.session_end.finish`: ratios, drift, comparison, plots, files, exit status),
which sit above the session.

- ``session.config``: the checked settings (:class:`benchmarks.settings.config.Config`, read from the
  options and the environment in one place);
- ``session.workspace``: the trained models, variants, runtime artifacts and peak-memory measurements,
  built on first use through the cache and kept (:class:`benchmarks.variants.workspace.Workspace`);
- ``session.judge``: the records, each with its gates judged (:class:`benchmarks.session.judge.Judge`);
- ``session.slices``: the speed slices timed so far, pooled into each test's timing
  (:class:`benchmarks.session.slices.Slices`).

    from compression_bench.benchmarks.settings.config import Config
    from compression_bench.benchmarks.reporting import session_end
    from compression_bench.benchmarks.session.session import Session
    s = Session(Config.from_options({"zoo_profile": "smoke", "zoo_models": "EnhancedLeNet5",
                                     "report_dir": "reports"}))
    ...            # s.workspace.trained(...), s.workspace.variant(...), s.judge.record(...), s.judge.add(...)
    outcome = session_end.finish(s)      # benchmarks.reporting.session_end: the files and the exit status

Problems become :class:`SessionError` with the exit status they stand for: 4 for bad input (found
before anything trains), 7 when the cache cannot be read or written.
"""
from __future__ import annotations

import functools
import sys
import uuid
from pathlib import Path
from typing import Callable

import torch

from compression_bench.benchmarks.measurement import machine
from compression_bench.benchmarks.settings.config import Config
from compression_bench.benchmarks.session.judge import Judge
from compression_bench.benchmarks.session.slices import Slices
from compression_bench.benchmarks.variants.workspace import Workspace
from compression_bench.zoo.keys import package_versions

#: the key under which a test hands its record (``Record.to_dict()``) to the session, in user_properties
RECORD_KEY = "compression_bench_record"
VERSIONS = ("torch", "torchvision", "torch-pruning", "scikit-learn")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class Session:
    """One session: its ``config``, ``workspace``, ``judge`` and ``slices``, this ``machine`` and a ``session_id``.

    ``say`` receives progress lines; ``root`` is the checkout whose git commit the report names."""

    def __init__(self, config: Config, *, say: Callable[[str], None] | None = None,
                 root: str | Path | None = None):
        self.config = config
        #: unique to this session: its MLflow run is found again by it (``compression-bench log``)
        self.session_id = uuid.uuid4().hex[:16]
        #: this machine: CPU, instruction-set features, capability class (benchmarks.measurement.machine)
        self.machine = machine.identify()
        self.say = say or _stderr
        self.heap: str | None = None  # what benchmarks.measurement.heap did to this process's allocator (set by the plugin)
        self.root = root
        self.workspace = Workspace(config, say=self.say)
        self.judge = Judge(config, cpu_class=self.machine["capability_class"])
        #: the speed slices timed so far (benchmarks.session.slices)
        self.slices = Slices()

    @functools.cached_property
    def versions(self) -> dict:
        return package_versions(*VERSIONS)

    def machine_info(self) -> dict:
        """What pytest-benchmark saves about the run beside its machine's."""
        c = self.config
        return {"profile": c.profile.name, "threads": list(c.thread_counts), **self.versions,
                "quantized_engine": torch.backends.quantized.engine, "batch_sizes": list(c.batch_sizes),
                "heap": self.heap, "machine": self.machine}
