"""Model registry: every architecture is one decorated builder function.

Everything else (CLI, training, benchmarks) finds models by name through
:func:`list_models`, :func:`get_model_info` and :func:`build`. A model may bring its own
training recipe (else its profile's recipe applies, see :meth:`Profile.recipe_for`) and
pretrained weights (then it is evaluated, not trained, see :func:`get_trained`) and its own
dataset (then every profile uses it, see :meth:`Profile.dataset_for`)::

    @register_model("TinyNet", input_shape=(1, 28, 28), description="two convs",
                    recipe=Recipe(epochs=5, lr=0.02), weights="tiny.pt")
    def tiny_net() -> nn.Module: ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Union

import torch.nn as nn

from ..plugins import Registry
from ..profile_names import PROFILES
from .keys import closure_fingerprint
from .training import Recipe

RecipeSpec = Union[Recipe, Mapping[str, Recipe], None]


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    full_dataset: str  # dataset of the ``full`` profile, e.g. "mnist" or "cifar10"
    description: str
    recipe: RecipeSpec = field(default=None, compare=False)  # own recipe: one, or per profile name
    weights: str | None = None  # absolute path of a checkpoint loaded instead of training
    dataset: str | None = None  # the model's own dataset, used by every profile (None: the profile's own, full_dataset under full)
    default: bool = True  # part of the default matrix (list_models()); False: opt-in, selected by name

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the builder's code and of the helpers and classes it reaches by name
        (:func:`~compression_bench.zoo.keys.closure_fingerprint`): changes whenever the architecture
        code changes, in the builder or in a helper it calls."""
        return closure_fingerprint(self.builder)


_REGISTRY: Registry[ModelInfo] = Registry("model", UnknownModelError)


def register_model(name: str, *, input_shape: tuple[int, int, int], num_classes: int = 10,
                   full_dataset: str | None = None, description: str, recipe: RecipeSpec = None,
                   weights: str | os.PathLike | None = None, dataset: str | None = None, default: bool = True):
    """Decorator that registers a zero-argument builder under ``name``.

    * ``input_shape``: (C, H, W) of one image; the datasets are resized to it.
    * ``num_classes``: outputs of the model; must equal the classes of the dataset it trains on.
    * ``dataset``: registered dataset the model trains and is evaluated on under every profile
      (smoke takes its stratified subsets of it), e.g. its own ``ImageFolder``.
    * ``full_dataset``: without ``dataset``, the registered dataset of the ``full`` profile (the
      other profiles use their own: Fashion-MNIST under default, the embedded digits under quick and smoke); the default ``"digits"`` needs no files. With
      ``dataset`` it may be left out or must name the same dataset.
    * ``recipe``: a :class:`Recipe` for every profile, or a dict profile name -> Recipe; profiles
      it leaves out use their own recipes (:meth:`Profile.recipe_for`).
    * ``default``: False registers an opt-in model: out of :func:`list_models` (so out of a run that
      selects no models), run when named (``--zoo-models=ViTTiny``).
    * ``weights``: path of a checkpoint (``torch.save`` of a ``state_dict``, or of a dict with a
      ``"state_dict"`` key) loaded instead of training; its SHA-256 is part of the cache key.

    Registering a taken name raises :class:`ValueError`.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"model {name!r}: input_shape must be three positive ints (C, H, W), got {input_shape!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"model {name!r}: num_classes must be a positive int, got {num_classes!r}")
    if recipe is not None and not isinstance(recipe, Recipe):
        if not isinstance(recipe, Mapping) or not all(isinstance(r, Recipe) for r in recipe.values()):
            raise TypeError(f"model {name!r}: recipe must be a Recipe or a dict profile name -> Recipe")
        unknown = sorted(set(recipe) - set(PROFILES))
        if unknown:
            raise ValueError(f"model {name!r}: recipe names unknown profile(s) {', '.join(map(str, unknown))}; "
                             f"valid profiles are: {', '.join(PROFILES)}")
        recipe = MappingProxyType(dict(recipe))
    if dataset is not None and (not isinstance(dataset, str) or not dataset):
        raise ValueError(f"model {name!r}: dataset must be a registered dataset's name, got {dataset!r}")
    if dataset is not None and full_dataset not in (None, dataset):
        raise ValueError(f"model {name!r}: dataset={dataset!r} is used by every profile, full_dataset="
                         f"{full_dataset!r} by the full one only; give one of them")
    full = full_dataset or dataset or "digits"
    path = os.path.abspath(os.fspath(weights)) if weights is not None else None

    def wrap(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        _REGISTRY.add(name, ModelInfo(name, builder, shape, num_classes, full, description, recipe, path, dataset,
                                      bool(default)))
        return builder

    return wrap


def unregister_model(name: str) -> None:
    """Remove a registered model (tests, notebooks)."""
    _REGISTRY.remove(name)


def list_models(include_optional: bool = False) -> list[str]:
    """Registered model names, in registration (report) order (installed plugins' included): the
    default matrix, or with ``include_optional`` every registered one (opt-in models too)."""
    return [n for n, info in _REGISTRY.items() if include_optional or info.default]


def get_model_info(name: str) -> ModelInfo:
    return _REGISTRY.get(name)


def build(name: str) -> nn.Module:
    """A freshly initialised (untrained) instance of the named architecture."""
    return get_model_info(name).builder()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
