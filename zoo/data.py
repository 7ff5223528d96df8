"""Datasets of the zoo, held in memory as tensors.

* ``digits``: the 1,797 real 8x8 handwritten digits bundled with scikit-learn, with a fixed
  stratified train/validation split, resized to each model's input, grey replicated to three
  channels where the model wants colour. Works offline: the default profile.
* ``mnist`` and ``cifar10``: torchvision's dataset classes reading a data root laid out as
  torchvision expects (``<root>/MNIST/raw/...``, ``<root>/cifar-10-batches-py/...``).
  Downloading happens only when asked for; a missing dataset stops with one sentence that says
  where the files must go.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("digits", "mnist", "cifar10")
DIGITS_VAL_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


class DataError(RuntimeError):
    """A dataset could not be provided; the message says how to fix it."""


@dataclass
class Split:
    """Images as an ``N x C x H x W`` tensor (uint8 or float) plus labels.

    Batches come out as normalised float tensors: ``(x * scale - mean) / std``.
    """
    images: torch.Tensor
    labels: torch.Tensor
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() * self.scale
        c = x.shape[1]
        mean = torch.tensor(self.mean[:1] * c if len(self.mean) == 1 else self.mean).view(1, c, 1, 1)
        std = torch.tensor(self.std[:1] * c if len(self.std) == 1 else self.std).view(1, c, 1, 1)
        return (x - mean) / std

    def batches(self, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield self._prepare(self.images[idx]), self.labels[idx]

    def first_batch(self, batch_size: int) -> torch.Tensor:
        """The first ``batch_size`` images (fewer if the split is smaller), normalised."""
        return self._prepare(self.images[:batch_size])

    def subset(self, limit: int | None) -> "Split":
        """The first ``limit`` examples of a stratified order (every class represented)."""
        if limit is None or limit >= len(self):
            return self
        order = _stratified_order(self.labels)[:limit]
        order, _ = torch.sort(order)
        return Split(self.images[order], self.labels[order], self.scale, self.mean, self.std)


@dataclass
class DataBundle:
    name: str
    train: Split
    val: Split
    num_classes: int
    description: str


def _stratified_order(labels: torch.Tensor) -> torch.Tensor:
    """Indices interleaving the classes (deterministic), so any prefix is roughly balanced."""
    per_class = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    out = []
    for i in range(max(len(p) for p in per_class)):
        out += [int(p[i]) for p in per_class if i < len(p)]
    return torch.tensor(out, dtype=torch.long)


def _fit_shape(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Resize ``N x C x H x W`` float images to ``shape`` and replicate grey to 3 channels."""
    c, h, w = shape
    if images.shape[-2:] != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False)
    if images.shape[1] != c:
        if images.shape[1] != 1:
            raise DataError(f"cannot turn {images.shape[1]}-channel images into {c} channels")
        images = images.expand(-1, c, -1, -1).contiguous()
    return images


def load_digits_data(input_shape: tuple[int, int, int]) -> DataBundle:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0  # values 0..16 -> 0..1
    y = digits.target.astype(np.int64)
    idx_train, idx_val = train_test_split(np.arange(len(y)), test_size=DIGITS_VAL_FRACTION,
                                          stratify=y, random_state=DIGITS_SPLIT_SEED)
    images = _fit_shape(torch.from_numpy(x).unsqueeze(1), input_shape)
    labels = torch.from_numpy(y)
    tr = torch.from_numpy(np.sort(idx_train))
    va = torch.from_numpy(np.sort(idx_val))
    mean = float(images[tr].mean())
    std = float(images[tr].std())
    mk = lambda ix: Split(images[ix], labels[ix], 1.0, (mean,), (std,))  # noqa: E731
    return DataBundle("digits", mk(tr), mk(va), 10,
                      f"scikit-learn digits, {len(tr)} train / {len(va)} validation, "
                      f"8x8 resized to {input_shape[1]}x{input_shape[2]}")


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _torchvision_dataset(cls, root: str, train: bool, download: bool, where: str):
    try:
        return cls(root, train=train, download=download)
    except RuntimeError as err:
        if "not found" in str(err).lower() or "corrupted" in str(err).lower():
            hint = " or pass download=True (--zoo-download) on a machine that is online" if not download else ""
            raise DataError(f"{cls.__name__} not found under {root!r}: put {where}{hint}.") from None
        raise _damaged(cls, root, where, err) from None
    except OSError as err:
        if download:  # URLError and friends when downloading offline
            raise DataError(f"could not download {cls.__name__} into {root!r} ({err}); no network? "
                            f"Put {where} by hand.") from None
        raise _damaged(cls, root, where, err) from None
    except Exception as err:  # noqa: BLE001 - torchvision's readers fail in many ways on bad bytes
        raise _damaged(cls, root, where, err) from None


def _damaged(cls, root: str, where: str, err: Exception) -> DataError:
    text = str(err).splitlines()[0][:120] if str(err) else ""
    return DataError(f"the {cls.__name__} files under {root!r} could not be read ({type(err).__name__}: {text}); "
                     f"they are damaged or not {cls.__name__}: replace them with {where}.")


def load_mnist_data(root: str, input_shape: tuple[int, int, int], download: bool = False) -> DataBundle:
    from torchvision.datasets import MNIST

    where = ("the four MNIST files (" + ", ".join(_MNIST_FILES)
             + f", gunzipped) in {os.path.join(root, 'MNIST', 'raw')}")
    splits = []
    for train in (True, False):
        ds = _torchvision_dataset(MNIST, root, train, download, where)
        images = ds.data.unsqueeze(1)  # N x 1 x 28 x 28 uint8
        if tuple(images.shape[1:]) != tuple(input_shape):
            images = (_fit_shape(images.float() / 255.0, input_shape) * 255.0).round().clamp(0, 255).to(torch.uint8)
        splits.append(Split(images, ds.targets.long(), 1 / 255.0, (0.1307,), (0.3081,)))
    return DataBundle("mnist", splits[0], splits[1], 10,
                      f"MNIST from {root}, {len(splits[0])} train / {len(splits[1])} validation")


def load_cifar10_data(root: str, input_shape: tuple[int, int, int], download: bool = False) -> DataBundle:
    from torchvision.datasets import CIFAR10

    where = f"the extracted python version of CIFAR-10 in {os.path.join(root, 'cifar-10-batches-py')}"
    if tuple(input_shape) != (3, 32, 32):
        raise DataError(f"cifar10 gives 3x32x32 images, the model wants {input_shape}")
    splits = []
    for train in (True, False):
        ds = _torchvision_dataset(CIFAR10, root, train, download, where)
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        splits.append(Split(images, torch.tensor(ds.targets, dtype=torch.long), 1 / 255.0,
                            (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)))
    return DataBundle("cifar10", splits[0], splits[1], 10,
                      f"CIFAR-10 from {root}, {len(splits[0])} train / {len(splits[1])} validation")


def default_data_root() -> str:
    return os.environ.get("ZOO_DATA_ROOT") or os.path.join(os.path.expanduser("~"), "data")


def load_dataset(name: str, input_shape: tuple[int, int, int], *, data_root: str | None = None,
                 download: bool = False) -> DataBundle:
    """Load dataset ``name`` shaped for a model taking ``input_shape`` (C, H, W)."""
    if name == "digits":
        return load_digits_data(input_shape)
    root = data_root or default_data_root()
    if name == "mnist":
        return load_mnist_data(root, input_shape, download)
    if name == "cifar10":
        return load_cifar10_data(root, input_shape, download)
    raise DataError(f"unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}")
