"""Glue between the zoo and compression: cached variants and their metrics. No pytest here.

``get_variant(trained, method_id, cache)`` builds (or loads) one compressed variant of a trained
zoo model and measures everything except latency: accuracy and the prediction of every image on the
whole reported split (the test split where the dataset has one, else validation),
stored parameters (packed INT8 included), nonzero parameters, sparsity, serialized and
zero-aware size, MACs.

Two cache entries per variant: the variant itself (minutes to build: keyed by the content of the
trained model it came from, the method settings, the compression code and the library versions)
and its metrics (seconds to measure: keyed by the variant's content and the measurement code). A
change of the measurement code re-measures every variant without rebuilding any.
"""
from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from compression_bench import compression
from compression_bench import zoo
from compression_bench.compression import CompressionContext, MethodSpec
from compression_bench.compression.pruning import channels_pruned, is_structured
from compression_bench.zoo import ArtifactCache, TrainedModel
from compression_bench.zoo.keys import code_fingerprint, content_digest, package_versions

CALIBRATION_BATCHES = 8     # static INT8: batches of the training split seen by the observers
CALIBRATION_BATCH_SIZE = 64
EXAMPLE_BATCH = 2           # real images used to trace models (FX, Torch-Pruning, FLOP counter)
#: libraries a built variant depends on (part of its key)
COMPRESSION_PACKAGES = ("torch", "torchvision", "torch-pruning", "torchao")  # torchao: weight-only INT8

Log = Callable[[str], None]


@dataclass
class Variant:
    trained: TrainedModel
    method: MethodSpec
    model: nn.Module
    metrics: dict          # accuracy, params, nonzero_params, sparsity, size_mib, ... build_seconds
    from_cache: bool       # the variant was loaded, not built
    measured: bool = False  # its metrics were measured in this call, not loaded
    digest: str = ""        # content digest of the exported variant: what derived entries are keyed on
    parent: "Variant | None" = None  # a composition's: the variant of all its steps but the last

    @property
    def name(self) -> str:
        return f"{self.trained.name}/{self.method.id}"

    @property
    def runtime(self):
        """The runtime that runs this module as it is (eager PyTorch)."""
        from compression_bench.benchmarks.runtimes import get_runtime
        return get_runtime("eager")

    @property
    def artifact_digest(self) -> str:
        """What its measurements are keyed on: the content digest of the exported variant."""
        return self.digest

    def load(self, threads: int):
        """A callable from a batch to logits: the module itself, run by its runtime (threads are set
        by the caller's ``runtime.threads``, as for every runtime)."""
        return self.runtime.prepare(self.model, None)


def context_for(trained: TrainedModel, log: Log | None = None,
                progress: zoo.training.Progress | None = None) -> CompressionContext:
    data = trained.data

    def calibration():
        for i, (x, _) in enumerate(data.train.batches(CALIBRATION_BATCH_SIZE)):
            if i >= CALIBRATION_BATCHES:
                break
            yield x

    def finetune(model: nn.Module, epochs: int, lr_scale: float, on_epoch_start=None,
                 recalibrate_bn: bool = False, stop_when=None) -> None:
        # on the session's training device (trained.device)
        trained.finetune(model, epochs, lr_scale, on_epoch_start=on_epoch_start, progress=progress,
                         tag=f"{trained.name} fine-tune", recalibrate_bn=recalibrate_bn, stop_when=stop_when)

    def validate(model: nn.Module) -> float:
        return zoo.evaluate(model, data.val)

    return CompressionContext(example_inputs=data.train.first_batch(EXAMPLE_BATCH),
                              calibration=calibration, finetune=finetune,
                              num_classes=data.num_classes, profile=trained.profile.name, log=log,
                              validate=validate)


@functools.lru_cache(maxsize=None)  # once per process: the code that runs is the code imported at start
def compression_code_fingerprint(method_id: str) -> str:
    """The code that builds and reloads this method's variants: the shared compression modules and
    the modules its method classes are defined in, so adding or changing one method rebuilds only
    its own variants (not the measurement code: see :func:`measure_code_fingerprint`)."""
    from compression_bench.compression import (api, compose, context, float_request, pruning, quant, serialize, specs,
                                               weight_request)
    spec = compression.get_method(method_id)
    modules = {sys.modules[c.__module__] for s in (spec.steps or (spec,)) for c in type(s.impl).__mro__
               if c.__module__.startswith("compression_bench.")}
    return code_fingerprint(api, compose, context, float_request, pruning, quant, serialize, specs, weight_request,
                            *sorted(modules, key=lambda m: m.__name__), context_for)


def bound(variant, x: torch.Tensor, threads: int) -> Callable[[], object]:
    """A call without arguments running ``variant`` on ``x`` with ``threads`` threads (the module itself
    on a native runtime, the loaded artifact elsewhere: each variant knows how it is loaded)."""
    return functools.partial(variant.load(threads), x)


def latency_batch(trained: zoo.TrainedModel, batch_size: int) -> torch.Tensor:
    """A fixed batch of real validation images, the same for every variant of a model."""
    x = trained.data.val.first_batch(batch_size)
    if x.shape[0] < batch_size:  # a validation split smaller than the batch: repeat it
        x = x.repeat(math.ceil(batch_size / x.shape[0]), 1, 1, 1)[:batch_size]
    return x.contiguous()


@functools.lru_cache(maxsize=None)
def measure_code_fingerprint() -> str:
    """The code every cached metric comes from."""
    return code_fingerprint(compression.measure, measure, zoo.training.predict, zoo.training.top1)


def variant_parts(trained: TrainedModel, spec: MethodSpec, parent: "Variant | None" = None) -> dict:
    """Everything that determines a variant: the trained model (its key and the digest of its weights,
    so a parent that was rebuilt to other weights rebuilds its variants), for a composition the
    digest of the variant its last step starts from, the method settings, the code that compresses
    and the library versions."""
    parts = {"kind": "variant", "trained_key": trained.key, "trained_digest": trained.digest,
             "method": spec.settings(trained.profile.name),
             "calibration": [CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE],
             "train_threads": zoo.training.train_threads(),  # fine-tuning numerics depend on it
             "code": compression_code_fingerprint(spec.id), "versions": package_versions(*COMPRESSION_PACKAGES)}
    if trained.finetune_limit is not None:  # fine-tuning sees this many training images
        parts["finetune_images"] = trained.finetune_limit
    if parent is not None:
        parts["parent_digest"] = parent.digest
    return parts


def measure(variant: nn.Module, spec: MethodSpec, trained: TrainedModel, base: nn.Module | None = None) -> dict:
    """Every metric of a variant except latency (plain Python numbers). ``base``: the float model the
    method was applied to (default: the trained model; a composition's: its parent variant)."""
    example = trained.data.train.first_batch(EXAMPLE_BATCH)
    # MACs are counted on a float graph: the variant itself when it is float (pruned models),
    # the float graph it was quantized from for INT8 variants (same graph, quantized kernels).
    float_graph = (trained.model if base is None else base) if spec.quantized else variant
    macs = compression.count_macs(float_graph, example)
    dw = compression.density_weighted_macs(variant, example) if "unstructured" in spec.kinds else macs
    split = trained.data.report
    predictions = zoo.training.predict(variant, split)
    return {
        "accuracy": zoo.training.top1(predictions, split.labels),
        "accuracy_split": trained.data.report_split,
        "accuracy_images": len(split),
        "predictions": predictions.tolist(),  # for the paired test against the original (benchmarks.measurement.stats)
        "params": int(compression.count_params(variant)),
        "nonzero_params": int(compression.count_nonzero(variant)),
        "sparsity": float(compression.sparsity(variant)),
        "size_mib": float(compression.serialized_size_mib(variant)),
        "zero_aware_size_mib": float(compression.zero_aware_size_mib(variant)),
        "macs": int(macs),
        "density_weighted_macs": int(dw),
        # the fraction of channels structured pruning really removed (rounding to round_to removes more)
        "channels_pruned": (channels_pruned(trained.model, float_graph)
                            if any(map(is_structured, spec.kinds)) else None),
        # accuracy-aware INT8: the layers it kept in float (chosen on the validation split)
        "float_layers": (getattr(variant, "compression_info", None) or {}).get("float_layers"),
    }


def metric_parts(trained: TrainedModel, spec: MethodSpec, digest: str, parent: "Variant | None" = None) -> dict:
    """Everything a variant's metrics depend on: the variant (its content digest), and what it was
    measured on, the trained entry's key (which holds the profile's data, its digest and split sizes)
    and the reported split's name and size. The weights alone are not enough: a ``weights=`` model, its
    dynamic INT8 variant and a pruned variant whose fine-tuning was skipped have the same weights under
    every profile, and their accuracy under one profile is no figure of another's test split."""
    split = trained.data.report
    parts = {"kind": "metrics", "variant_digest": digest, "method": spec.id,
             "trained_key": trained.key, "trained_digest": trained.digest,
             "split": trained.data.report_split, "split_images": len(split),
             "code": measure_code_fingerprint(), "versions": package_versions("torch")}
    if parent is not None:
        parts["parent_digest"] = parent.digest  # MACs of an INT8 composition are counted on the parent
    return parts


def checked_metrics(stored: dict, split) -> dict:
    """A cached metrics entry, if it was measured on ``split`` (one prediction per image); else
    :class:`ValueError`, which makes the cache measure it again."""
    metrics = dict(stored)
    n = len(split)
    if metrics.get("accuracy_images") != n or len(metrics.get("predictions") or ()) != n:
        raise ValueError(f"measured on {metrics.get('accuracy_images')} images, the split has {n}")
    return metrics


def get_variant(trained: TrainedModel, method_id: str, cache: ArtifactCache, *, log: Log | None = None,
                progress: zoo.training.Progress | None = None) -> Variant:
    """The variant of ``trained`` made by ``method_id``, from the cache or built and cached, with its
    metrics. A composition ``a+b`` starts from ``a``'s cached variant, so only ``b`` runs."""
    spec = compression.get_method(method_id)
    ctx = context_for(trained, log, progress)
    name = f"{trained.name}-{spec.id}"
    parent = None
    if spec.steps:
        parent = get_variant(trained, "+".join(s.id for s in spec.steps[:-1]), cache, log=log, progress=progress)

    def build() -> dict:
        t0 = time.perf_counter()
        if log:
            log(f"[{trained.name}/{spec.id}] compressing")
        torch.manual_seed(0)
        model = compression.compress(trained.model, spec.id, ctx, after=None if parent is None else parent.model)
        seconds = time.perf_counter() - t0
        if log:
            log(f"[{trained.name}/{spec.id}] built in {seconds:.1f}s")
        return {"variant": compression.export_variant(model, spec.id), "build_seconds": seconds}

    def load(blob: dict) -> tuple[nn.Module, str, float]:
        # raises ValueError for a variant of another format or method: rebuilt
        model = compression.load_variant(blob["variant"], zoo.build(trained.name), spec.id, ctx)
        return model, content_digest(blob["variant"]), float(blob["build_seconds"])

    (model, digest, seconds), built = cache.get_or_build("variants", name, variant_parts(trained, spec, parent),
                                                         build, load=load)

    def build_metrics() -> dict:
        metrics = measure(model, spec, trained, None if parent is None else parent.model)
        if log:
            log(f"[{trained.name}/{spec.id}] measured: accuracy {metrics['accuracy']:.2f}%")
        return {"metrics": metrics}

    metrics, measured = cache.get_or_build("metrics", name, metric_parts(trained, spec, digest, parent), build_metrics,
                                           load=lambda blob: checked_metrics(blob["metrics"], trained.data.report))
    metrics["build_seconds"] = seconds
    return Variant(trained, spec, model, metrics, not built, measured, digest, parent)
