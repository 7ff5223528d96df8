"""What a compression method may use besides the model itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch

#: ``finetune(model, epochs, lr_scale, on_epoch_start=None)``: trains ``model``
#: in place on the training split for ``epochs`` epochs at ``lr_scale`` times
#: the model's own learning rate.  ``on_epoch_start(model, epoch_index)`` is
#: called before each epoch.  With ``recalibrate_bn=True`` (pruning methods) the
#: callable recomputes BatchNorm running statistics with the final weights
#: before returning.  With ``stop_when=fn`` (passed only by methods that stop on
#: recovery, and only when the context has ``validate``) ``fn(model)`` is asked
#: after each epoch and a True ends fine-tuning there.  The callable puts the
#: model in ``train()`` mode and leaves it in ``eval()`` mode.
FineTuneFn = Callable[..., None]


@dataclass
class CompressionContext:
    """Data and callables a method needs.

    ``example_inputs``: one real input batch (CPU) used for tracing (FX,
    Torch-Pruning's dependency graph).  ``calibration()``: yields input batches
    from the training split (static INT8 calibration, QAT observer start
    values).  ``finetune``: see :data:`FineTuneFn`; ``None`` is only allowed for
    methods whose budget under ``profile`` is zero epochs.  ``log`` receives
    short progress messages.  ``validate(model)``: top-1 accuracy in percent on the
    validation split (never the test split); methods that fine-tune only when pruning cost
    accuracy use it, and without it they always fine-tune.
    """

    example_inputs: torch.Tensor
    calibration: Callable[[], Iterable[torch.Tensor]]
    finetune: Optional[FineTuneFn]
    num_classes: int
    profile: str = "default"
    log: Optional[Callable[[str], None]] = None
    validate: Optional[Callable[[torch.nn.Module], float]] = None

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)


def run_finetune(ctx: CompressionContext, spec, model, *, original: Optional[torch.nn.Module] = None,
                 skip_within: Optional[float] = None, stop_within: Optional[float] = None, **kw) -> int:
    """Fine-tune ``model`` for ``spec``'s budget under ``ctx.profile`` (nothing when it is zero);
    returns the epochs budgeted (0 when skipped).

    With ``skip_within`` (points) and ``original``, the compressed model is first scored on the
    validation split: when it is within ``skip_within`` points of ``original`` (or better), fine-tuning
    would buy nothing measurable and is skipped. With ``stop_within``, it is scored after every epoch
    and fine-tuning stops at the first epoch that brings it within ``stop_within`` points.
    """
    budget = spec.budget(ctx.profile)
    if budget.epochs <= 0:
        return 0
    if skip_within is not None and original is not None and ctx.validate is not None:
        before, after = ctx.validate(original), ctx.validate(model)
        if after >= before - skip_within:
            ctx.say(f"[{spec.id}] fine-tuning skipped: validation accuracy {after:.2f}% is within "
                    f"{skip_within:g} pt of the original's {before:.2f}%")
            return 0
        ctx.say(f"[{spec.id}] validation accuracy {after:.2f}% against the original's {before:.2f}%: "
                f"fine-tuning")
    if ctx.finetune is None:
        raise ValueError(
            f"method {spec.id!r} fine-tunes for {budget.epochs} epoch(s) under profile "
            f"{ctx.profile!r} but the context has no finetune callable; pass one"
        )
    if stop_within is not None and original is not None and ctx.validate is not None:
        target = ctx.validate(original) - stop_within
        seen = []

        def recovered(m: torch.nn.Module) -> bool:
            seen.append(ctx.validate(m))
            if seen[-1] >= target:
                ctx.say(f"[{spec.id}] fine-tuning stopped after epoch {len(seen)} of {budget.epochs}: validation "
                        f"accuracy {seen[-1]:.2f}% is within {stop_within:g} pt of the original's "
                        f"{target + stop_within:.2f}%")
                return True
            return False
        kw["stop_when"] = recovered
    ctx.finetune(model, budget.epochs, budget.lr_scale, **kw)
    return budget.epochs
