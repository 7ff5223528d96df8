"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; Zalando SE, MIT licence): 28x28 grey images of
clothing in 10 classes, 60,000 training and 10,000 test images. Much harder than the digits or
MNIST: small CNNs reach about 90% on it, so a compression method's accuracy cost of half a point is
visible on its 10,000-image test split.

Two datasets:

* ``fashion_mnist``: the whole official set, read from the four idx files (gzipped or not) in the
  first place that has them: ``<data root>/FashionMNIST/raw/`` (torchvision's layout), then
  :data:`SYSTEM_DIR` (Debian's ``dataset-fashion-mnist`` package); with ``download`` torchvision's
  ``FashionMNIST`` fetches them into the data root. The validation split is a fixed stratified 5,000
  of the official training set, the rest is trained on, the official test set is the test split.
* ``fashion_mnist_small``: what the default profile trains on, shipped inside this package so that it
  works offline and without root: the whole official test set and a fixed stratified
  :data:`SMALL_TRAIN_IMAGES` of the official training images (:data:`SMALL_VAL_IMAGES` of them,
  stratified, are the validation split). ``tools/make_fashion_mnist_small.py`` writes its files from
  the official ones.

Every file is checked against the SHA-256 of its *decompressed* bytes (:data:`OFFICIAL_SHA256`,
:data:`SMALL_SHA256`): the same on every mirror, whoever recompressed it (Debian's ``.gz`` files
differ from Zalando's byte for byte, their contents do not). A missing or damaged file is a
:class:`~zoo.splits.DataError` that says where the files must go.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from .images import DataError, carve_validation, fit_shape
from .splits import DataBundle, Split

#: where Debian's ``dataset-fashion-mnist`` package puts the four files
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
#: the packaged subset (package data of this module's package)
SMALL_DIR = Path(__file__).parent / "embedded" / "fashion-mnist-small"

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
IMAGES, LABELS = "images-idx3-ubyte", "labels-idx1-ubyte"
OFFICIAL_FILES = {"train": ("train-" + IMAGES, "train-" + LABELS), "test": ("t10k-" + IMAGES, "t10k-" + LABELS)}
#: SHA-256 of the decompressed official files (from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1)
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
SMALL_TRAIN_IMAGES = 12_000  # of the official 60,000: 1,200 a class
SMALL_VAL_IMAGES = 2_000     # of those, the validation split (200 a class); 10,000 are trained on
FULL_VAL_IMAGES = 5_000      # fashion_mnist: validation images carved from the official 60,000
SPLIT_SEED = 0
#: SHA-256 of the decompressed packaged files (tools/make_fashion_mnist_small.py prints them)
SMALL_SHA256 = {
    "train-images-idx3-ubyte": "827af476d61f6d599265d7fe5194d7901de5bebfdcbe8545f3f57d1b62973022",
    "train-labels-idx1-ubyte": "fedf8439e0ceef99fd1fd60a3d198ccf7f95b5c1495729a423e5cc04fa1cf2e3",
    "t10k-images-idx3-ubyte": OFFICIAL_SHA256["t10k-images-idx3-ubyte"],
    "t10k-labels-idx1-ubyte": OFFICIAL_SHA256["t10k-labels-idx1-ubyte"],
}
#: the pixel mean and standard deviation (in 0..1) of the 60,000 official training images, as
#: tools/make_fashion_mnist_small.py computes them: every split of both datasets is normalised with them
MEAN, STD = 0.2860, 0.3530


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """The array in an idx file (gzipped when its name ends in ``.gz``), checked against the SHA-256
    of its decompressed bytes when one is given; :class:`DataError` when it cannot be read or differs."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err})") from None
    if expected_sha256 and hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise DataError(f"{path} is not the Fashion-MNIST file it is named after (its SHA-256 differs); "
                        f"replace it with the official file")
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, where: str) -> np.ndarray:
    """An idx array (unsigned bytes: the type every MNIST-like file uses) from its bytes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{where} is not an idx file of unsigned bytes")
    dims = raw[3]
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    if len(raw) != header + int(np.prod(shape)):
        raise DataError(f"{where} is truncated: its header announces {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> bytes:
    """Write ``array`` (uint8) as a gzipped idx file, byte for byte the same on every run (no time in the
    gzip header); returns the decompressed bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()
    Path(path).write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    return raw


def _find(name: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def official_files(data_root: str, download: bool = False) -> dict[str, Path]:
    """The four official files: from ``<data_root>/FashionMNIST/raw``, else :data:`SYSTEM_DIR`, else
    (``download``) fetched by torchvision into the data root; :class:`DataError` naming the fix."""
    raw = Path(data_root) / "FashionMNIST" / "raw"
    folders = [raw, Path(SYSTEM_DIR)]
    found = {n: _find(n, folders) for n in OFFICIAL_SHA256}
    if None in found.values() and download:
        from torchvision.datasets import FashionMNIST
        try:
            FashionMNIST(data_root, train=True, download=True)
            FashionMNIST(data_root, train=False, download=True)
        except (OSError, RuntimeError) as err:
            raise DataError(f"could not download Fashion-MNIST into {data_root!r} ({err}); no network? Put the "
                            f"four files in {raw} by hand.") from None
        found = {n: _find(n, folders) for n in OFFICIAL_SHA256}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        hint = "" if download else " or pass download=True (--zoo-download) on a machine that is online"
        raise DataError(f"Fashion-MNIST not found: put the four files ({', '.join(OFFICIAL_SHA256)}, gzipped or "
                        f"not) in {raw}, install Debian's dataset-fashion-mnist{hint}.")
    return found  # type: ignore[return-value]


def read_official(data_root: str, download: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images, labels), "test": (images, labels)}`` of the official set, checked."""
    files = official_files(data_root, download)
    return {part: tuple(read_idx(files[n], OFFICIAL_SHA256[n]) for n in names)  # type: ignore[misc]
            for part, names in OFFICIAL_FILES.items()}


def small_subset_positions(labels: np.ndarray) -> np.ndarray:
    """The positions in the official training set of the packaged :data:`SMALL_TRAIN_IMAGES`: a fixed
    stratified draw (scikit-learn's ``train_test_split``, seed :data:`SPLIT_SEED`), in ascending order."""
    from sklearn.model_selection import train_test_split
    picked, _ = train_test_split(np.arange(len(labels)), train_size=SMALL_TRAIN_IMAGES, stratify=labels,
                                 random_state=SPLIT_SEED)
    return np.sort(picked)


def _bundle(name: str, description: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
            test_y: np.ndarray, val_size: int, input_shape: tuple[int, int, int], identity: str) -> DataBundle:
    labels = torch.from_numpy(train_y.astype(np.int64))
    tr, va = carve_validation(labels, val_size, SPLIT_SEED)
    images = fit_shape(torch.from_numpy(np.array(train_x)).unsqueeze(1), input_shape)  # uint8 stays uint8
    test = fit_shape(torch.from_numpy(np.array(test_x)).unsqueeze(1), input_shape)
    mk = lambda x, y: Split(x, y, 1 / 255.0, (MEAN,), (STD,))  # noqa: E731
    return DataBundle(name, mk(images[tr], labels[tr]), mk(images[va], labels[va]), len(CLASSES),
                      f"{description}, {len(tr)} train / {len(va)} validation / {len(test_y)} test, "
                      f"28x28" + ("" if tuple(input_shape[1:]) == (28, 28) else f" resized to {input_shape[1]}x{input_shape[2]}"),
                      mk(test, torch.from_numpy(test_y.astype(np.int64))),
                      identity=f"{identity}|{tuple(input_shape)}|val {val_size} seed {SPLIT_SEED}")


def load_fashion_mnist_data(input_shape: tuple[int, int, int], *, data_root: str,
                            download: bool = False) -> DataBundle:
    """The whole official Fashion-MNIST (see the module's docstring for where it is read from)."""
    parts = read_official(data_root, download)
    (train_x, train_y), (test_x, test_y) = parts["train"], parts["test"]
    return _bundle("fashion_mnist", "Fashion-MNIST", train_x, train_y, test_x, test_y, FULL_VAL_IMAGES,
                   input_shape, "fashion_mnist:" + ",".join(OFFICIAL_SHA256[n][:16] for n in OFFICIAL_SHA256))


def load_fashion_mnist_small(input_shape: tuple[int, int, int], *, data_root: str | None = None,
                             download: bool = False) -> DataBundle:
    """The packaged subset (needs no files of the user's; ``data_root`` and ``download`` are unused)."""
    arrays = {}
    for n, sha in SMALL_SHA256.items():
        path = SMALL_DIR / (n + ".gz")
        if not path.is_file():
            raise DataError(f"the packaged Fashion-MNIST file {path} is missing: reinstall compression-bench")
        arrays[n] = read_idx(path, sha)
    return _bundle("fashion_mnist_small", f"Fashion-MNIST (packaged: {SMALL_TRAIN_IMAGES:,} of the official "
                   f"training images)", arrays["train-" + IMAGES], arrays["train-" + LABELS],
                   arrays["t10k-" + IMAGES], arrays["t10k-" + LABELS], SMALL_VAL_IMAGES, input_shape,
                   "fashion_mnist_small:" + ",".join(SMALL_SHA256[n][:16] for n in SMALL_SHA256))
