"""A user's checkpoint is part of every key derived from it: change the file, and the model and each
of its variants are rebuilt, and nothing of any other model is."""
from __future__ import annotations

import torch
from torch import nn

from compression_bench import zoo
from compression_bench import compression
from compression_bench.benchmarks.variants import cached, runtime_variants


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                         nn.Flatten(), nn.Linear(128, 10))


def test_a_changed_checkpoint_rebuilds_what_depends_on_it_and_nothing_else(tmp_path):
    ckpt = tmp_path / "mine.pt"
    torch.manual_seed(1)
    torch.save(_net().state_dict(), ckpt)
    zoo.register_model("Mine", input_shape=(1, 28, 28), description="from a checkpoint", weights=str(ckpt),
                       recipe=zoo.Recipe(epochs=1, lr=0.05))(_net)
    zoo.register_model("Other", input_shape=(1, 28, 28), description="trained",
                       recipe=zoo.Recipe(epochs=1, lr=0.05))(_net)
    try:
        cache = zoo.ArtifactCache(tmp_path / "cache")
        methods = ("dynamic_int8", "structured_30")

        def everything():
            out = {}
            for name in ("Mine", "Other"):
                tm = zoo.get_trained(name, "smoke", cache=cache, progress=None)
                out[name] = (tm, {m: cached.get_variant(tm, m, cache) for m in methods})
            return out

        first = everything()
        assert torch.equal(first["Mine"][0].model[0].weight, torch.load(ckpt)["0.weight"])  # loaded, not trained
        again = everything()
        assert all(tm.from_cache and all(v.from_cache for v in vs.values()) for tm, vs in again.values())

        torch.manual_seed(2)
        torch.save(_net().state_dict(), ckpt)  # the user retrained their model
        after = everything()
        mine, mine_variants = after["Mine"]
        assert not mine.from_cache and mine.digest != first["Mine"][0].digest
        assert not any(v.from_cache for v in mine_variants.values())       # every dependent rebuilt
        other, other_variants = after["Other"]
        assert other.from_cache and all(v.from_cache for v in other_variants.values())  # nothing else
        assert torch.equal(mine.model[0].weight, torch.load(ckpt)["0.weight"])
    finally:
        zoo.unregister_model("Mine")
        zoo.unregister_model("Other")


def test_a_checkpoint_tried_on_smoke_is_measured_again_on_the_quick_profiles_test_split(tmp_path):
    """A user's ``weights=`` model has the same weights under every profile, and so have its dynamic INT8
    variant and any variant whose fine-tuning was skipped: their metrics must still be measured on the
    split of the profile that asks for them, not read from the other profile's entry."""
    ckpt = tmp_path / "mine.pt"
    torch.manual_seed(1)
    torch.save(_net().state_dict(), ckpt)
    zoo.register_model("Mine", input_shape=(1, 28, 28), description="from a checkpoint", weights=str(ckpt),
                       recipe=zoo.Recipe(epochs=1, lr=0.05))(_net)
    try:
        cache = zoo.ArtifactCache(tmp_path / "cache")
        seen = {}
        for profile in ("smoke", "quick"):
            tm = zoo.get_trained("Mine", profile, cache=cache, progress=None)
            for method in ("original", "dynamic_int8"):
                m = cached.get_variant(tm, method, cache).metrics
                seen[profile, method] = m
                assert m["accuracy_images"] == len(tm.data.report) and m["accuracy_split"] == "test"
                assert len(m["predictions"]) == len(tm.data.report)
            onnx = runtime_variants.get_runtime_variant(cached.get_variant(tm, "original", cache),
                                                        compression.get_method("original"), "onnxruntime", 8, cache)
            assert onnx.metrics["accuracy_images"] == len(onnx.metrics["predictions"]) == len(tm.data.report)
        assert seen["smoke", "original"]["accuracy_images"] == 100
        assert seen["quick", "original"]["accuracy_images"] == 225
    finally:
        zoo.unregister_model("Mine")


def test_metrics_measured_on_another_split_are_measured_again(tmp_path):
    """An entry whose image count is not the split's (written by older code, or under a key that missed
    a change of data) is not believed: it is measured again."""
    from compression_bench.zoo.cache import hash_parts
    torch.manual_seed(1)
    zoo.register_model("Tiny", input_shape=(1, 28, 28), description="x", recipe=zoo.Recipe(epochs=1, lr=0.05))(_net)
    try:
        cache = zoo.ArtifactCache(tmp_path / "cache")
        tm = zoo.get_trained("Tiny", "smoke", cache=cache, progress=None)
        first = cached.get_variant(tm, "original", cache)
        assert first.measured
        parts = cached.metric_parts(tm, compression.get_method("original"), first.digest)
        cache.path("metrics", "Tiny-original", hash_parts(parts)).unlink()
        stale = {**first.metrics, "accuracy_images": 7, "predictions": first.metrics["predictions"][:7]}
        cache.get_or_build("metrics", "Tiny-original", parts, lambda: {"metrics": stale})
        again = cached.get_variant(tm, "original", cache)
        assert again.measured and again.metrics["accuracy_images"] == len(tm.data.report) == 100
        assert cached.get_variant(tm, "original", cache).measured is False  # the new entry is believed
    finally:
        zoo.unregister_model("Tiny")
