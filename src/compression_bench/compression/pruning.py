"""Pruning: unstructured (``torch.nn.utils.prune``) and structured (Torch-Pruning).

Unstructured: one global threshold over the weights of every convolution and
linear layer (classifier included), so layers lose different fractions but the
model as a whole loses exactly ``level`` of those weights.  The threshold is
applied to layer-adaptive magnitude scores (LAMP, Lee et al., ICLR 2021:
``w_u^2 / sum of w_v^2 over the weights of the same layer at least as large``),
not to raw magnitudes: with raw magnitudes, layers whose weights are small
as a whole are removed entirely.  On EfficientNet-B0 at 70% that happened to
the depthwise convolutions of the 1x1-resolution stages and to the classifier
(99.9% zeros), cutting every path through the network: 22% accuracy after
fine-tuning, against 97.6% with LAMP scores before any fine-tuning.  Within a
layer LAMP keeps the magnitude order, and each layer's largest weight scores 1,
so no layer is emptied below 100% sparsity.
The masks stay attached (prune's reparametrisation ``weight = weight_orig *
weight_mask``) while fine-tuning, so pruned weights stay zero; ``prune.remove``
then makes the zeros permanent and leaves an ordinary dense module.

Structured: Torch-Pruning builds the dependency graph of the model (residual
adds, depthwise/grouped convs, squeeze-excitation scaling, flatten into a
linear head all couple channels) and removes whole channel groups ranked by
their L2 weight magnitude, the same fraction ``level`` in every prunable layer
(local, uniform pruning).  The classifier's outputs are kept: every
``nn.Linear`` whose ``out_features`` equals the number of classes is ignored as
a pruning root (its inputs still shrink with the layer feeding it).  The
result is a physically smaller dense model of the same classes.

The kept channel count of each layer is rounded to the nearest multiple of
``round_to`` (:data:`ROUND_TO` by default; Torch-Pruning's ``round_to``),
because CPU convolution kernels work on channel blocks: ONNX Runtime's NCHWc
path takes blocks of 8 on AVX2 and 16 on AVX-512, and a layer with an odd count
falls back to a slower path (measured: EfficientNet-B0 pruned 30% without
rounding ran 0.27x its float original on ONNX Runtime).  Rounding moves each layer's level by up to
``round_to / 2`` channels; :func:`channels_pruned` gives the fraction actually
removed.  A layer with fewer than ``2 * round_to`` channels is left
whole.

Attention: a module that declares its heads (:func:`attention_modules`: an int ``num_heads`` and
``head_dim`` and a fused ``qkv`` ``nn.Linear`` of ``3 * num_heads * head_dim`` outputs, as
``compression_bench.zoo.vit.Attention``) loses whole heads, never dimensions of a head: Torch-Pruning's
head pruning (``num_heads``, ``prune_num_heads=True``, ``prune_head_dims=False``) removes the
``level`` of its heads (the nearest whole number, at least one head kept) ranked by their mean L2
importance, and the module's ``num_heads`` is set to the count kept. Every other layer (MLP widths,
the embedding width) is pruned as above, rounded to ``round_to``. A model without such modules (the
CNNs) takes exactly the path it took before.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn.utils import prune


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Convolution and linear layers (the weights pruning and sparsity act on)."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))
    ]


def classifier_layers(model: nn.Module, num_classes: int) -> list[nn.Module]:
    """The classifier head(s): every ``nn.Linear`` with ``num_classes`` outputs."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not heads:
        raise ValueError(
            f"found no nn.Linear with out_features == num_classes ({num_classes}) to keep as "
            "the classifier; structured pruning would change the number of outputs"
        )
    return heads


# ---------------------------------------------------------------- unstructured
def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score of every element: its squared magnitude over the sum of the squared
    magnitudes of all elements of the layer that are at least as large."""
    sq = weight.detach().flatten().pow(2)
    ordered, order = torch.sort(sq)
    tail = torch.flip(torch.cumsum(torch.flip(ordered, [0]), 0), [0])
    scores = torch.empty_like(sq)
    scores[order] = ordered / tail.clamp_min(torch.finfo(sq.dtype).tiny)
    return scores.view_as(weight)


def prune_unstructured(model: nn.Module, level: float) -> nn.Module:
    """Attach global masks removing ``level`` of all conv/linear weights (in place),
    lowest LAMP scores first."""
    params = [(m, "weight") for _, m in prunable_layers(model)]
    if not params:
        raise ValueError("model has no Conv or Linear layers to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(level),
                              importance_scores={(m, "weight"): lamp_scores(m.weight) for m, _ in params})
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every prune mask into its weight and drop the reparametrisation."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model


# ---------------------------------------------------------------- structured
def is_structured(kind: str) -> bool:
    """Whether a method kind removes whole channels: ``structured``, ``structured_random`` (not
    ``unstructured``)."""
    return kind == "structured" or kind.startswith("structured_")


#: default multiple of kept channels per layer (see the module doc and docs/methodology.md)
ROUND_TO = 8


def channels_pruned(original: nn.Module, pruned: nn.Module) -> float | None:
    """The fraction of output channels (conv) and features (linear) that ``pruned`` lacks against
    ``original``, over the layers both have (None when they have none in common)."""
    def counts(model):
        return {name: getattr(m, "out_channels", getattr(m, "out_features", 0))
                for name, m in model.named_modules() if hasattr(m, "out_channels") or hasattr(m, "out_features")}
    before, after = counts(original), counts(pruned)
    common = [n for n in before if n in after]
    total = sum(before[n] for n in common)
    return 1.0 - sum(after[n] for n in common) / total if total else None


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that declare attention heads for structured pruning: an int
    ``num_heads`` and ``head_dim`` and a ``qkv`` ``nn.Linear`` with ``3 * num_heads * head_dim`` outputs
    (query, key and value of every head, in that order: ``unflatten(-1, (3, num_heads, head_dim))``)."""
    found = []
    for m in model.modules():
        heads, dim, qkv = getattr(m, "num_heads", None), getattr(m, "head_dim", None), getattr(m, "qkv", None)
        if isinstance(heads, int) and isinstance(dim, int) and isinstance(qkv, nn.Linear):
            if qkv.out_features != 3 * heads * dim:
                raise ValueError(f"{type(m).__name__}: qkv has {qkv.out_features} outputs, not 3 * num_heads * "
                                 f"head_dim = {3 * heads * dim}; its num_heads does not match its weights")
            found.append(m)
    return found


def heads_to_remove(num_heads: int, level: float) -> int:
    """Whole heads structured pruning removes from a module of ``num_heads`` at ``level``: the nearest
    whole number of ``level * num_heads``, at least one head kept."""
    return min(int(math.floor(level * num_heads + 0.5)), num_heads - 1)


def _head_pruning(attention: list[nn.Module], level: float) -> dict:
    """Torch-Pruning's keywords that prune whole heads of ``attention`` (:func:`heads_to_remove` of
    each), never the dimensions of a head."""
    # Torch-Pruning removes ceil(ratio * heads) heads of a module; a ratio half a head below the count
    # wanted gives that count (level 0.3 of 4 heads: 1 head, where ceil(1.2) would remove 2)
    ratios = {a.qkv: max(heads_to_remove(a.num_heads, level) - 0.5, 0.0) / a.num_heads for a in attention}
    return dict(num_heads={a.qkv: a.num_heads for a in attention}, prune_num_heads=True, prune_head_dims=False,
                head_pruning_ratio_dict=ratios)


def _nearest_multiple_pruner():
    import torch_pruning as tp

    class NearestMultiplePruner(tp.pruner.BasePruner):
        """Torch-Pruning's pruner, rounding each layer's kept channels to the *nearest* multiple of
        ``round_to`` (at least one), where Torch-Pruning rounds down: down, 60% of a 16-channel layer
        keeps 6 -> 0 channels (so the layer is not pruned at all) and of a 32-channel one 12 -> 8."""

        def _round_to(self, n_pruned, current_channels, round_to):
            keep = current_channels - n_pruned
            keep = max(round_to, round(keep / round_to) * round_to)
            return max(current_channels - min(keep, current_channels), 0)
    return NearestMultiplePruner


def _NearestMultiplePruner(*args, **kwargs):  # noqa: N802 - built on first use (torch_pruning is imported lazily)
    return _nearest_multiple_pruner()(*args, **kwargs)


def prune_structured(
    model: nn.Module,
    level: float,
    example_inputs: torch.Tensor,
    num_classes: int,
    log: Callable[[str], None] = lambda s: None,
    importance=None,
    round_to: int = 1,
) -> nn.Module:
    """Remove ``level`` of the channels of every prunable layer group (in place), ranked by
    ``importance`` (a Torch-Pruning importance; default: L2 magnitude), keeping a multiple of
    ``round_to`` channels in each layer (1: no rounding)."""
    import torch_pruning as tp

    ignored = classifier_layers(model, num_classes)
    if round_to > 1:  # too narrow to keep a positive multiple: left whole rather than emptied
        ignored += [m for _, m in prunable_layers(model) if m not in ignored
                    and getattr(m, "out_channels", getattr(m, "out_features", 0)) < 2 * round_to]
    attention = attention_modules(model)  # none in a CNN: its pruner is built exactly as before
    heads = _head_pruning(attention, float(level)) if attention else {}
    was_training = model.training
    model.eval()  # tracing must not update BN statistics
    pruner = _NearestMultiplePruner(
        model,
        example_inputs,
        importance=importance if importance is not None else tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=float(level),
        global_pruning=False,
        ignored_layers=ignored,
        round_to=round_to if round_to > 1 else None,
        **heads,
    )
    before = sum(p.numel() for p in model.parameters())
    pruner.step()
    after = sum(p.numel() for p in model.parameters())
    for a in attention:  # the heads Torch-Pruning kept: the module's forward splits qkv by its num_heads
        a.num_heads = pruner.num_heads[a.qkv]
        if a.qkv.out_features != 3 * a.num_heads * a.head_dim:
            raise RuntimeError(f"{type(a).__name__}: after pruning qkv has {a.qkv.out_features} outputs for "
                               f"{a.num_heads} heads of {a.head_dim}; whole heads were not removed")
    log(f"structured pruning: {before:,} -> {after:,} parameters"
        + (f"; heads kept {[a.num_heads for a in attention]}" if attention else ""))
    # Torch-Pruning leaves nothing attached to the model, but drop our reference
    # to the graph explicitly (it holds every module).
    del pruner
    model.train(was_training)
    return model
