"""Pretrained weights of a registered model (``register_model(weights=path)``): read, check, load.

Every failure is a :class:`WeightsError` whose message is one sentence naming the file and the fix.
"""
from __future__ import annotations

import hashlib

import torch
import torch.nn as nn

from .images import DataError

_SAVE_HINT = "save it with torch.save(model.state_dict(), path)"


class WeightsError(DataError, ValueError):
    """A registered checkpoint cannot be used; the message names the file and says how to fix it."""


def _unreadable(path: str, model: str, err: OSError) -> WeightsError:
    if isinstance(err, FileNotFoundError):
        return WeightsError(f"checkpoint {path!r} of model {model!r} does not exist; put the file there "
                            f"({_SAVE_HINT}) or fix the weights= path given to register_model")
    reason = err.strerror or type(err).__name__
    return WeightsError(f"checkpoint {path!r} of model {model!r} cannot be read ({reason}); make it a "
                        f"readable file or fix the weights= path given to register_model")


def file_sha256(path: str, model: str) -> str:
    """SHA-256 (hex) of the checkpoint file's bytes: part of the trained model's cache key."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as err:
        raise _unreadable(path, model, err) from None
    return h.hexdigest()


def _shape(t) -> str:
    return "x".join(map(str, t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def load_weights(model: nn.Module, path: str, name: str) -> None:
    """Load the checkpoint at ``path`` into ``model`` (registered as ``name``), strictly: every key
    of the model's ``state_dict``, nothing else, same shapes."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise _unreadable(path, name, err) from None
    except Exception as err:  # noqa: BLE001 - pickle and zip readers fail in many ways on foreign bytes
        raise WeightsError(f"checkpoint {path!r} of model {name!r} is not a torch.save file of tensors "
                           f"({type(err).__name__}); {_SAVE_HINT}") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise WeightsError(f"checkpoint {path!r} of model {name!r} holds a {type(state).__name__}, not a "
                           f"state_dict; {_SAVE_HINT}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and
             (not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)]
    if missing or unexpected or wrong:
        problems = []
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected)):
            if keys:
                more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
                problems.append(f"{what} {', '.join(keys[:3])}{more}")
        if wrong:
            k = wrong[0]
            problems.append(f"{k} is {_shape(state[k])} in the file but {_shape(expected[k])} in the model")
        raise WeightsError(f"checkpoint {path!r} does not fit model {name!r} ({'; '.join(problems)}); "
                           f"save the state_dict of the architecture registered as {name!r}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0][:120]
        raise WeightsError(f"checkpoint {path!r} could not be loaded into model {name!r} ({first}); "
                           f"save the state_dict of the architecture registered as {name!r}") from None
