"""compress / export_variant / load_variant: every method behind one interface."""

from __future__ import annotations

import copy

from torch import nn

from . import serialize
from .context import CompressionContext
from .specs import get_method


def compress(model: nn.Module, method_id: str, ctx: CompressionContext, *,
             after: nn.Module | None = None) -> nn.Module:
    """A compressed copy of ``model`` (never modified), in eval mode on the CPU.

    For a composition ``a+b``, ``after`` may give the variant of all steps but the last (``a``'s,
    e.g. from a cache): then only the last step runs, on it."""
    spec = get_method(method_id)
    if after is not None:
        if not spec.steps:
            raise ValueError(f"method {spec.id!r} is not a composition; 'after' is only for a+b")
        out = spec.impl.build(spec, model, ctx, after=after)
    else:
        out = spec.impl.build(spec, model, ctx)
    return out.cpu().eval()


def export_variant(variant: nn.Module, method_id: str) -> dict:
    """The variant as plain data (tensors, numbers, strings, lists, dicts)."""
    spec = get_method(method_id)
    blob = spec.impl.export(spec, variant)
    blob.update({"format": serialize.FORMAT, "method": spec.id})
    return blob


def load_variant(blob: dict, float_model: nn.Module, method_id: str, ctx: CompressionContext) -> nn.Module:
    """Rebuild an exported variant on a freshly built float architecture.

    ``float_model`` is copied, not modified.  Raises ``ValueError`` when the blob
    is not a variant of ``method_id`` in this format (treat as a stale cache entry).
    """
    spec = get_method(method_id)
    if not isinstance(blob, dict) or blob.get("format") != serialize.FORMAT:
        raise ValueError(f"not a compressed variant in format {serialize.FORMAT!r}")
    if blob.get("method") != spec.id:
        raise ValueError(f"variant was exported for method {blob.get('method')!r}, not {spec.id!r}")
    return spec.impl.load(spec, blob, copy.deepcopy(float_model).cpu(), ctx).eval()
