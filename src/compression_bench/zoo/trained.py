"""Trained models through the cache: ``get_trained(name, profile)`` trains once, then loads.

A model registered with ``weights=`` is not trained: its checkpoint is loaded, evaluated on the
profile's validation split, and that result is cached under a key holding the file's SHA-256.
"""
from __future__ import annotations

import functools
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
import torch.nn as nn

from . import data as _data_module, images as _images_module, splits as _splits_module, streaming as _streaming_module
from . import training as _training_module
from .cache import ArtifactCache
from .keys import closure_fingerprint, code_fingerprint, content_digest, package_versions
from .data import DataBundle, DataError, DatasetInfo, get_dataset_info
from .profiles import Profile, get_profile
from .registry import ModelInfo, build, get_model_info
from .training import Progress, Recipe, evaluate, finetune, print_progress, train, train_threads
from .weights import file_sha256, load_weights

DATA_VERSION = 3  # bump when the way datasets are split or preprocessed changes
#: libraries whose kernels or data loading a trained checkpoint depends on (part of its key)
TRAINING_PACKAGES = ("torch", "torchvision", "scikit-learn", "numpy")


@dataclass
class TrainedModel:
    info: ModelInfo
    profile: Profile
    recipe: Recipe
    data: DataBundle
    model: nn.Module          # eval mode, CPU
    accuracy: float           # top-1 % on the whole validation split
    key: str                  # cache key: variants derived from this model extend it
    meta: dict                # training time, device, history
    from_cache: bool
    digest: str = ""          # content digest of the weights: what derived entries are keyed on
    device: str = "cpu"       # where fine-tuning of derived variants runs (the session's training device)
    seed: int = 0             # which seed of the model (recipe_for): 0 is the recipe's own

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def finetune_data(self) -> DataBundle:
        """What derived variants fine-tune on: the data, with the training split cut to the profile's
        :meth:`~zoo.profiles.Profile.finetune_limit_for` this model (a fixed stratified part) where it sets one."""
        return self.data.subset(self.finetune_limit, None, None)

    @property
    def finetune_limit(self) -> int | None:
        """How many training images derived variants fine-tune on (None: all); part of their keys."""
        return self.profile.finetune_limit_for(self.name)

    def finetune(self, model: nn.Module, epochs: int, lr_scale: float, *, tag: str | None = None,
                 on_epoch_start=None, progress: Progress | None = print_progress,
                 recalibrate_bn: bool = False, stop_when=None) -> None:
        """Fine-tune ``model`` (derived from this one) on the same training split and recipe.

        ``recalibrate_bn`` recomputes BatchNorm statistics at the end (pruned models: their
        activations no longer match the statistics the original collected). ``stop_when(model)``,
        asked after each epoch, ends fine-tuning early when it says True.
        """
        finetune(model, self.finetune_data, self.recipe, epochs, lr_scale, tag=tag or self.name,
                 on_epoch_start=on_epoch_start, progress=progress, evaluate_each_epoch=False,
                 precise_bn=recalibrate_bn, device=self.device, stop_when=stop_when)
        model.to("cpu")


@functools.lru_cache(maxsize=16)  # keyed on the registry entry: one re-registered with another loader loads anew
def _dataset(entry: DatasetInfo, shape: tuple, data_root: str | None, download: bool,
             train_limit: int | None, val_limit: int | None, test_limit: int | None) -> DataBundle:
    return entry.load(shape, data_root=data_root, download=download).subset(train_limit, val_limit, test_limit)


def get_data(name: str, profile: str | Profile | None = None, *, data_root: str | None = None,
             download: bool = False) -> DataBundle:
    """The data ``name`` trains on under ``profile``, shaped for it; :class:`DataError` when the
    dataset is not there or its classes differ from the model's ``num_classes``."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    info = get_model_info(name)
    bundle = _dataset(get_dataset_info(prof.dataset_for(name)), info.input_shape, data_root, download,
                      prof.train_limit, prof.val_limit, prof.test_limit)
    if bundle.num_classes != info.num_classes:
        raise DataError(f"dataset {bundle.name!r} has {bundle.num_classes} classes but model {name!r} has "
                        f"{info.num_classes} outputs; register the model with num_classes={bundle.num_classes}")
    return bundle


def recipe_for(name: str, prof: Profile, seed: int = 0) -> Recipe:
    """The recipe ``name`` trains with under ``prof``; seed ``k`` > 0 offsets its random seed by ``k``
    (initial weights, shuffling, augmentation, and the fine-tuning of every variant derived from it)."""
    recipe = prof.recipe_for(name)
    return replace(recipe, seed=recipe.seed + seed) if seed else recipe


def cache_parts(name: str, prof: Profile, data: DataBundle | None = None, seed: int = 0) -> dict:
    """Everything that determines a trained checkpoint (its cache key); ``data`` (default: the
    profile's data for ``name``, as :func:`get_data` loads it) counts by its content digest."""
    info = get_model_info(name)
    dataset = prof.dataset_for(name)
    data = data if data is not None else get_data(name, prof)
    parts = {
        "kind": "trained", "model": name, "architecture": info.fingerprint,
        "dataset": dataset, "dataset_loader": _loader_fingerprint(get_dataset_info(dataset).loader),
        "data_digest": data.digest(),
        "data_version": DATA_VERSION,
        "train_limit": prof.train_limit, "val_limit": prof.val_limit, "test_limit": prof.test_limit,
        "recipe": asdict(recipe_for(name, prof, seed)), "train_threads": train_threads(),
        "versions": package_versions(*TRAINING_PACKAGES),
        "code": training_code_fingerprint(),
    }
    if info.weights is not None:  # a changed checkpoint file is a new entry
        parts["weights_sha256"] = file_sha256(info.weights, name)
    return parts


def _loader_fingerprint(loader) -> str:
    """The code of a dataset's loader and of the helpers it calls (a registered one can live outside
    this package); a callable whose source cannot be read counts by its qualified name."""
    try:
        return closure_fingerprint(loader)
    except (OSError, TypeError):
        return f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', type(loader).__qualname__)}"


@functools.lru_cache(maxsize=None)  # once per process: the code that runs is the code imported at start
def training_code_fingerprint() -> str:
    """Fingerprint of the code that loads and splits the data and trains (part of every key)."""
    return code_fingerprint(_training_module, _data_module, _images_module, _splits_module, _streaming_module)


def resolve_device(device: str | None) -> str:
    """``device`` checked for use on this machine (``auto``: CUDA when there is one, else the CPU);
    :class:`ValueError` with the fix when it cannot be used."""
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown training device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"training device {device!r} was asked for but this machine has no usable CUDA GPU; "
                             f"use cpu (or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"training device {device!r}: this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s), numbered from 0")
    elif dev.type != "cpu":
        raise ValueError(f"training device {device!r} is not supported; use cpu, cuda, cuda:N or auto")
    return device


def get_trained(name: str, profile: str | Profile | None = None, *,
                cache: ArtifactCache | str | None = None, data_root: str | None = None,
                download: bool = False, device: str = "cpu",
                progress: Progress | None = print_progress,
                log: Callable[[str], None] | None = None, seed: int = 0) -> TrainedModel:
    """The trained model ``name`` for ``profile``: from the cache, or trained and cached.

    Training may run on ``device`` (e.g. ``cuda`` for the full profile); the result is always
    returned on the CPU, in eval mode. The device is recorded but is not part of the key, so a
    checkpoint trained on a GPU serves later CPU runs. Variants derived from it fine-tune on
    ``device`` too. ``log`` receives one-line notices (default: standard error). A model
    registered with ``weights=`` is loaded from its checkpoint and evaluated instead of trained
    (:class:`~zoo.weights.WeightsError`, a ValueError, when the file is missing or does not fit).
    ``seed`` k > 0 trains the k-th other seed of the model (:func:`recipe_for`); a model with
    ``weights=`` loads the same checkpoint under every seed, and only its variants' fine-tuning differs.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer from 0, got {seed!r}")
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    info = get_model_info(name)
    recipe = recipe_for(name, prof, seed)
    store = cache if isinstance(cache, ArtifactCache) else ArtifactCache(cache)
    data = get_data(name, prof, data_root=data_root, download=download)
    parts = cache_parts(name, prof, data, seed)

    dev = resolve_device(device)

    def build_entry() -> dict:
        torch.manual_seed(recipe.seed)
        model = build(name)
        if info.weights is not None:
            load_weights(model, info.weights, name)
            model.eval()
            return {"state_dict": model.state_dict(),
                    "meta": {"accuracy": evaluate(model, data.val), "train_seconds": 0.0, "device": "cpu",
                             "threads": train_threads(), "history": [], "weights": info.weights,
                             "weights_sha256": parts["weights_sha256"],
                             "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")}}
        result = train(model, data, recipe, device=dev, tag=f"{name}/{prof.name}" + (f"/seed{seed}" if seed else ""), progress=progress)
        model.to("cpu").eval()
        acc = evaluate(model, data.val)  # the figure that counts is the CPU one
        return {"state_dict": model.state_dict(),
                "meta": {"accuracy": acc, "train_seconds": result.seconds, "device": dev,
                         "threads": train_threads(), "history": result.history,
                         "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")}}

    def waiting() -> None:
        (log or _stderr)(f"[{name}/{prof.name}] another process is training this model; waiting for it")

    blob, built = store.get_or_build("trained", name, parts, build_entry, on_wait=waiting)
    model = build(name)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return TrainedModel(info, prof, recipe, data, model, float(blob["meta"]["accuracy"]),
                        blob["key"], blob["meta"], not built, content_digest(blob["state_dict"]), dev, seed)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
