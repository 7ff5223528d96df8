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
"""

from __future__ import annotations

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
def prune_structured(
    model: nn.Module,
    level: float,
    example_inputs: torch.Tensor,
    num_classes: int,
    log: Callable[[str], None] = lambda s: None,
    importance=None,
) -> nn.Module:
    """Remove ``level`` of the channels of every prunable layer group (in place), ranked by
    ``importance`` (a Torch-Pruning importance; default: L2 magnitude)."""
    import torch_pruning as tp

    ignored = classifier_layers(model, num_classes)
    was_training = model.training
    model.eval()  # tracing must not update BN statistics
    pruner = tp.pruner.BasePruner(
        model,
        example_inputs,
        importance=importance if importance is not None else tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=float(level),
        global_pruning=False,
        ignored_layers=ignored,
    )
    before = sum(p.numel() for p in model.parameters())
    pruner.step()
    after = sum(p.numel() for p in model.parameters())
    log(f"structured pruning: {before:,} -> {after:,} parameters")
    # Torch-Pruning leaves nothing attached to the model, but drop our reference
    # to the graph explicitly (it holds every module).
    del pruner
    model.train(was_training)
    return model
