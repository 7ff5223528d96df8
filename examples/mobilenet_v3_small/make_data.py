"""Write five classes of scikit-learn's handwritten digits as 64x64 PNG files, in ImageFolder layout.

    data/train/<digit>/<index>.png     75% of each class
    data/val/<digit>/<index>.png       25% of each class (stratified split, seed 0)

<index> is the image's position in ``sklearn.datasets.load_digits()``. The 8x8 images (values
0..16) are scaled to 0..255 and upscaled bilinearly to 64x64, one grey channel per file;
``torchvision.datasets.ImageFolder`` opens them as RGB (three equal channels), which is what
``mobilenet_v3_small`` takes unmodified.

Idempotent: a file already holding the right bytes is left alone, a stale one is rewritten, and
PNG files that do not belong (another split, other classes) are removed. Prints the counts and the
mean and standard deviation of the training pixels (the normalisation used by train.py and
conftest.py). Takes seconds.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
CLASSES = (0, 1, 2, 3, 4)
SIZE = 64
VAL_FRACTION = 0.25
SEED = 0


def png_bytes(image_8x8: np.ndarray) -> bytes:
    grey = Image.fromarray(np.rint(image_8x8 * (255.0 / 16.0)).astype(np.uint8))  # 2-D uint8: mode L
    buf = io.BytesIO()
    grey.resize((SIZE, SIZE), Image.Resampling.BILINEAR).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "data", help="output folder (default: ./data)")
    out = parser.parse_args().out

    digits = load_digits()
    keep = np.flatnonzero(np.isin(digits.target, CLASSES))
    train_idx, val_idx = train_test_split(keep, test_size=VAL_FRACTION, stratify=digits.target[keep],
                                          random_state=SEED)
    wanted: dict[Path, int] = {}
    for split, indices in (("train", train_idx), ("val", val_idx)):
        for i in sorted(indices):
            wanted[out / split / str(digits.target[i]) / f"{i:04d}.png"] = i

    written = removed = 0
    for path, i in wanted.items():
        data = png_bytes(digits.images[i])
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written += 1
    for split in ("train", "val"):
        for stale in sorted((out / split).rglob("*.png")):
            if stale not in wanted:
                stale.unlink()
                removed += 1
        for folder in sorted((out / split).glob("*/"), reverse=True):  # ImageFolder rejects an empty class
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    for split, indices in (("train", train_idx), ("val", val_idx)):
        per_class = np.bincount(digits.target[indices], minlength=10)[list(CLASSES)]
        print(f"{split}: {len(indices)} images ({', '.join(f'{c}: {n}' for c, n in zip(CLASSES, per_class))})")
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.float64) / 255.0
                       for p in wanted if p.parts[-3] == "train"])
    print(f"train pixels: mean {pixels.mean():.4f}, std {pixels.std():.4f}")
    print(f"{out}: {written} file(s) written, {len(wanted) - written} already up to date, {removed} removed")


if __name__ == "__main__":
    main()
