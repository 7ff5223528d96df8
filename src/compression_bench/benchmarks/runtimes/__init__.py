"""Runtimes: what runs a variant for timing and evaluation (eager PyTorch, Inductor, ONNX Runtime),
with how many threads. A plain library (no pytest).

``eager`` runs the variant's ``nn.Module`` as built (its INT8 rows are torch.ao FX modules). Every
other runtime *builds an artifact* from a :class:`Source` (an ONNX file, a compiled Inductor package:
bytes that the pipeline caches like a variant) and *loads* it into a callable. A float method's
artifact is made from the float variant; an INT8 method's from the float model its quantization
starts from (the trained original, or a composition's pruned parent), quantized by the runtime's own
toolchain on the same calibration batches as the eager rows. A half-precision method's artifact
(``bf16``, ``fp16``: :attr:`Source.precision`) is made from its cast variant, whose values are
exact in float32, and lowered to the dtype by the runtime's own toolchain. A method a runtime cannot
express has a reason (:meth:`Runtime.unsupported`), shown as ``n/a: <reason>`` in its row.

Register a runtime with :func:`register_runtime`; every module in this package is imported on first
use, so a new runtime is one new file here.

    from compression_bench.benchmarks.runtimes import get_runtime
    rt = get_runtime("onnxruntime")
    artifact = rt.build(source)                  # bytes, cached by benchmarks.variants.cached
    with rt.threads(1) as in_force:
        run = rt.load(artifact, in_force)        # a callable: batch -> logits (a torch tensor)
        logits = run(batch)
"""
from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Protocol

import torch
from torch import nn

from compression_bench.compression.float_request import FloatRequest, float_request
from compression_bench.compression.int8_request import Int8Request, int8_request
from compression_bench.plugins import Registry, import_submodules
from compression_bench.zoo.training import torch_threads  # noqa: F401  (for runtimes: the one thread-count primitive)

Prepared = Callable[[torch.Tensor], torch.Tensor]


class UnknownRuntimeError(ValueError):
    """Raised for a runtime name that is not registered."""


class RuntimeUnavailableError(RuntimeError):
    """A runtime's packages are not installed (the message holds the pip command)."""


@dataclass
class Source:
    """What a runtime builds its artifact from.

    ``method``: the :class:`~compression_bench.compression.MethodSpec`; for an INT8 method,
    :attr:`request` is what it asks for (activations, weights, layer types, QAT, layers kept in
    float), which the runtime lowers with its own toolchain; for a half-precision method,
    :attr:`precision` is its dtype; no runtime reads the method's id or kind.
    ``keep_float``: the layers (module names of ``float_model``) the method chose to keep in float
    (accuracy-aware INT8: ``request.keep_float == "sensitive"``); the runtime keeps exactly those.
    ``float_model``: what the artifact is built from: the variant itself when it is float, else the
    float model its INT8 step starts from (the trained original, or a composition's parent); for a
    half-precision method, its cast variant (:func:`~compression_bench.compression.float_request.as_float32`
    gives the same values in float32). ``example``: a batch
    of the size that is timed (an artifact specialised to a batch size is traced on it).
    ``calibration()``: the batches the eager static INT8 row calibrated on. ``finetune(model,
    epochs, lr_scale)``: the eager QAT row's fine-tuning, with ``epochs``/``lr_scale`` its budget.
    """
    method: object
    float_model: nn.Module
    example: torch.Tensor
    calibration: Callable[[], Iterable[torch.Tensor]]
    finetune: Callable[..., None] | None = None
    epochs: int = 0
    lr_scale: float = 1.0
    log: Callable[[str], None] | None = None
    keep_float: tuple[str, ...] = ()

    @property
    def request(self) -> Int8Request | None:
        """What the INT8 method asks for, or None for a float method."""
        return int8_request(self.method)

    @property
    def precision(self) -> FloatRequest | None:
        """The dtype a half-precision method asks for (``bf16``, ``fp16``), or None."""
        return float_request(self.method)

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)


class Runtime(Protocol):
    name: str
    description: str
    #: import names the runtime needs, and the pip command that installs them
    requires: tuple[str, ...]
    install: str
    #: whether an artifact is specialised to the batch size it was built for (then part of its key)
    batch_specific: bool
    #: True for a runtime that runs the compressed module itself (eager PyTorch): its variant is the one
    #: the compression pipeline built, and :meth:`prepare` runs it; False for one that builds an artifact
    #: of its own from the float model (:meth:`build`, :meth:`load`). Nothing else tells runtimes apart.
    native: bool

    def versions(self) -> dict[str, str]:
        """Versions of the packages its artifacts depend on (part of their cache key)."""

    def unsupported(self, method) -> str | None:
        """Why this runtime cannot run ``method`` (a MethodSpec), or None when it can."""

    def build(self, source: Source) -> bytes:
        """The artifact (exported, quantized, compiled) as bytes."""

    def load(self, artifact: bytes, threads: int) -> Prepared:
        """A callable from an input batch to the output logits, running with ``threads`` threads."""

    def threads(self, count: int) -> ContextManager[int]:
        """Run the body with ``count`` threads; yields the count actually in force."""


def folded(model: nn.Module) -> nn.Module:
    """``model`` with each BatchNorm folded into the convolution before it, in torch (a traced copy whose
    convolutions keep their module names). Exporters that fold BatchNorms themselves name the folded
    convolution after the BatchNorm (ONNX Runtime) or anew (OpenVINO); a runtime that must find layers by
    module name (the layers an accuracy-aware method keeps in float) exports this instead."""
    from torch.fx.experimental.optimization import fuse
    return fuse(copy.deepcopy(model).cpu().eval())


def missing_packages(runtime: Runtime) -> list[str]:
    """The import names of ``runtime.requires`` that are not installed."""
    return [name for name in getattr(runtime, "requires", ()) if importlib.util.find_spec(name) is None]


def check_available(runtime: Runtime) -> None:
    """:class:`RuntimeUnavailableError` with the pip command when a package of ``runtime`` is missing."""
    missing = missing_packages(runtime)
    if missing:
        raise RuntimeUnavailableError(f"runtime {runtime.name!r} needs {', '.join(missing)}, which "
                                      f"{'is' if len(missing) == 1 else 'are'} not installed: {runtime.install}")



#: the built-in runtimes (every module of this package), then the installed plugins'
_REGISTRY: Registry[Runtime] = Registry("runtime", UnknownRuntimeError,
                                        unknown="unknown {kind} {name!r}; valid names: {valid}",
                                        builtins=lambda: import_submodules(__name__))


def register_runtime(runtime: Runtime) -> Runtime:
    return _REGISTRY.add(runtime.name, runtime)


def list_runtimes() -> list[str]:
    return _REGISTRY.names()


def get_runtime(name: str) -> Runtime:
    return _REGISTRY.get(name)
