"""Train torchvision's MobileNetV3-Small from scratch on data/train (written by make_data.py) on the
CPU, print the validation accuracy and save the weights to checkpoint.pt.

A plain torch script that knows nothing of the benchmark: the benchmark loads checkpoint.pt
through ``weights=`` in conftest.py. Its normalisation (MEAN, STD) must be the one registered
there, and its hyper-parameters are those of the recipe registered there (which the benchmark
uses to fine-tune the compressed variants).

Deterministic: the same seed, data, thread count and library versions give the same file.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision import datasets, transforms

HERE = Path(__file__).resolve().parent
MEAN, STD = 0.3051, 0.3275  # of the training pixels (printed by make_data.py); the same in conftest.py
NUM_CLASSES = 5


def loader(split: str, batch_size: int, *, train: bool, generator: torch.Generator | None = None):
    steps = [transforms.RandomAffine(degrees=0, translate=(0.08, 0.08))] if train else []
    steps += [transforms.ToTensor(), transforms.Normalize([MEAN] * 3, [STD] * 3)]
    folder = HERE / "data" / split
    if not folder.is_dir():
        raise SystemExit(f"{folder} does not exist: run 'python make_data.py' first")
    ds = datasets.ImageFolder(folder, transform=transforms.Compose(steps))
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=train, generator=generator)


@torch.no_grad()
def accuracy(model: torch.nn.Module, data) -> float:
    model.eval()
    correct = total = 0
    for x, y in data:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return 100.0 * correct / total


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, data) -> None:
    """Recompute the BatchNorm statistics over the training images with the final weights: torchvision's
    MobileNetV3 averages them with momentum 0.01, too slow for the few hundred steps of this run."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    for x, _ in data:
        model(x)
    for m in norms:
        m.momentum = 0.01
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs (default: 15)")
    parser.add_argument("--smoke", action="store_true", help="one epoch, for CI: checks the path, not the accuracy")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2; part of determinism)")
    parser.add_argument("--out", type=Path, default=HERE / "checkpoint.pt", help="default: ./checkpoint.pt")
    args = parser.parse_args()
    epochs = 1 if args.smoke else args.epochs

    torch.manual_seed(0)  # weights and augmentation
    torch.set_num_threads(args.threads)
    train_data = loader("train", 32, train=True, generator=torch.Generator().manual_seed(0))
    val_data = loader("val", 256, train=False)
    model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=NUM_CLASSES)

    # AdamW, one epoch of linear warm-up, then cosine decay to zero, per step
    lr, steps_per_epoch = 2e-3, len(train_data)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm, total = steps_per_epoch, epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                                 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        loss_sum = 0.0
        for x, y in train_data:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            loss_sum += loss.item() * len(y)
        print(f"epoch {epoch + 1}/{epochs}  loss {loss_sum / len(train_data.dataset):.4f}  "
              f"{time.perf_counter() - start:5.1f}s", flush=True)

    recalibrate_batchnorm(model, loader("train", 32, train=False))
    print(f"validation accuracy {accuracy(model, val_data):.2f}% on {len(val_data.dataset)} images "
          f"after {epochs} epoch(s), {time.perf_counter() - start:.1f}s")
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
