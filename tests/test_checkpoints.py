"""A user's checkpoint is part of every key derived from it: change the file, and the model and each
of its variants are rebuilt, and nothing of any other model is."""
from __future__ import annotations

import torch
from torch import nn

from compression_bench import zoo
from compression_bench.benchmarks.session import pipeline


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
                out[name] = (tm, {m: pipeline.get_variant(tm, m, cache) for m in methods})
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
