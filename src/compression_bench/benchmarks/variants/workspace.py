"""A session's workspace: the trained models, compressed variants, runtime artifacts and peak-memory
measurements its tests use, each built on first use through the cache and then kept. No pytest.

A model or variant that cannot be built is kept as its :class:`VariantFailure`, raised again each time
it is asked for (one failure, one message, the other models go on); bad input (a dataset that is not
there) and a cache fault stop the session: :class:`SessionError` with exit status 4 or 7.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from compression_bench import zoo
from compression_bench.benchmarks.variants import memory
from compression_bench.benchmarks.variants import cached, runtime_variants
from compression_bench.benchmarks.settings.config import Config
from compression_bench.benchmarks.errors import EXIT_FAULT, EXIT_USAGE, SessionError, VariantFailure


class Workspace:
    """What ``config`` selects, built and memoised; ``say`` receives progress lines."""

    def __init__(self, config: Config, say: Callable[[str], None]):
        self.config, self.say = config, say
        self._trained: dict[tuple[str, int], zoo.TrainedModel | VariantFailure] = {}
        self._variants: dict[tuple[str, str, int], cached.Variant | VariantFailure] = {}
        self._artifacts = runtime_variants.Artifacts(self.variant, config.cache, say=lambda m: self.say("  " + m),
                                                     progress=self._progress)

    def check_data(self) -> None:
        """Fail now when a selected model's dataset (mnist, cifar10) is not there or is unreadable,
        rather than at its first test, after the models before it have trained. Loading is cheap next
        to training, and ``zoo.get_data`` keeps what it loaded for the session."""
        c = self.config
        for name in c.models:
            if c.profile.dataset_for(name) == "digits":
                continue
            try:
                zoo.get_data(name, c.profile, data_root=c.data_root, download=c.download)
            except zoo.DataError as err:
                raise SessionError(str(err)) from None

    def _progress(self, r: zoo.EpochReport) -> None:
        acc = "" if r.val_accuracy is None else f", val {r.val_accuracy:.2f}%"
        self.say(f"  [{r.tag}] epoch {r.epoch}/{r.epochs}, loss {r.loss:.4f}{acc}, {r.seconds:.1f}s")

    def trained(self, name: str, seed: int = 0) -> zoo.TrainedModel:
        """The trained model (its seed ``seed``), from the cache (trained on first use)."""
        key, tag = (name, seed), name + (f"/seed{seed}" if seed else "")
        known = self._trained.get(key)
        if isinstance(known, VariantFailure):
            raise known
        if known is None:
            c, t0 = self.config, time.perf_counter()
            try:
                known = zoo.get_trained(name, c.profile, cache=c.cache, data_root=c.data_root, download=c.download,
                                        device=c.train_device, progress=self._progress,
                                        log=lambda m: self.say("  " + m), seed=seed)
            except zoo.DataError as err:
                raise SessionError(str(err), EXIT_USAGE) from None
            except zoo.CacheError as err:
                raise SessionError(str(err), EXIT_FAULT) from None
            except Exception as err:  # noqa: BLE001 - the user's model: one model's failure must not stop the others
                failure = self._trained[key] = VariantFailure(f"the original of {tag} could not be trained or loaded: ",
                                                              err)
                raise failure from err
            if not known.from_cache:
                how = f"loaded {known.meta['weights']} and evaluated" if known.meta.get("weights") else "trained"
                self.say(f"  [{tag}] {how} in {time.perf_counter() - t0:.1f}s, validation accuracy "
                         f"{known.accuracy:.2f}%")
            self._trained[key] = known
        return known

    def variant(self, name: str, method: str, seed: int = 0) -> cached.Variant:
        """The compressed variant (of the model's seed ``seed``), from the cache (built on first use)."""
        key = (name, method, seed)
        known = self._variants.get(key)
        if isinstance(known, VariantFailure):
            raise known
        if known is None:
            trained = self.trained(name, seed)
            try:
                known = cached.get_variant(trained, method, self.config.cache, log=lambda m: self.say("  " + m),
                                             progress=self._progress)
            except zoo.CacheError as err:
                raise SessionError(str(err), EXIT_FAULT) from None
            except Exception as err:  # noqa: BLE001 - a method that cannot handle this model: its row says why
                failure = self._variants[key] = VariantFailure("", err)
                self.say(f"  [{name}/{method}] {failure.status}")
                raise failure from err
            self._variants[key] = known
        return known

    def on_runtime(self, name: str, method: str, runtime: str, batch_size: int, seed: int = 0):
        """The variant as ``runtime`` runs it: the eager :class:`cached.Variant`, or a
        :class:`runtime_variants.RuntimeVariant` (its artifact built on first use, then cached).
        :class:`runtime_variants.RuntimeUnsupported` when the runtime cannot express the method."""
        return self._artifacts.get(name, method, runtime, batch_size, seed)

    def peak_memory(self, variant, runtime, x: torch.Tensor, threads: int) -> dict:
        """Peak resident memory of loading and running the variant once (:mod:`benchmarks.variants.memory`); {} when off."""
        if not self.config.measure_memory:
            return {}
        return memory.measure(variant, runtime, x, threads, self.config.cache, say=lambda m: self.say("  " + m))

    def peak_memory_many(self, jobs) -> None:
        """:meth:`peak_memory` of every ``(variant, runtime, x, threads)`` of ``jobs`` into the cache, several
        children at a time (:func:`benchmarks.variants.memory.measure_many`), so that the tests find
        them there. A job that fails here is left to its test, which measures it again and says why."""
        jobs = list(jobs)
        if not self.config.measure_memory or not jobs:
            return
        t0 = time.perf_counter()

        def left(job, err: Exception) -> None:
            variant, runtime = job[0], job[1]
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            self.say(f"  [{variant.trained.name}/{variant.method.id}@{runtime.name}] peak memory left to its "
                     f"test ({first[:200]})")

        made = memory.measure_many(jobs, self.config.cache, say=lambda m: self.say("  " + m), on_error=left)
        if made:
            self.say(f"peak memory: {made} variant(s) measured in child processes, {memory.workers()} at a time "
                     f"({time.perf_counter() - t0:.0f} s)")
