"""Variants on a runtime other than eager: each variant's artifact for one runtime (an ONNX file, a
compiled Inductor package), cached like a variant, with the accuracy *of that artifact*. No pytest.

``get_runtime_variant(base, spec, runtime, batch_size, cache)`` returns a :class:`RuntimeVariant`.
Its artifact is built from a float model: a float method's own variant (``base`` is that variant), or
for an INT8 method the float model its quantization starts from (``base`` is the trained original's
variant, or a composition's pruned parent), quantized by the runtime's own toolchain on the same
calibration batches as the eager row (:func:`benchmarks.variants.cached.context_for`). So a runtime's INT8
row never needs the eager torch.ao INT8 module.

Two cache entries, as for variants: the artifact (seconds to minutes: keyed by the float base's
digest, the method's settings, the calibration, the runtime's code and package versions, and the
batch size when the artifact is specialised to it) and its accuracy over the reported split (test, else validation), run
through the loaded artifact (keyed by the artifact's digest and the evaluation code). A warm run
builds neither; ``builds.log`` in the cache lists every entry built.
"""
from __future__ import annotations

import functools
import hashlib
import sys
import time
from dataclasses import dataclass

import torch

from compression_bench import zoo
from compression_bench.benchmarks.variants import cached
from compression_bench.benchmarks import runtimes as runtimes_pkg
from compression_bench.benchmarks.errors import EXIT_FAULT, SessionError, VariantFailure
from compression_bench.benchmarks.runtimes import Prepared, Runtime, Source, get_runtime
from compression_bench.compression import MethodSpec, get_method
from compression_bench.compression.int8_request import int8_request
from compression_bench.zoo import ArtifactCache
from compression_bench.zoo.keys import code_fingerprint, package_versions


class RuntimeUnsupported(Exception):
    """The runtime cannot express the method; the message is the reason (the row reads ``n/a: ...``)."""


@dataclass
class RuntimeVariant:
    """One method's artifact on one runtime, with the figures of the artifact itself.

    ``metrics``: the float base's parameter and MAC counts (an INT8 artifact has the same graph),
    and this artifact's ``accuracy`` (over the reported split, test or validation, through the runtime),
    ``size_mib`` (the artifact's bytes) and ``build_seconds`` (export, quantize, compile)."""
    base: cached.Variant
    method: MethodSpec
    runtime: Runtime
    artifact: bytes
    metrics: dict
    from_cache: bool
    batch_size: int | None

    @property
    def trained(self) -> zoo.TrainedModel:
        return self.base.trained

    @property
    def name(self) -> str:
        return f"{self.trained.name}/{self.method.id}@{self.runtime.name}"

    @property
    def artifact_digest(self) -> str:
        """What its measurements are keyed on: the SHA-256 of the artifact's bytes."""
        return hashlib.sha256(self.artifact).hexdigest()[:20]

    def load(self, threads: int) -> Prepared:
        return self.runtime.load(self.artifact, threads)


def float_base_id(spec: MethodSpec) -> str:
    """The method whose (float) variant an artifact of ``spec`` is built from: ``spec`` itself when
    it is float, else the steps before its INT8 step (``original`` for a plain INT8 method). A
    half-precision method (``bf16``, ``fp16``) counts as float: its cast variant is the base, its values
    exact in float32, and the runtime lowers the precision (``Source.precision``)."""
    if not spec.quantized:
        return spec.id
    return "+".join(s.id for s in spec.steps[:-1]) if spec.steps else "original"


@functools.lru_cache(maxsize=None)
def runtime_code_fingerprint(name: str) -> str:
    """The code that builds one runtime's artifacts: its module, the runtime package and this module."""
    rt = get_runtime(name)
    return code_fingerprint(sys.modules[type(rt).__module__], runtimes_pkg, get_runtime_variant, evaluate_prepared)


@functools.lru_cache(maxsize=None)  # once per process, like the other code fingerprints
def _evaluation_code_fingerprint() -> str:
    return code_fingerprint(evaluate_prepared, zoo.splits, zoo.training.top1)


def evaluate_prepared(run: Prepared, split, batch_size: int, pad: bool) -> torch.Tensor:
    """The top-1 class ``run`` predicts for every image of the split (in the order of its labels), in
    batches of ``batch_size``; with ``pad`` (an artifact specialised to that batch size) a short last
    batch is padded by repeating its images and only its own outputs count."""
    out = []
    for x, _ in split.batches(batch_size):
        n = x.shape[0]
        if pad and n < batch_size:
            x = x.repeat(-(-batch_size // n), 1, 1, 1)[:batch_size]
        out.append(torch.as_tensor(run(x.contiguous()))[:n].argmax(1))
    return torch.cat(out)


def _budget(spec: MethodSpec, profile: str):
    return (spec.steps[-1] if spec.steps else spec).budget(profile)


def artifact_parts(base: cached.Variant, spec: MethodSpec, rt: Runtime, batch_size: int,
                   keep_float: tuple[str, ...] = ()) -> dict:
    """Everything that determines a runtime artifact (its cache key)."""
    trained = base.trained
    parts = {"kind": "runtime", "runtime": rt.name, "method": spec.settings(trained.profile.name),
             "base_digest": base.digest, "trained_digest": trained.digest,
             "code": runtime_code_fingerprint(rt.name), "versions": {**package_versions("torch"), **rt.versions()}}
    if spec.quantized:
        parts["int8"] = {**int8_request(spec).to_dict(), "float_layers": list(keep_float)}
        parts["calibration"] = [cached.CALIBRATION_BATCHES, cached.CALIBRATION_BATCH_SIZE, trained.key]
        if _budget(spec, trained.profile.name).epochs:
            parts["train_threads"] = zoo.training.train_threads()  # fine-tuning numerics depend on it
            if trained.finetune_limit is not None:
                parts["finetune_images"] = trained.finetune_limit
    if rt.batch_specific:
        parts["batch_size"] = batch_size
    return parts


def get_runtime_variant(base: cached.Variant, spec: MethodSpec, runtime: str, batch_size: int,
                        cache: ArtifactCache, *, log: cached.Log | None = None,
                        progress: zoo.training.Progress | None = None,
                        keep_float: tuple[str, ...] = ()) -> RuntimeVariant:
    """``spec``'s artifact on ``runtime`` built from ``base`` (see :func:`float_base_id`), from the
    cache or built and cached, with its accuracy. :class:`RuntimeUnsupported` when the runtime
    cannot express the method. ``keep_float``: the layers an accuracy-aware INT8 method chose to keep
    in float (the eager variant's choice, made on the validation split), which the runtime keeps too."""
    rt = get_runtime(runtime)
    reason = rt.unsupported(spec)
    if reason:
        raise RuntimeUnsupported(reason)
    trained = base.trained
    profile = trained.profile.name
    tag = f"{trained.name}/{spec.id}@{rt.name}"
    name = f"{trained.name}-{spec.id}-{rt.name}" + (f"-bs{batch_size}" if rt.batch_specific else "")
    ctx = cached.context_for(trained, log, progress)

    def build() -> dict:
        if log:
            log(f"[{tag}] building the {rt.name} artifact")
        budget = _budget(spec, profile)
        source = Source(method=spec, float_model=base.model,
                        example=_example(trained, batch_size), calibration=ctx.calibration,
                        finetune=ctx.finetune, epochs=budget.epochs if spec.quantized else 0,
                        lr_scale=budget.lr_scale, log=(lambda m: log(f"[{tag}] {m}")) if log else None,
                        keep_float=tuple(keep_float))
        torch.manual_seed(0)
        t0 = time.perf_counter()
        artifact = rt.build(source)
        seconds = time.perf_counter() - t0
        if log:
            log(f"[{tag}] built in {seconds:.1f}s ({len(artifact) / 2**20:.2f} MiB)")
        return {"artifact": artifact, "build_seconds": seconds}

    blob, built = cache.get_or_build("runtime", name, artifact_parts(base, spec, rt, batch_size, keep_float), build)
    artifact = bytes(blob["artifact"])
    digest = hashlib.sha256(artifact).hexdigest()[:20]

    split = trained.data.report

    def build_metrics() -> dict:
        with rt.threads(1) as n:
            predictions = evaluate_prepared(rt.load(artifact, n), split, batch_size, rt.batch_specific)
        acc = zoo.training.top1(predictions, split.labels)
        if log:
            log(f"[{tag}] measured: accuracy {acc:.2f}%")
        return {"accuracy": acc, "predictions": predictions.tolist()}

    # what it was measured on, as for the eager metrics (cached.metric_parts): the trained entry's key
    # holds the profile's data; the split's name and size are checked again on load
    metric_parts = {"kind": "runtime-metrics", "artifact": digest, "runtime": rt.name, "trained_key": trained.key,
                    "split": trained.data.report_split, "split_images": len(split),
                    "batch_size": batch_size if rt.batch_specific else None,
                    "code": _evaluation_code_fingerprint(), "versions": rt.versions()}

    def load_metrics(blob: dict) -> dict:
        if len(blob["predictions"]) != len(split):
            raise ValueError(f"measured on {len(blob['predictions'])} images, the split has {len(split)}")
        return blob

    measured, _ = cache.get_or_build("runtime-metrics", name, metric_parts, build_metrics, load=load_metrics)
    m = base.metrics
    metrics = {k: m.get(k) for k in ("params", "nonzero_params", "sparsity", "macs", "density_weighted_macs")}
    metrics.update(accuracy=float(measured["accuracy"]), accuracy_split=trained.data.report_split,
                   accuracy_images=len(split), predictions=list(measured["predictions"]),
                   size_mib=len(artifact) / 2**20, zero_aware_size_mib=None, build_seconds=float(blob["build_seconds"]))
    request = int8_request(spec)
    if request is not None and request.keep_float != "none":  # the row says which layers this artifact keeps float
        metrics["float_layers"] = list(keep_float)
    return RuntimeVariant(base, spec, rt, artifact, metrics, not built, batch_size if rt.batch_specific else None)


def _example(trained: zoo.TrainedModel, batch_size: int) -> torch.Tensor:
    return cached.latency_batch(trained, batch_size)  # the batch the artifact is timed on



class Artifacts:
    """A session's runtime variants, each built once: ``get`` returns the eager variant on ``eager``
    (``variant(model, method)``, the session's), else the :class:`RuntimeVariant`; a method the
    runtime cannot express raises :class:`RuntimeUnsupported` every time it is asked for, and one
    whose artifact could not be built raises the same :class:`VariantFailure` every time."""

    def __init__(self, variant, cache: ArtifactCache, *, say=None, progress=None):
        self.variant, self.cache, self.say, self.progress = variant, cache, say, progress
        self.known: dict[tuple, RuntimeVariant | VariantFailure | str] = {}

    def _kept_float(self, name: str, spec: MethodSpec, seed: int) -> tuple[str, ...]:
        """The layers the method's eager variant kept in float, when its request chooses some
        (accuracy-aware INT8: the choice is made once, on the validation split, and every runtime
        lowers it); else none."""
        request = int8_request(spec)
        if request is None or request.keep_float == "none":
            return ()
        info = getattr(self.variant(name, spec.id, seed).model, "compression_info", None) or {}
        return tuple(info.get("float_layers") or ())

    def get(self, name: str, method: str, runtime: str, batch_size: int, seed: int = 0):
        rt = get_runtime(runtime)
        key = (name, method, runtime, batch_size if rt.batch_specific else None, seed)
        if key not in self.known:
            spec = get_method(method)
            reason = rt.unsupported(spec)
            if reason:
                self.known[key] = reason
            elif rt.native:  # the compressed module itself is what runs
                return self.variant(name, method, seed)
            else:
                base = self.variant(name, float_base_id(spec), seed)
                keep_float = self._kept_float(name, spec, seed)
                try:
                    self.known[key] = get_runtime_variant(base, spec, runtime, batch_size, self.cache,
                                                          log=self.say, progress=self.progress,
                                                          keep_float=keep_float)
                except zoo.CacheError as err:
                    raise SessionError(str(err), EXIT_FAULT) from None
                except Exception as err:  # noqa: BLE001 - export or compilation failed for this model: its row says why
                    self.known[key] = VariantFailure("", err)
                    if self.say:
                        self.say(f"[{name}/{method}@{runtime}] {self.known[key].status}")
        known = self.known[key]
        if isinstance(known, str):
            raise RuntimeUnsupported(known)
        if isinstance(known, VariantFailure):
            raise known
        return known
