"""Datasets of the zoo: a registry of loaders by name, and the three built-in entries.

A dataset is one call::

    def load_mine(input_shape, *, data_root, download):   # -> DataBundle
        return DataBundle.from_datasets("mine", train_ds, val_ds, mean=(0.5,), std=(0.25,),
                                        input_shape=input_shape)
    register_dataset("mine", load_mine, description="my images")

The loader gets the model's ``input_shape`` (C, H, W), the resolved data root (``data_root``
argument, else ``ZOO_DATA_ROOT``, else ``~/data``) and whether it may download. It returns a
:class:`DataBundle` whose splits carry the dataset's own normalisation (``mean``, ``std``,
``scale``) and whose ``num_classes`` comes from the data. It raises :class:`DataError`, with a
message that says how to fix it, when the data is not there. ``DataBundle.from_datasets`` reads
small datasets into memory and streams large ones batch by batch (``stream=``,
``MAX_IN_MEMORY_MIB`` in :mod:`zoo.splits`), e.g. a folder of images::

    def load_photos(input_shape, *, data_root, download):
        from torchvision import datasets, transforms
        read = lambda part: datasets.ImageFolder(os.path.join(data_root, "photos", part),
                                                 transform=transforms.PILToTensor())
        return DataBundle.from_datasets("photos", read("train"), read("val"), mean=(0.5, 0.5, 0.5),
                                        std=(0.25, 0.25, 0.25), scale=1 / 255, input_shape=input_shape)

A model trains on such a dataset under every profile when registered with
``register_model(..., dataset="photos")``.

Built in:

* ``fashion_mnist_small`` and ``fashion_mnist``: Fashion-MNIST, the default profile's data, packaged
  (a fixed 12,000 of the training images and the whole test set) and whole (from a data root, Debian's
  package or a download): see :mod:`zoo.fashion`.
* ``digits``: the 1,797 real 8x8 handwritten digits bundled with scikit-learn, with a fixed
  stratified split into 1,347 train / 225 validation / 225 test, resized to each model's input,
  grey replicated to three channels where the model wants colour. Works offline: the default
  profile.
* ``mnist`` and ``cifar10``: torchvision's dataset classes reading a data root laid out as
  torchvision expects (``<root>/MNIST/raw/...``, ``<root>/cifar-10-batches-py/...``). The
  validation split is a fixed stratified 5,000 images of the official training set (the rest is
  trained on); the official test set is the test split.
  Downloading happens only when asked for; a missing dataset stops with one sentence that says
  where the files must go.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..plugins import Registry
from .fashion import load_fashion_mnist_data, load_fashion_mnist_small
from .images import DataError, carve_validation, fit_shape
from .splits import DataBundle, Split

__all__ = ["DATASETS", "DataBundle", "DataError", "DatasetInfo", "Split", "default_data_root",
           "fit_shape", "get_dataset_info", "list_datasets", "load_dataset", "register_dataset",
           "unregister_dataset"]

DIGITS_HELD_OUT = 0.25   # the 450 images the founding recipes were tuned on (never the test split)
DIGITS_VAL_SIZE = 225    # of those, the validation split: for choosing recipes and budgets
DIGITS_TEST_SIZE = 225   # the test split, drawn from the founding training images: every reported accuracy
DIGITS_SPLIT_SEED = 0
FULL_VAL_SIZE = 5000     # MNIST, CIFAR-10: validation images carved from the official training set

Loader = Callable[..., DataBundle]  # loader(input_shape, *, data_root: str, download: bool)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Loader
    description: str

    def load(self, input_shape: tuple[int, int, int], *, data_root: str | None = None,
             download: bool = False) -> DataBundle:
        bundle = self.loader(tuple(input_shape), data_root=data_root or default_data_root(),
                             download=download)
        if not isinstance(bundle, DataBundle):
            raise DataError(f"the loader of dataset {self.name!r} returned {type(bundle).__name__}, "
                            f"not a DataBundle; build one with DataBundle.from_datasets")
        return bundle


_DATASETS: Registry[DatasetInfo] = Registry("dataset", DataError)


def register_dataset(name: str, loader: Loader, *, description: str) -> Loader:
    """Register ``loader(input_shape, *, data_root, download) -> DataBundle`` under ``name``.

    Registering a taken name raises :class:`ValueError`; returns ``loader``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a dataset name must be a non-empty string, got {name!r}")
    if not callable(loader):
        raise TypeError(f"the loader of dataset {name!r} must be callable, got {type(loader).__name__}")
    _DATASETS.add(name, DatasetInfo(name, loader, description))
    return loader


def unregister_dataset(name: str) -> None:
    """Remove a registered dataset (tests, notebooks)."""
    _DATASETS.remove(name)


def list_datasets() -> list[str]:
    """Registered dataset names, in registration order (installed plugins' included)."""
    return _DATASETS.names()


def get_dataset_info(name: str) -> DatasetInfo:
    return _DATASETS.get(name)


def default_data_root() -> str:
    return os.environ.get("ZOO_DATA_ROOT") or os.path.join(os.path.expanduser("~"), "data")


def load_dataset(name: str, input_shape: tuple[int, int, int], *, data_root: str | None = None,
                 download: bool = False) -> DataBundle:
    """Load dataset ``name`` shaped for a model taking ``input_shape`` (C, H, W)."""
    return get_dataset_info(name).load(input_shape, data_root=data_root, download=download)


# ---------------------------------------------------------------- built-in: scikit-learn digits

def load_digits_data(input_shape: tuple[int, int, int], *, data_root: str | None = None,
                     download: bool = False) -> DataBundle:
    """The scikit-learn digits; needs no files (``data_root`` and ``download`` are unused)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0  # values 0..16 -> 0..1
    y = digits.target.astype(np.int64)
    # The founding recipes were chosen by their accuracy on 450 held-out images, so none of those may
    # be in the test split: the test split is 225 of the founding training images, and 225 of the
    # 450 take their place in training (EfficientNet-B0's recipe reached 40% validation accuracy on
    # 1,122 training images, so the training split keeps its size); the other 225 are validation.
    # All three are stratified.
    idx_fit, idx_tuned = train_test_split(np.arange(len(y)), test_size=DIGITS_HELD_OUT,
                                          stratify=y, random_state=DIGITS_SPLIT_SEED)
    idx_val, idx_moved = train_test_split(idx_tuned, train_size=DIGITS_VAL_SIZE, stratify=y[idx_tuned],
                                          random_state=DIGITS_SPLIT_SEED)
    idx_kept, idx_test = train_test_split(idx_fit, test_size=DIGITS_TEST_SIZE, stratify=y[idx_fit],
                                          random_state=DIGITS_SPLIT_SEED)
    idx_train = np.concatenate([idx_kept, idx_moved])
    images = fit_shape(torch.from_numpy(x).unsqueeze(1), input_shape)
    labels = torch.from_numpy(y)
    tr, va, te = (torch.from_numpy(np.sort(ix)) for ix in (idx_train, idx_val, idx_test))
    mean = float(images[tr].mean())  # normalised with the statistics of the train split
    std = float(images[tr].std())
    mk = lambda ix: Split(images[ix], labels[ix], 1.0, (mean,), (std,))  # noqa: E731
    return DataBundle("digits", mk(tr), mk(va), len(digits.target_names),
                      f"scikit-learn digits, {len(tr)} train / {len(va)} validation / {len(te)} test, "
                      f"8x8 resized to {input_shape[1]}x{input_shape[2]}", mk(te),
                      identity=_digits_identity(x, y, input_shape, (tr, va, te)))


def _digits_identity(x: np.ndarray, y: np.ndarray, shape: tuple[int, int, int], splits) -> str:
    """The digits' digest for cache keys, the same on every CPU class: the images resized in float64
    (then rounded to float32, which absorbs the last-bit differences of float64 kernels between
    instruction sets), the labels and the split positions. The float32 images the models train on
    are resized in float32, as they always were: their bits differ between an AVX-512 and an AVX2
    machine by a rounding, not in what they show, and a model prepared on one is valid on the other."""
    from .keys import content_digest
    exact = fit_shape(torch.from_numpy(x.astype(np.float64)).unsqueeze(1), shape).float()
    return "digits:" + content_digest({"images": exact, "labels": torch.from_numpy(y),
                                       "splits": [s.tolist() for s in splits]})


# ---------------------------------------------------------------- built-in: torchvision MNIST, CIFAR-10

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


def load_mnist_data(input_shape: tuple[int, int, int], *, data_root: str, download: bool = False) -> DataBundle:
    from torchvision.datasets import MNIST

    where = ("the four MNIST files (" + ", ".join(_MNIST_FILES)
             + f", gunzipped) in {os.path.join(data_root, 'MNIST', 'raw')}")
    splits, classes = [], 0
    for train in (True, False):
        ds = _torchvision_dataset(MNIST, data_root, train, download, where)
        images = fit_shape(ds.data.unsqueeze(1), input_shape)  # N x 1 x 28 x 28 uint8, as uint8
        splits.append(Split(images, ds.targets.long(), 1 / 255.0, (0.1307,), (0.3081,)))
        classes = len(ds.classes)
    return _with_validation("mnist", f"MNIST from {data_root}", splits[0], splits[1], classes)


def _with_validation(name: str, where: str, train: Split, test: Split, classes: int) -> DataBundle:
    """The official training set split into train and a fixed stratified validation part; the
    official test set as the test split."""
    # 5,000 of MNIST's 60,000 and of CIFAR-10's 50,000; a tenth (one image per class at least) of a smaller set
    tr, va = carve_validation(train.labels, min(FULL_VAL_SIZE, max(classes, len(train) // 10)), DIGITS_SPLIT_SEED)
    part = lambda ix: Split(train.images[ix], train.labels[ix], train.scale, train.mean, train.std)  # noqa: E731
    return DataBundle(name, part(tr), part(va), classes,
                      f"{where}, {len(tr)} train / {len(va)} validation / {len(test)} test", test)


def load_cifar10_data(input_shape: tuple[int, int, int], *, data_root: str, download: bool = False) -> DataBundle:
    from torchvision.datasets import CIFAR10

    where = f"the extracted python version of CIFAR-10 in {os.path.join(data_root, 'cifar-10-batches-py')}"
    if tuple(input_shape) != (3, 32, 32):
        raise DataError(f"cifar10 gives 3x32x32 images, the model wants {input_shape}")
    splits, classes = [], 0
    for train in (True, False):
        ds = _torchvision_dataset(CIFAR10, data_root, train, download, where)
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        splits.append(Split(images, torch.tensor(ds.targets, dtype=torch.long), 1 / 255.0,
                            (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)))
        classes = len(ds.classes)
    return _with_validation("cifar10", f"CIFAR-10 from {data_root}", splits[0], splits[1], classes)


register_dataset("digits", load_digits_data,
                 description="scikit-learn's 1,797 8x8 handwritten digits, fixed stratified train / validation / test split (offline)")
register_dataset("mnist", load_mnist_data, description="MNIST through torchvision, from the data root")
register_dataset("cifar10", load_cifar10_data, description="CIFAR-10 through torchvision, from the data root")

register_dataset("fashion_mnist_small", load_fashion_mnist_small,
                 description="Fashion-MNIST packaged with compression-bench: 12,000 of the official training images "
                             "(10,000 train / 2,000 validation) and the official 10,000 test images (offline)")
register_dataset("fashion_mnist", load_fashion_mnist_data,
                 description="the whole Fashion-MNIST (55,000 train / 5,000 validation / 10,000 test), from the data "
                             "root, Debian's dataset-fashion-mnist, or torchvision's download")

#: the built-in dataset names; :func:`list_datasets` also has those registered later (and loads the
#: plugins, which no import may do: a plugin imports this package)
DATASETS = ("digits", "mnist", "cifar10", "fashion_mnist_small", "fashion_mnist")
