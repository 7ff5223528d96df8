"""Command line: ``compression-zoo list`` and ``compression-zoo train``."""
from __future__ import annotations

import argparse
import sys
import time

from tabulate import tabulate
from tqdm import tqdm

from . import (PROFILES, ArtifactCache, CacheError, DataError, UnknownModelError,
               UnknownProfileError, build, count_parameters, get_data, get_model_info, get_profile,
               get_trained, list_models)
from .trained import resolve_device
from .training import EpochReport


def _parse_models(text: str | None) -> list[str]:
    names = list_models() if not text else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UnknownModelError(f"no model selected; valid names are: {', '.join(list_models())}")
    for n in names:
        get_model_info(n)
    return names


def cmd_list(args) -> int:
    prof = get_profile(args.profile)
    rows = []
    for name in list_models(include_optional=True):
        info = get_model_info(name)
        rows.append([name, "x".join(map(str, info.input_shape)), prof.dataset_for(name),
                     f"{count_parameters(build(name)) / 1e6:.2f}",
                     info.description + ("" if info.default else " (opt-in: select it by name)")])
    print(f"profile: {prof.name} ({prof.description})")
    print(tabulate(rows, headers=["model", "input", "dataset", "params (M)", "architecture"]))
    return 0


class _Bar:
    """tqdm bar over the epochs of one training run."""

    def __init__(self):
        self.bar = None

    def __call__(self, r: EpochReport) -> None:
        if self.bar is None:
            self.bar = tqdm(total=r.epochs, desc=r.tag, unit="epoch", file=sys.stderr, leave=True)
        acc = "-" if r.val_accuracy is None else f"{r.val_accuracy:.2f}%"
        self.bar.set_postfix_str(f"loss {r.loss:.3f} val {acc}")
        self.bar.update(1)
        if r.epoch == r.epochs:
            self.bar.close()
            self.bar = None


def cmd_train(args) -> int:
    prof = get_profile(args.profile)
    names = _parse_models(args.models)
    cache = ArtifactCache(args.cache)
    cache.check_writable()
    resolve_device(args.device)  # a device this machine lacks stops here, not after the first model
    for name in names:  # a missing dataset stops the run before anything trains, not after
        get_data(name, prof, data_root=args.data_root, download=args.download)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        tm = get_trained(name, prof, cache=cache, data_root=args.data_root, download=args.download,
                         device=args.device, progress=_Bar())
        took = time.perf_counter() - t0
        rows.append([name, tm.data.name, f"{tm.accuracy:.2f}", "cache" if tm.from_cache else "trained",
                     f"{tm.meta['train_seconds']:.1f}", f"{took:.1f}"])
    print(f"profile: {prof.name}; cache: {cache.root}")
    print(tabulate(rows, headers=["model", "dataset", "val acc (%)", "source", "train time (s)", "this call (s)"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="compression-zoo", description="The model zoo of the compression benchmark.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("list", help="models, their datasets and parameter counts")
    pl.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)} (default: $ZOO_PROFILE or default)")
    pt = sub.add_parser("train", help="train the zoo into the cache (loads what is already there)")
    pt.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)} (default: $ZOO_PROFILE or default)")
    pt.add_argument("--models", default=None, help="comma-separated model names (default: all)")
    pt.add_argument("--cache", default=None, help="cache directory (default: $ZOO_CACHE or the user cache dir)")
    pt.add_argument("--data-root", default=None, help="data root for mnist/cifar10 (default: $ZOO_DATA_ROOT or ~/data)")
    pt.add_argument("--download", action="store_true", help="download mnist/cifar10 if missing (needs network)")
    pt.add_argument("--device", default="cpu", help="training device: cpu, cuda or auto (benchmarks always run on CPU)")
    args = p.parse_args(argv)
    try:
        return cmd_list(args) if args.cmd == "list" else cmd_train(args)
    except (UnknownModelError, UnknownProfileError, DataError, CacheError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
