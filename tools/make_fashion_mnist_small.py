"""Write the packaged Fashion-MNIST subset (``src/compression_bench/zoo/embedded/fashion-mnist-small/``)
from the official files, and print the SHA-256 of each written file's decompressed bytes for
``zoo.fashion.SMALL_SHA256``.

    python tools/make_fashion_mnist_small.py [DATA_ROOT] [--out FOLDER]

The official files are looked for as the ``fashion_mnist`` dataset looks for them
(``DATA_ROOT/FashionMNIST/raw``, then Debian's ``/usr/share/datasets/fashion-mnist``). The output is
the same byte for byte on every run: a fixed stratified 12,000 of the 60,000 training images, and the
10,000 test images as they are.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

from compression_bench.zoo import fashion


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", nargs="?", default="~/data")
    parser.add_argument("--out", default=str(fashion.SMALL_DIR))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    official = fashion.read_official(str(Path(args.data_root).expanduser()))
    images, labels = official["train"]
    keep = fashion.small_subset_positions(labels)
    test_x, test_y = official["test"]
    for name, array in (("train-" + fashion.IMAGES, images[keep]), ("train-" + fashion.LABELS, labels[keep]),
                        ("t10k-" + fashion.IMAGES, test_x), ("t10k-" + fashion.LABELS, test_y)):
        raw = fashion.write_idx(out / (name + ".gz"), array)
        print(f'    "{name}": "{hashlib.sha256(raw).hexdigest()}",  # {array.shape}')
    x = images.astype("float64") / 255.0
    print(f"mean {x.mean():.4f} std {x.std():.4f} of the {len(images):,} official training images")
    notice = Path(__file__).resolve().parent.parent / "src" / "compression_bench" / "zoo" / "embedded" / "fashion-mnist-small" / "LICENSE"
    if notice.is_file() and out.resolve() != notice.parent:
        shutil.copy(notice, out / "LICENSE")


if __name__ == "__main__":
    main()
