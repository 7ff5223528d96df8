"""Registers torchvision's MobileNetV3-Small and the digits5 ImageFolder with the benchmark (see README.md)."""
from pathlib import Path

import torchvision
from torchvision import datasets, transforms

from compression_bench import zoo

pytest_plugins = ["compression_bench.benchmarks.plugin"]
HERE = Path(__file__).resolve().parent


def digits5(input_shape, *, data_root, download):  # data_root, download: unused, the files are in ./data
    if not all((HERE / "data" / s).is_dir() for s in ("train", "val")):
        raise zoo.DataError(f"no images under {HERE / 'data'}: run 'python make_data.py' there first")
    split = lambda name: datasets.ImageFolder(HERE / "data" / name, transform=transforms.ToTensor())  # noqa: E731
    return zoo.DataBundle.from_datasets("digits5", split("train"), split("val"), mean=0.3051, std=0.3275,
                                        input_shape=input_shape)  # mean, std: as in train.py


zoo.register_dataset("digits5", digits5, description="scikit-learn digits 0-4 as 64x64 PNGs (make_data.py)")


@zoo.register_model("MobileNetV3Small", input_shape=(3, 64, 64), num_classes=5, dataset="digits5",
                    weights=HERE / "checkpoint.pt", description="torchvision mobilenet_v3_small, train.py",
                    recipe=zoo.Recipe(epochs=15, batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=0.01,
                                      warmup_epochs=1, shift=0.08))  # train.py's; fine-tunes the variants
def mobilenet_v3_small():
    return torchvision.models.mobilenet_v3_small(weights=None, num_classes=5)
