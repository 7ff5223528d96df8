"""Method specifications: what each compression method is, by a stable id.

A :class:`MethodSpec` is pure data.  It names the method (``id``), says how it
appears in the report (``label`` and ``compression`` columns), and carries the
fine-tune budget for each profile.  ``spec.settings(profile)`` flattens all of
that into plain JSON-able values so a caller can hash it into a cache key;
bump :data:`SETTINGS_VERSION` whenever the *behaviour* of a method changes
without its settings changing (a bug fix, a different recipe detail), so that
cached variants built by the old code are not reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

#: Bump when any method's behaviour changes in a way its settings do not show.
SETTINGS_VERSION = 2  # 2: LAMP scores for unstructured, BN recalibration after pruning fine-tune

#: Profile names every spec has a fine-tune budget for.
PROFILES = ("smoke", "default", "full")


class UnknownMethodError(ValueError):
    """Raised for a method id that is not registered."""


class UnknownProfileError(ValueError):
    """Raised for a profile name a spec has no budget for."""


@dataclass(frozen=True)
class FineTune:
    """Fine-tuning budget: ``epochs`` over the training split (0 = none) at
    ``lr_scale`` times the model's own training learning rate."""

    epochs: int
    lr_scale: float

    def __post_init__(self) -> None:
        if int(self.epochs) != self.epochs or self.epochs < 0:
            raise ValueError(f"FineTune.epochs must be a non-negative integer, got {self.epochs!r}")
        if not self.lr_scale > 0:
            raise ValueError(f"FineTune.lr_scale must be positive, got {self.lr_scale!r}")

    def to_dict(self) -> dict:
        return {"epochs": int(self.epochs), "lr_scale": float(self.lr_scale)}


NO_FINETUNE = FineTune(0, 1.0)


def _budgets(smoke: FineTune, default: FineTune, full: FineTune) -> Mapping[str, FineTune]:
    return MappingProxyType({"smoke": smoke, "default": default, "full": full})


_NONE = _budgets(NO_FINETUNE, NO_FINETUNE, NO_FINETUNE)


@dataclass(frozen=True)
class MethodSpec:
    """One compression method.

    ``family`` is ``"original"``, ``"quantization"`` or ``"pruning"``; ``kind``
    the variant inside the family (``"dynamic"``, ``"static"``, ``"qat"``,
    ``"unstructured"``, ``"structured"``, ``"none"``); ``level`` the pruning
    ratio (fraction of weights / channels removed) or ``None``.
    ``options`` holds the method's fixed recipe details (backend, importance,
    ...), all plain values, all part of :meth:`settings`.
    """

    id: str
    family: str
    kind: str
    level: float | None
    label: str
    compression: str
    finetune: Mapping[str, FineTune] = field(default_factory=lambda: _NONE, hash=False)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def budget(self, profile: str) -> FineTune:
        """Fine-tune budget for ``profile``."""
        try:
            return self.finetune[profile]
        except KeyError:
            raise UnknownProfileError(
                f"unknown profile {profile!r} for method {self.id!r}; "
                f"valid profiles: {', '.join(self.finetune)}"
            ) from None

    @property
    def needs_finetune(self) -> bool:
        return any(b.epochs > 0 for b in self.finetune.values())

    def settings(self, profile: str) -> dict:
        """Everything that determines the variant built under ``profile``,
        as plain JSON-able values (for cache keys and saved results)."""
        return {
            "settings_version": SETTINGS_VERSION,
            "id": self.id,
            "family": self.family,
            "kind": self.kind,
            "level": None if self.level is None else float(self.level),
            "finetune": self.budget(profile).to_dict(),
            "options": _plain(dict(self.options)),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"method option value {value!r} is not a plain JSON-able value")


def _opts(**kw: Any) -> Mapping[str, Any]:
    return MappingProxyType(kw)


_QUANT_BACKEND = "x86"

_QAT_BUDGET = _budgets(FineTune(1, 0.1), FineTune(3, 0.1), FineTune(5, 0.1))
_UNSTRUCTURED_BUDGET = _budgets(FineTune(1, 0.1), FineTune(3, 0.1), FineTune(5, 0.1))
# Structured pruning removes whole channels: the network needs real retraining, at the full
# learning rate (measured on EfficientNet-B0, default profile, 70%: 3 epochs at x0.3 -> 86.0%,
# 6 at x0.5 -> 94.9%, 6 at x1.0 -> 98.0% against 97.8% for the original).
_STRUCTURED_BUDGET = _budgets(FineTune(1, 0.3), FineTune(6, 1.0), FineTune(10, 1.0))

_SPECS: tuple[MethodSpec, ...] = (
    MethodSpec("original", "original", "none", None, "Original", "N/A"),
    MethodSpec(
        "dynamic_int8", "quantization", "dynamic", None, "Quantization (Dynamic)", "INT8",
        options=_opts(backend=_QUANT_BACKEND, modules=["Linear"], weight_dtype="qint8",
                      weight_qscheme="per_tensor_affine", activations="dynamic (per batch)"),
    ),
    MethodSpec(
        "static_int8", "quantization", "static", None, "Quantization (Static)", "INT8",
        options=_opts(backend=_QUANT_BACKEND, api="fx", qconfig_mapping="default_x86",
                      weight_qscheme="per_channel_symmetric", activation_observer="histogram",
                      calibration="context"),
    ),
    MethodSpec(
        "qat_int8", "quantization", "qat", None, "Quantization (QAT)", "INT8",
        finetune=_QAT_BUDGET,
        options=_opts(backend=_QUANT_BACKEND, api="fx", qconfig_mapping="default_qat_x86",
                      weight_qscheme="per_channel_symmetric", observer_init="calibration",
                      trace_mode="eval",
                      # the last max(1, epochs // 3) epochs run with BN statistics
                      # and observers frozen
                      freeze_last_epochs_fraction=1 / 3),
    ),
)

# the pruning methods: one per kind and level, unstructured first (the order of the tables)
_PRUNING_KINDS = (
    ("unstructured", "Pruning (Unstructured)", _UNSTRUCTURED_BUDGET,
     _opts(scope=["Conv", "Linear"], criterion="lamp_magnitude", scheme="global", masks_during_finetune=True)),
    ("structured", "Pruning (Structured)", _STRUCTURED_BUDGET,
     _opts(library="torch_pruning", pruner="BasePruner (DepGraph)", importance="magnitude_l2",
           global_pruning=False, ignored="classifier Linear(s) with out_features == num_classes")),
)
for _kind, _label, _budget, _options in _PRUNING_KINDS:
    for _level in (0.3, 0.5, 0.7):
        _SPECS += (MethodSpec(f"{_kind}_{round(_level * 100)}", "pruning", _kind, _level, _label,
                              f"{round(_level * 100)}%", finetune=_budget, options=_options),)

_REGISTRY: Mapping[str, MethodSpec] = MappingProxyType({s.id: s for s in _SPECS})


def list_methods() -> list[str]:
    """All method ids, in report order."""
    return list(_REGISTRY)


def get_method(method_id: str) -> MethodSpec:
    """The spec for ``method_id``; :class:`UnknownMethodError` if there is none."""
    try:
        return _REGISTRY[method_id]
    except (KeyError, TypeError):
        raise UnknownMethodError(
            f"unknown compression method {method_id!r}; valid ids: {', '.join(_REGISTRY)}"
        ) from None
