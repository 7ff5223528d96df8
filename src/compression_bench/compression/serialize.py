"""Plain-data encoding of variants, so ``torch.load(..., weights_only=True)`` works.

Two things cannot go into a weights-only checkpoint as they are:

* quantized tensors (per-tensor or per-channel ``qint8`` / ``quint8``) inside
  quantized modules' state dicts, including the ``(weight, bias)`` tuples of
  packed Linear parameters and ``torch.dtype`` entries.  They are stored as
  their integer representation plus scale(s) / zero point(s) / axis, and
  rebuilt on load.  (torch can pickle quantized tensors itself, but that path
  goes through deprecated typed storages; plain integer tensors keep the file
  format independent of the quantization API.)
* the architecture of a physically pruned model.  Torch-Pruning changes
  parameter shapes and the size attributes of modules (``out_channels``,
  ``in_features``, ``num_features``, ``groups``, ...).  :func:`architecture`
  records every module's plain public attributes; :func:`apply_architecture`
  sets them on a freshly built model and resizes its parameters and buffers to
  the saved shapes before ``load_state_dict``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import torch
from torch import nn

FORMAT = "compression-variant/2"  # 2: methods export themselves; compositions keep their base graph

_QTENSOR = "__qtensor__"
_TUPLE = "__tuple__"
_DTYPE = "__dtype__"

_PLAIN = (type(None), bool, int, float, str)


def _compact(t: torch.Tensor) -> torch.Tensor:
    """A tensor that owns exactly its own storage (torch.save writes whole storages)."""
    t = t.detach()
    if t.layout != torch.strided:
        return t.to_dense()
    if not t.is_contiguous() or t.untyped_storage().nbytes() != t.numel() * t.element_size():
        t = t.contiguous().clone()
    return t


def encode(value: Any) -> Any:
    """Turn a state-dict value into tensors / numbers / strings / lists / dicts."""
    if isinstance(value, torch.Tensor):
        if value.is_quantized:
            qscheme = value.qscheme()
            out = {_QTENSOR: str(value.dtype).replace("torch.", ""),
                   "int_repr": _compact(value.int_repr())}
            if qscheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                out["scale"] = float(value.q_scale())
                out["zero_point"] = int(value.q_zero_point())
            elif qscheme in (torch.per_channel_affine, torch.per_channel_symmetric,
                             torch.per_channel_affine_float_qparams):
                out["scales"] = _compact(value.q_per_channel_scales())
                out["zero_points"] = _compact(value.q_per_channel_zero_points())
                out["axis"] = int(value.q_per_channel_axis())
            else:  # pragma: no cover - no method produces other schemes
                raise TypeError(f"cannot encode quantized tensor with qscheme {qscheme}")
            return out
        return _compact(value)
    if isinstance(value, torch.dtype):
        return {_DTYPE: str(value).replace("torch.", "")}
    if isinstance(value, tuple):
        return {_TUPLE: [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, _PLAIN):
        return value
    raise TypeError(f"cannot encode a {type(value).__name__} into a weights-only variant")


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, Mapping):
        if _QTENSOR in value:
            dtype = getattr(torch, value[_QTENSOR])
            ints = value["int_repr"]
            if "scales" in value:
                q = torch._make_per_channel_quantized_tensor(
                    ints, value["scales"].double(), value["zero_points"].long(), int(value["axis"])
                )
            else:
                q = torch._make_per_tensor_quantized_tensor(
                    ints, float(value["scale"]), int(value["zero_point"])
                )
            if q.dtype != dtype:  # pragma: no cover - int_repr dtype fixes it
                raise ValueError(f"decoded quantized tensor has dtype {q.dtype}, expected {dtype}")
            return q
        if _DTYPE in value:
            return getattr(torch, value[_DTYPE])
        if _TUPLE in value:
            return tuple(decode(v) for v in value[_TUPLE])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def encode_state_dict(state: Mapping[str, Any]) -> dict:
    """A state dict with its per-module version metadata (quantized modules
    read the version to decide how to unpack their saved weights)."""
    meta = getattr(state, "_metadata", None) or {}
    return {
        "tensors": {k: encode(v) for k, v in state.items()},
        "metadata": {str(k): encode(dict(v)) for k, v in meta.items()},
    }


def decode_state_dict(blob: Mapping[str, Any]) -> "OrderedDict[str, Any]":
    """Inverse of :func:`encode_state_dict`: an ``OrderedDict`` with ``_metadata``."""
    state = OrderedDict((k, decode(v)) for k, v in blob["tensors"].items())
    state._metadata = OrderedDict((k, decode(v)) for k, v in blob["metadata"].items())  # type: ignore[attr-defined]
    return state


# ---------------------------------------------------------------- architecture
def _plain_attr(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain_attr(v) for v in value)
    return False


def architecture(model: nn.Module) -> dict:
    """Every module's plain public attributes (sizes, groups, flags), by name."""
    arch = {}
    for name, module in model.named_modules():
        attrs = {
            k: encode(v)
            for k, v in vars(module).items()
            if not k.startswith("_") and k != "training" and _plain_attr(v)
        }
        arch[name] = attrs
    return arch


def apply_architecture(model: nn.Module, arch: Mapping[str, Mapping[str, Any]], state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Make ``model`` (same class structure) take the recorded sizes, in place. A resized tensor starts
    at zeros, never uninitialised memory: a loader may run the model before its state is loaded (INT8's
    rebuild observes one batch), and a tensor no ``reset_parameters`` reaches (a transformer's position
    embedding, a parameter of the root module) would otherwise feed it whatever the memory held, NaN
    included."""
    modules = dict(model.named_modules())
    missing = sorted(set(arch) - set(modules))
    if missing:
        raise ValueError(
            f"saved variant has modules the given float model lacks: {missing[:5]}"
            " (was it exported from a different architecture?)"
        )
    for name, attrs in arch.items():
        module = modules[name]
        for k, v in attrs.items():
            setattr(module, k, decode(v))
    for key, tensor in state.items():
        mod_name, _, attr = key.rpartition(".")
        module = modules.get(mod_name)
        if module is None:
            continue  # load_state_dict(strict=True) reports it
        if attr in module._parameters and module._parameters[attr] is not None:
            old = module._parameters[attr]
            if old.shape != tensor.shape:
                module._parameters[attr] = nn.Parameter(
                    torch.zeros(tensor.shape, dtype=old.dtype), requires_grad=old.requires_grad
                )
        elif attr in module._buffers and module._buffers[attr] is not None:
            old = module._buffers[attr]
            if old.shape != tensor.shape:
                module._buffers[attr] = torch.zeros(tensor.shape, dtype=old.dtype)
    return model
