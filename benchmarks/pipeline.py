"""Glue between the zoo and compression: cached variants and their metrics. No pytest here.

``get_variant(trained, method_id, cache)`` builds (or loads) one compressed variant of a trained
zoo model and measures everything except latency: accuracy on the whole validation split,
stored parameters (packed INT8 included), nonzero parameters, sparsity, serialized and
zero-aware size, MACs. Those figures are computed once and cached with the variant.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

import compression
import zoo
from compression import CompressionContext, MethodSpec
from zoo import ArtifactCache, TrainedModel

CALIBRATION_BATCHES = 8     # static INT8: batches of the training split seen by the observers
CALIBRATION_BATCH_SIZE = 64
EXAMPLE_BATCH = 2           # real images used to trace models (FX, Torch-Pruning, FLOP counter)

Log = Callable[[str], None]


@dataclass
class Variant:
    trained: TrainedModel
    method: MethodSpec
    model: nn.Module
    metrics: dict          # accuracy, params, nonzero_params, sparsity, size_mib, ... build_seconds
    from_cache: bool

    @property
    def name(self) -> str:
        return f"{self.trained.name}/{self.method.id}"


def context_for(trained: TrainedModel, log: Log | None = None,
                progress: zoo.training.Progress | None = None) -> CompressionContext:
    data = trained.data

    def calibration():
        for i, (x, _) in enumerate(data.train.batches(CALIBRATION_BATCH_SIZE)):
            if i >= CALIBRATION_BATCHES:
                break
            yield x

    def finetune(model: nn.Module, epochs: int, lr_scale: float, on_epoch_start=None,
                 recalibrate_bn: bool = False) -> None:
        trained.finetune(model, epochs, lr_scale, on_epoch_start=on_epoch_start, progress=progress,
                         tag=f"{trained.name} fine-tune", recalibrate_bn=recalibrate_bn)

    return CompressionContext(example_inputs=data.train.first_batch(EXAMPLE_BATCH),
                              calibration=calibration, finetune=finetune,
                              num_classes=data.num_classes, profile=trained.profile.name, log=log)


def variant_parts(trained: TrainedModel, spec: MethodSpec) -> dict:
    """Everything that determines a variant: the trained model's key plus the method settings."""
    return {"kind": "variant", "trained_key": trained.key, "method": spec.settings(trained.profile.name),
            "calibration": [CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE],
            "train_threads": zoo.training.train_threads()}  # fine-tuning numerics depend on it


def measure(variant: nn.Module, spec: MethodSpec, trained: TrainedModel) -> dict:
    """Every metric of a variant except latency (plain Python numbers)."""
    example = trained.data.train.first_batch(EXAMPLE_BATCH)
    # MACs are counted on a float graph: the variant itself when it is float (pruned models),
    # the original architecture for INT8 variants (same graph, quantized kernels).
    float_graph = trained.model if spec.family == "quantization" else variant
    macs = compression.count_macs(float_graph, example)
    dw = compression.density_weighted_macs(variant, example) if spec.kind == "unstructured" else macs
    return {
        "accuracy": float(zoo.evaluate(variant, trained.data.val)),
        "params": int(compression.count_params(variant)),
        "nonzero_params": int(compression.count_nonzero(variant)),
        "sparsity": float(compression.sparsity(variant)),
        "size_mib": float(compression.serialized_size_mib(variant)),
        "zero_aware_size_mib": float(compression.zero_aware_size_mib(variant)),
        "macs": int(macs),
        "density_weighted_macs": int(dw),
    }


def get_variant(trained: TrainedModel, method_id: str, cache: ArtifactCache, *, log: Log | None = None,
                progress: zoo.training.Progress | None = None) -> Variant:
    spec = compression.get_method(method_id)
    ctx = context_for(trained, log, progress)

    def build() -> dict:
        t0 = time.perf_counter()
        if log:
            log(f"[{trained.name}/{method_id}] compressing")
        torch.manual_seed(0)
        model = compression.compress(trained.model, method_id, ctx)
        seconds = time.perf_counter() - t0
        metrics = measure(model, spec, trained)
        metrics["build_seconds"] = seconds
        if log:
            log(f"[{trained.name}/{method_id}] built in {seconds:.1f}s, accuracy {metrics['accuracy']:.2f}%")
        return {"variant": compression.export_variant(model, method_id), "metrics": metrics}

    def load(blob: dict) -> tuple[nn.Module, dict]:
        # raises ValueError for a variant of another format or settings version: rebuilt
        model = compression.load_variant(blob["variant"], zoo.build(trained.name), method_id, ctx)
        return model, dict(blob["metrics"])

    (model, metrics), built = cache.get_or_build("variants", f"{trained.name}-{method_id}",
                                                 variant_parts(trained, spec), build, load=load)
    return Variant(trained, spec, model, metrics, not built)
