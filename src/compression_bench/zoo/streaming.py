"""Streaming splits: data that stays in its ``torch.utils.data.Dataset`` and is read batch by batch.

:class:`StreamingSplit` has the interface of :class:`~zoo.splits.Split` (``len``, ``labels``,
``batches``, ``first_batch``, ``subset``) but holds no images: each batch is read item by item
from the dataset (``dataset[i]``, in this process), resized, stacked and normalised, so memory
holds about one batch. An ``ImageFolder`` with its transforms works as it is::

    from torchvision import datasets, transforms
    ds = datasets.ImageFolder("photos/train", transform=transforms.PILToTensor())
    split = StreamingSplit(ds, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                           scale=1 / 255, input_shape=(3, 64, 64))

Where things happen:

* labels: read once, at construction, into the :attr:`~StreamingSplit.labels` tensor (class
  counts, stratified subsets, ``num_classes``). They come from ``dataset.targets`` when the
  dataset has them and no ``target_transform`` (``ImageFolder``, torchvision's datasets; also
  through ``torch.utils.data.Subset``); otherwise every item is read once and only its label kept.
  A batch whose items disagree with those labels is a :class:`~zoo.images.DataError`.
* resizing to ``input_shape``: per item, as it is read, with :func:`~zoo.images.fit_item`
  (:func:`~zoo.images.fit_shape` on one image), as :meth:`Split.from_dataset` does too; images
  of different sizes are fine when ``input_shape`` is given.
* normalisation: per batch, ``(x * scale - mean) / std``, the arithmetic of ``Split``.
* order: ``batches(shuffle=True, generator=g)`` draws ``torch.randperm(len, generator=g)``
  exactly as ``Split`` does: the same generator state gives the same order, and a streamed and a
  materialised split of one dataset give equal batches.
"""
from __future__ import annotations

import copy
import os
from typing import Iterator, Sequence

import torch
from torch.utils.data import Subset

from .images import (
    DataError,
    dataset_length,
    fit_item,
    normalisation,
    normalise,
    read_item,
    stratified_order,
)

__all__ = ["StreamingSplit", "dataset_labels"]


class StreamingSplit:
    """A split that reads its images from a map-style dataset one batch at a time.

    Items must be ``(C x H x W image tensor, integer label)`` as for
    :meth:`~zoo.splits.Split.from_dataset`; batches are ``(x * scale - mean) / std`` as floats,
    images resized to ``input_shape`` (C, H, W) first when it is given.
    """

    def __init__(self, dataset, *, mean: float | Sequence[float], std: float | Sequence[float],
                 scale: float = 1.0, input_shape: tuple[int, int, int] | None = None):
        self.dataset = dataset
        self.where = type(dataset).__name__
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.scale = float(scale)
        self.labels = dataset_labels(dataset)   # position -> label
        self._indices: torch.Tensor | None = None  # position -> dataset index (None: the same)
        first = self._item(0, int(self.labels[0]))
        self.image_shape = tuple(first.shape)  # C, H, W of every image, after resizing
        self._dtype = first.dtype
        self.mean, self.std = normalisation(mean, std, self.image_shape[0], self.where)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (f"StreamingSplit({self.where}, {len(self)} images of "
                f"{'x'.join(map(str, self.image_shape))})")

    def _index(self, positions: torch.Tensor) -> torch.Tensor:
        return positions if self._indices is None else self._indices[positions]

    def _item(self, index: int, expected: int | None = None) -> torch.Tensor:
        image, label = read_item(self.dataset, index, self.where)
        if expected is not None and label != expected:
            raise DataError(f"item {index} of {self.where} has label {label} but its targets say {expected}; "
                            f"make dataset.targets match the labels its items return")
        return fit_item(image, self.input_shape)

    def _load(self, positions: torch.Tensor) -> torch.Tensor:
        """The images at ``positions``, read one by one, stacked and normalised."""
        indices = self._index(positions).tolist()
        images = []
        for index, label in zip(indices, self.labels[positions].tolist()):
            image = self._item(index, label)
            if tuple(image.shape) != self.image_shape or image.dtype != self._dtype:
                raise DataError(f"item {index} of {self.where} is a {tuple(image.shape)} {image.dtype} image, "
                                f"the first was {self.image_shape} {self._dtype}; give them one size "
                                f"(e.g. with torchvision.transforms.Resize, or an input_shape) and one dtype")
            images.append(image)
        batch = torch.stack(images)
        images.clear()  # the items go now; the batch holds their pixels
        return normalise(batch, self.scale, self.mean, self.std)

    def batches(self, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised ``(images, labels)`` batches; with ``shuffle``, in the order of
        ``torch.randperm(len(self), generator=generator)``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            positions = order[start:start + batch_size]
            yield self._load(positions), self.labels[positions]

    def first_batch(self, batch_size: int) -> torch.Tensor:
        """The first ``batch_size`` images (fewer if the split is smaller), normalised."""
        return self._load(torch.arange(min(batch_size, len(self))))

    def subset(self, limit: int | None) -> "StreamingSplit":
        """The first ``limit`` examples of a stratified order (every class represented), in
        dataset order, still streamed: the same examples :meth:`Split.subset` picks."""
        if limit is None or limit >= len(self):
            return self
        order, _ = torch.sort(stratified_order(self.labels)[:limit])
        view = copy.copy(self)
        view._indices = self._index(order)
        view.labels = self.labels[order]
        return view

    def digest(self) -> str:
        """What a cache key holds for this data, without reading every image.

        The labels, the positions used, the normalisation and input shape, the dataset's class,
        length and transforms (their ``repr``), the pixels of its first and last items, and its
        files: for a dataset with ``samples`` (``ImageFolder``, ``DatasetFolder``, also through
        ``Subset``) each file's path, size and modification time, so an edited, added or removed
        image is new data. A dataset may instead carry a ``fingerprint`` attribute (a string, or
        a callable returning one) that stands for its content.
        """
        from .keys import content_digest
        base = _unwrap(self.dataset)
        fingerprint = getattr(base, "fingerprint", None)
        if callable(fingerprint):
            fingerprint = fingerprint()
        parts = {"labels": self.labels, "indices": self._indices, "scale": self.scale, "mean": self.mean,
                 "std": self.std, "input_shape": self.input_shape, "class": type(base).__qualname__,
                 "length": dataset_length(self.dataset),
                 "transforms": [repr(getattr(base, a, None)) for a in ("transform", "target_transform",
                                                                        "transforms")]}
        if fingerprint is not None:
            parts["fingerprint"] = str(fingerprint)
        else:
            last = dataset_length(self.dataset) - 1
            parts["edges"] = [self._item(0), self._item(last)]
            samples = getattr(base, "samples", None)
            if isinstance(samples, list):
                root = getattr(base, "root", None)
                parts["files"] = [_file_identity(path, root) + [label] for path, label in samples]
        return content_digest(parts)


def _unwrap(dataset):
    """The dataset under any ``torch.utils.data.Subset`` layers."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _file_identity(path, root) -> list:
    """A file's path (relative to the dataset's root where it has one), size and modification time."""
    name = os.path.relpath(path, root) if root else str(path)
    try:
        st = os.stat(path)
    except OSError:
        return [name, -1, -1]
    return [name, st.st_size, st.st_mtime_ns]


def dataset_labels(dataset) -> torch.Tensor:
    """The label of every item of ``dataset`` in index order, as a long tensor: from its
    ``targets`` where they can be trusted (see the module docstring), else read item by item
    keeping only the labels. :class:`DataError` for a dataset without ``len`` or with no items."""
    n = dataset_length(dataset)
    targets = _targets(dataset)
    if targets is not None and targets.shape == (n,):
        return targets
    where = type(dataset).__name__
    return torch.tensor([read_item(dataset, i, where)[1] for i in range(n)], dtype=torch.long)


def _targets(dataset) -> torch.Tensor | None:
    """``dataset.targets`` as a long tensor, through ``Subset``s; ``None`` when there are none,
    when a ``target_transform`` may change them, or when they are not integers."""
    if isinstance(dataset, Subset):
        inner = _targets(dataset.dataset)
        return None if inner is None else inner[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    targets = getattr(dataset, "targets", None)
    if targets is None or getattr(dataset, "target_transform", None) is not None:
        return None
    try:
        t = torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError):
        return None
    if t.ndim != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        return None
    return t.to(torch.long, copy=True)
