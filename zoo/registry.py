"""Model registry: every architecture is one decorated builder function.

Everything else (CLI, training, benchmarks) finds models by name through
:func:`list_models`, :func:`get_model_info` and :func:`build`.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    full_dataset: str  # dataset of the ``full`` profile: "mnist" or "cifar10"
    description: str

    @property
    def fingerprint(self) -> str:
        """Hash of the builder's source: changes whenever the architecture code changes."""
        return hashlib.sha256(inspect.getsource(self.builder).encode()).hexdigest()[:16]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, *, input_shape: tuple[int, int, int], full_dataset: str,
                   description: str, num_classes: int = 10):
    """Decorator that registers a zero-argument builder under ``name``."""

    def wrap(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, builder, tuple(input_shape), num_classes,
                                    full_dataset, description)
        return builder

    return wrap


def list_models() -> list[str]:
    """Registered model names, in registration (report) order."""
    return list(_REGISTRY)


def get_model_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; valid names are: {', '.join(_REGISTRY)}") from None


def build(name: str) -> nn.Module:
    """A freshly initialised (untrained) instance of the named architecture."""
    return get_model_info(name).builder()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
