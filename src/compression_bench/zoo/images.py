"""Images and labels item by item, shared by the in-memory splits (:mod:`zoo.splits`) and the
streaming ones (:mod:`zoo.streaming`): reading an item, checking its label, normalising and resizing
images, and the stratified order subsets are cut from. Below both, so that neither imports the other.
"""
from __future__ import annotations

import operator

import numpy as np

import torch
import torch.nn.functional as F


class DataError(RuntimeError):
    """A dataset could not be provided; the message says how to fix it."""


def _per_channel(values, what: str) -> tuple[float, ...]:
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    if not values:
        raise DataError(f"{what} is empty; give one value per channel, or one for all channels")
    return tuple(float(v) for v in values)


def normalisation(mean, std, channels: int, where: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``mean`` and ``std`` as tuples, checked to hold 1 or ``channels`` values."""
    mean, std = _per_channel(mean, "mean"), _per_channel(std, "std")
    if len(mean) not in (1, channels) or len(std) not in (1, channels):
        raise DataError(f"{where}: mean and std need 1 or {channels} values (one per channel), "
                        f"got {len(mean)} and {len(std)}")
    return mean, std


def normalise(images: torch.Tensor, scale: float, mean: tuple[float, ...],
              std: tuple[float, ...]) -> torch.Tensor:
    """A batch ``N x C x H x W`` as float: ``(images * scale - mean) / std``, per channel."""
    x = images.float() * scale
    c = x.shape[1]
    mean = torch.tensor(mean[:1] * c if len(mean) == 1 else mean).view(1, c, 1, 1)
    std = torch.tensor(std[:1] * c if len(std) == 1 else std).view(1, c, 1, 1)
    return (x - mean) / std


def dataset_length(dataset) -> int:
    """``len(dataset)``; :class:`DataError` when it has none or is empty."""
    where = type(dataset).__name__
    try:
        n = len(dataset)
    except TypeError:
        raise DataError(f"{where} has no len(): give a map-style torch.utils.data.Dataset") from None
    if n == 0:
        raise DataError(f"{where} is empty: a split needs at least one example")
    return n


def read_item(dataset, i: int, where: str) -> tuple[torch.Tensor, int]:
    """Item ``i`` of ``dataset`` checked to be ``(C x H x W image tensor, integer label)``."""
    item = dataset[i]
    ok = isinstance(item, (tuple, list)) and len(item) == 2
    if not (ok and isinstance(item[0], torch.Tensor) and item[0].ndim == 3):
        raise DataError(f"item {i} of {where} is not (C x H x W image tensor, label); make the dataset "
                        f"return tensors, e.g. with the transform torchvision.transforms.PILToTensor()")
    return item[0], as_label(item[1], i, where)


def as_label(label, i: int, where: str) -> int:
    """``label`` (an int or a one-element integer tensor) as an int; :class:`DataError` otherwise."""
    try:
        return operator.index(label.reshape(()) if isinstance(label, torch.Tensor) else label)
    except (TypeError, RuntimeError):
        raise DataError(f"item {i} of {where} has label {label!r}; labels must be integers "
                        f"0 .. num_classes - 1") from None


def stratified_order(labels: torch.Tensor) -> torch.Tensor:
    """Indices interleaving the classes (deterministic), so any prefix is roughly balanced."""
    per_class = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    out = []
    for i in range(max(len(p) for p in per_class)):
        out += [int(p[i]) for p in per_class if i < len(p)]
    return torch.tensor(out, dtype=torch.long)


def _fit_float(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Resize ``N x C x H x W`` float images to ``shape`` and replicate grey to 3 channels."""
    c, h, w = shape
    if images.shape[-2:] != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False)
    if images.shape[1] != c:
        if images.shape[1] != 1:
            raise DataError(f"cannot turn {images.shape[1]}-channel images into {c} channels")
        images = images.expand(-1, c, -1, -1).contiguous()
    return images


def fit_item(image: torch.Tensor, shape: tuple[int, int, int] | None) -> torch.Tensor:
    """One ``C x H x W`` image through :func:`fit_shape` (``shape`` None: as it is). Every image
    of a batch is resized on its own, so resizing items one by one gives the numbers resizing
    their stack gives."""
    if shape is None or tuple(image.shape) == tuple(shape):
        return image
    return fit_shape(image.unsqueeze(0), shape)[0]


def fit_shape(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``N x C x H x W`` images resized (bilinear) to ``shape`` (C, H, W), one grey channel
    replicated where ``shape`` wants more. Float images stay float; uint8 images are resized
    as values in 0..1 and rounded back to uint8. Images already of ``shape`` come back as they are."""
    if tuple(images.shape[1:]) == tuple(shape):
        return images
    if images.dtype == torch.uint8:
        return (_fit_float(images.float() / 255.0, shape) * 255.0).round().clamp(0, 255).to(torch.uint8)
    return _fit_float(images if images.is_floating_point() else images.float(), shape)


def carve_validation(labels: torch.Tensor, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train positions, validation positions): a fixed stratified ``size`` of ``labels`` for validation."""
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(labels))
    tr, va = train_test_split(idx, test_size=size, stratify=labels.numpy(), random_state=seed)
    return torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(va))
