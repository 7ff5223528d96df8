"""Trained models through the cache: ``get_trained(name, profile)`` trains once, then loads."""
from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torchvision

from .cache import ArtifactCache
from .data import DataBundle, load_dataset
from .profiles import Profile, get_profile
from .registry import ModelInfo, build, get_model_info
from .training import Progress, Recipe, evaluate, finetune, print_progress, train, train_threads

DATA_VERSION = 1  # bump when the way datasets are split or preprocessed changes


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

    @property
    def name(self) -> str:
        return self.info.name

    def finetune(self, model: nn.Module, epochs: int, lr_scale: float, *, tag: str | None = None,
                 on_epoch_start=None, progress: Progress | None = print_progress,
                 recalibrate_bn: bool = False) -> None:
        """Fine-tune ``model`` (derived from this one) on the same training split and recipe.

        ``recalibrate_bn`` recomputes BatchNorm statistics at the end (pruned models: their
        activations no longer match the statistics the original collected).
        """
        finetune(model, self.data, self.recipe, epochs, lr_scale, tag=tag or self.name,
                 on_epoch_start=on_epoch_start, progress=progress, evaluate_each_epoch=False,
                 precise_bn=recalibrate_bn)


@functools.lru_cache(maxsize=16)
def _dataset(name: str, shape: tuple, data_root: str | None, download: bool,
             train_limit: int | None, val_limit: int | None) -> DataBundle:
    bundle = load_dataset(name, shape, data_root=data_root, download=download)
    if train_limit is None and val_limit is None:
        return bundle
    return DataBundle(bundle.name, bundle.train.subset(train_limit), bundle.val.subset(val_limit),
                      bundle.num_classes, bundle.description
                      + f" (subset: {train_limit} train / {val_limit} validation)")


def get_data(name: str, profile: str | Profile | None = None, *, data_root: str | None = None,
             download: bool = False) -> DataBundle:
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    info = get_model_info(name)
    return _dataset(prof.dataset_for(name), info.input_shape, data_root, download,
                    prof.train_limit, prof.val_limit)


def cache_parts(name: str, prof: Profile) -> dict:
    """Everything that determines a trained checkpoint (its cache key)."""
    info = get_model_info(name)
    return {
        "kind": "trained", "model": name, "architecture": info.fingerprint,
        "dataset": prof.dataset_for(name), "data_version": DATA_VERSION,
        "train_limit": prof.train_limit, "val_limit": prof.val_limit,
        "recipe": asdict(prof.recipe_for(name)), "train_threads": train_threads(),
        "torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0],
    }


def resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"training device {device!r} was asked for but CUDA is not available; use 'cpu'")
    return device


def get_trained(name: str, profile: str | Profile | None = None, *,
                cache: ArtifactCache | str | None = None, data_root: str | None = None,
                download: bool = False, device: str = "cpu",
                progress: Progress | None = print_progress) -> TrainedModel:
    """The trained model ``name`` for ``profile``: from the cache, or trained and cached.

    Training may run on ``device`` (e.g. ``cuda`` for the full profile); the result is always
    returned on the CPU, in eval mode. The device is recorded but is not part of the key, so a
    checkpoint trained on a GPU serves later CPU runs.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    info = get_model_info(name)
    recipe = prof.recipe_for(name)
    store = cache if isinstance(cache, ArtifactCache) else ArtifactCache(cache)
    data = get_data(name, prof, data_root=data_root, download=download)
    parts = cache_parts(name, prof)

    def build_entry() -> dict:
        dev = resolve_device(device)
        torch.manual_seed(recipe.seed)
        model = build(name)
        result = train(model, data, recipe, device=dev, tag=f"{name}/{prof.name}", progress=progress)
        model.to("cpu").eval()
        acc = evaluate(model, data.val)  # the figure that counts is the CPU one
        return {"state_dict": model.state_dict(),
                "meta": {"accuracy": acc, "train_seconds": result.seconds, "device": dev,
                         "threads": train_threads(), "history": result.history,
                         "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")}}

    def waiting() -> None:
        if progress is not None:
            print(f"[{name}/{prof.name}] another process is training this model; waiting for it", flush=True)

    blob, built = store.get_or_build("trained", name, parts, build_entry, on_wait=waiting)
    model = build(name)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return TrainedModel(info, prof, recipe, data, model, float(blob["meta"]["accuracy"]),
                        blob["key"], blob["meta"], not built)
