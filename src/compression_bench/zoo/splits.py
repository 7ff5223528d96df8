"""Data of the zoo: :class:`Split` (images and labels of one split, in memory) and :class:`DataBundle`
(a dataset's train and validation splits).

A :class:`Split` holds its images as one ``N x C x H x W`` tensor. Data that lives in a map-style
``torch.utils.data.Dataset`` is either read into such a tensor once (:meth:`Split.from_dataset`)
or streamed from the dataset batch by batch (:class:`~zoo.streaming.StreamingSplit`), which
:meth:`DataBundle.from_datasets` chooses by size (:data:`MAX_IN_MEMORY_MIB`). Both give the
same batches: the same order for the same generator and the same arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from .images import (
    DataError,
    dataset_length,
    fit_item,
    normalisation,
    normalise,
    read_item,
    stratified_order,
)

if TYPE_CHECKING:
    from .streaming import StreamingSplit


#: Budget in MiB for holding a dataset's images in memory. :meth:`DataBundle.from_datasets` with
#: ``stream=None`` estimates the images of both splits (bytes of the first item, after resizing
#: to ``input_shape`` when that is larger, times the number of items) and streams both splits when
#: the estimate exceeds it. Change it here (``compression_bench.zoo.splits.MAX_IN_MEMORY_MIB``)
#: or pass ``stream=True``/``False``.
MAX_IN_MEMORY_MIB = 512


@dataclass
class Split:
    """Images as an ``N x C x H x W`` tensor (uint8 or float) plus labels.

    Batches come out as normalised float tensors: ``(x * scale - mean) / std``, where ``mean``
    and ``std`` hold one value per channel or one value for all channels.
    """
    images: torch.Tensor
    labels: torch.Tensor
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_dataset(cls, dataset, *, mean: float | Sequence[float], std: float | Sequence[float],
                     scale: float = 1.0, input_shape: tuple[int, int, int] | None = None) -> "Split":
        """Every example of a map-style ``torch.utils.data.Dataset``, read into memory in index order.

        Each item must be ``(image, label)``: a ``C x H x W`` tensor (uint8 or float, kept as
        it is; batches compute ``(x * scale - mean) / std``) and an integer label (an ``int`` or
        an integer tensor of one element). With ``input_shape`` each image is resized and grey
        replicated to it as it is read (:func:`fit_item`), so the images may differ in size;
        without, they must all have one. Errors are :class:`DataError`.
        """
        where = type(dataset).__name__
        n = dataset_length(dataset)
        images, labels = [], []
        for i in range(n):
            image, label = read_item(dataset, i, where)
            images.append(fit_item(image, input_shape))
            labels.append(label)
        if len({tuple(x.shape) for x in images}) > 1 or len({x.dtype for x in images}) > 1:
            raise DataError(f"the images of {where} differ in shape or dtype; give them one size "
                            f"(e.g. with torchvision.transforms.Resize, or an input_shape) and one dtype")
        stacked = torch.stack(images)
        mean, std = normalisation(mean, std, stacked.shape[1], where)
        return cls(stacked, torch.tensor(labels, dtype=torch.long), float(scale), mean, std)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        return normalise(images, self.scale, self.mean, self.std)

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
        order = stratified_order(self.labels)[:limit]
        order, _ = torch.sort(order)
        return Split(self.images[order], self.labels[order], self.scale, self.mean, self.std)

    def digest(self) -> str:
        """A digest of the pixels, labels and normalisation: what a cache key holds for this data."""
        from .keys import content_digest
        return content_digest({"images": self.images, "labels": self.labels, "scale": self.scale,
                               "mean": self.mean, "std": self.std})


@dataclass
class DataBundle:
    """A dataset's splits: ``train`` (what models learn from), ``val`` (what training reports and any
    choice of recipe or budget looks at) and, optionally, ``test`` (held out: nothing is tuned on it).
    Reported and gated accuracies come from :attr:`report`: the test split when there is one, else
    the validation split (:attr:`report_split` says which)."""
    name: str
    train: Split | StreamingSplit
    val: Split | StreamingSplit
    num_classes: int
    description: str
    test: Split | StreamingSplit | None = None
    #: a digest of the data as defined, the same on every CPU class, where the loader gives one:
    #: :meth:`digest` returns it instead of hashing the splits' float32 bits, which ATen's vectorised
    #: kernels round differently per instruction set (a resize, a reduction)
    identity: str | None = None

    @property
    def report(self) -> Split | StreamingSplit:
        """The split accuracies are reported on: ``test`` when there is one, else ``val``."""
        return self.val if self.test is None else self.test

    @property
    def report_split(self) -> str:
        """``test`` or ``validation``: the name of :attr:`report`."""
        return "validation" if self.test is None else "test"

    def digest(self) -> str:
        """A digest of every split's content (:meth:`Split.digest`, :meth:`StreamingSplit.digest`), or
        the bundle's :attr:`identity` where its loader gives one."""
        if self.identity is not None:
            return self.identity
        parts = [self.train.digest(), self.val.digest()] + ([] if self.test is None else [self.test.digest()])
        return "/".join(parts)

    def subset(self, train: int | None, val: int | None, test: int | None) -> "DataBundle":
        """Stratified subsets of each split (``None``: the whole split)."""
        if train is None and val is None and test is None:
            return self
        cut = None if self.test is None else self.test.subset(test)
        sizes = f"{train} train / {val} validation" + ("" if cut is None else f" / {test} test")
        return DataBundle(self.name, self.train.subset(train), self.val.subset(val), self.num_classes,
                          self.description + f" (subset: {sizes})", cut,
                          None if self.identity is None else f"{self.identity}|subset {train}/{val}/{test}")

    @classmethod
    def from_datasets(cls, name: str, train, val, *, test=None, mean: float | Sequence[float],
                      std: float | Sequence[float], scale: float = 1.0,
                      input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
                      description: str | None = None, stream: bool | None = None) -> "DataBundle":
        """A bundle from two or three map-style datasets of ``(image, label)`` items, normalised alike.

        ``test`` (optional) is the held-out split accuracies are reported on; without it they are
        reported on ``val``, and the tables say so. ``stream=False`` reads every split into memory
        (:meth:`Split.from_dataset`); ``stream=True`` keeps them where they are and reads one batch
        at a time (:class:`~zoo.streaming.StreamingSplit`); ``None`` streams when the images of all
        splits would take more than :data:`MAX_IN_MEMORY_MIB` (estimated from the first item of
        each). ``num_classes`` defaults to the largest label of any split plus one (labels are class
        indices 0 .. num_classes - 1); a label outside that range is a :class:`DataError`.
        """
        sources = [train, val] + ([] if test is None else [test])
        if stream is None:
            stream = sum(_estimated_mib(d, input_shape) for d in sources) > MAX_IN_MEMORY_MIB
        if stream:
            from .streaming import StreamingSplit  # here: streaming imports this module
            splits = [StreamingSplit(d, mean=mean, std=std, scale=scale, input_shape=input_shape) for d in sources]
        else:
            splits = [Split.from_dataset(d, mean=mean, std=std, scale=scale, input_shape=input_shape)
                      for d in sources]
        top = int(max(s.labels.max() for s in splits))
        n = top + 1 if num_classes is None else int(num_classes)
        if int(min(s.labels.min() for s in splits)) < 0 or top >= n:
            raise DataError(f"dataset {name!r} has labels outside 0 .. {n - 1}; labels must be class indices")
        sizes = f"{len(splits[0])} train / {len(splits[1])} validation" + (
            f" / {len(splits[2])} test" if len(splits) > 2 else "")
        return cls(name, splits[0], splits[1], n, description or f"{name}, {sizes}",
                   splits[2] if len(splits) > 2 else None)


def _estimated_mib(dataset, input_shape: tuple[int, int, int] | None) -> float:
    """MiB the images of ``dataset`` would take in memory: its first image (as read, or resized to
    ``input_shape`` when that is larger) times its length."""
    n = dataset_length(dataset)
    image, _ = read_item(dataset, 0, type(dataset).__name__)
    size = image.numel() * image.element_size()
    if input_shape is not None:
        fitted = fit_item(image, input_shape)
        size = max(size, fitted.numel() * fitted.element_size())
    return size * n / 2 ** 20
