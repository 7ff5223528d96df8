"""Runtimes: how a built variant is prepared and run for timing and evaluation, with how many
threads, and how big it is on disk. A plain library (no pytest).

A runtime is an object with a ``name`` and four methods (see :class:`Runtime`); it knows nothing
about how a variant was compressed beyond the ``nn.Module`` it is given. Register one with
:func:`register_runtime`; every module in this package is imported on first use, so a new runtime
is one new file here that calls :func:`register_runtime`.

    from compression_bench.benchmarks.runtimes import get_runtime
    rt = get_runtime("eager")
    run = rt.prepare(model, example_batch)      # a callable: batch -> logits
    with rt.threads(1) as in_force:
        logits = run(example_batch)
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
from typing import Callable, ContextManager, Iterator, Protocol

import torch
from torch import nn

Prepared = Callable[[torch.Tensor], torch.Tensor]


class UnknownRuntimeError(ValueError):
    """Raised for a runtime name that is not registered."""


class Runtime(Protocol):
    name: str
    description: str

    def prepare(self, model: nn.Module, example: torch.Tensor) -> Prepared:
        """What the runtime runs: a callable from an input batch to the model's output."""

    def threads(self, count: int) -> ContextManager[int]:
        """Run the body with ``count`` threads; yields the count actually in force."""

    def size_mib(self, model: nn.Module) -> float:
        """The variant's size as this runtime stores it, in MiB."""


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """torch's intra-op thread count set to ``count`` for the body, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


_REGISTRY: dict[str, Runtime] = {}
_LOADED = False


def register_runtime(runtime: Runtime) -> Runtime:
    if runtime.name in _REGISTRY:
        raise ValueError(f"runtime {runtime.name!r} is registered twice")
    _REGISTRY[runtime.name] = runtime
    return runtime


def _load_builtins() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{mod.name}")


def list_runtimes() -> list[str]:
    _load_builtins()
    return list(_REGISTRY)


def get_runtime(name: str) -> Runtime:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownRuntimeError(f"unknown runtime {name!r}; valid names: {', '.join(_REGISTRY)}") from None
