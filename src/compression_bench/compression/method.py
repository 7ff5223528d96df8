"""What a compression method is: the :class:`Method` kind a module registers, the :class:`MethodSpec`
of one id (plain data: label, compression text, fine-tune budget per profile, recipe options), and the
:class:`FineTune` budget. The registry that finds a spec by id is :mod:`compression_bench.compression.specs`;
compositions (:mod:`compression_bench.compression.compose`) build on these types alone, below the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from ..profile_names import PROFILES, UnknownProfileError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .context import CompressionContext

__all__ = ["FineTune", "Method", "MethodSpec", "NO_FINETUNE", "PROFILES", "UnknownMethodError", "UnknownProfileError",
           "budgets", "plain"]


class UnknownMethodError(ValueError):
    """Raised for a method id that is not registered or cannot be parsed."""


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


def budgets(smoke: FineTune = NO_FINETUNE, default: FineTune = NO_FINETUNE,
            full: FineTune = NO_FINETUNE, quick: FineTune | None = None) -> Mapping[str, FineTune]:
    """A fine-tune budget for each profile (``quick``: ``default``'s where not given)."""
    return MappingProxyType({"smoke": smoke, "quick": default if quick is None else quick, "default": default,
                             "full": full})


class Method:
    """One kind of compression. Subclass, set the class attributes, implement :meth:`build`, and
    decorate with :func:`register_method`.

    ``family``: ``"original"``, ``"quantization"`` or ``"pruning"``. ``levels``: for kinds that
    take a level (fraction of weights or channels removed), the levels registered by default as
    ``<kind>_<percent>``; empty for kinds without one. ``default``: whether the registered ids are
    part of the default matrix (``list_methods()``); opt-in kinds are selected by id.
    ``finetune``: the budget per profile. ``options``: the fixed recipe details (plain values,
    part of the cache key). ``order``: position in the report (lower first).
    """

    kind: ClassVar[str]
    family: ClassVar[str]
    label: ClassVar[str]
    compression: ClassVar[str] = "N/A"     # the table's Compression text for kinds without a level
    levels: ClassVar[tuple[float, ...]] = ()
    default: ClassVar[bool] = True
    order: ClassVar[float] = 100.0
    finetune: ClassVar[Mapping[str, FineTune]] = budgets()
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: options a user may change in the id (``<id>:<option>=<value>``), each with its valid range (integers;
    #: a range given in floats takes any number)
    tunable: ClassVar[Mapping[str, tuple[int, int]]] = MappingProxyType({})

    def build(self, spec: "MethodSpec", model: "nn.Module", ctx: "CompressionContext") -> "nn.Module":
        """A compressed copy of ``model`` (which must not be modified)."""
        raise NotImplementedError

    def export(self, spec: "MethodSpec", variant: "nn.Module") -> dict:
        """The variant as plain data; the default: its state dict and, for float variants, the
        architecture (pruning changes layer shapes)."""
        from . import serialize
        blob = {"state_dict": serialize.encode_state_dict(variant.state_dict())}
        if self.family != "quantization":
            blob["architecture"] = serialize.architecture(variant)
        return blob

    def load(self, spec: "MethodSpec", blob: dict, float_model: "nn.Module",
             ctx: "CompressionContext") -> "nn.Module":
        """The exported variant rebuilt on ``float_model`` (a fresh copy of the architecture the
        method was applied to; it may be modified)."""
        from . import serialize
        state = serialize.decode_state_dict(blob["state_dict"])
        serialize.apply_architecture(float_model, blob["architecture"], state)
        float_model.load_state_dict(state, strict=True)
        return float_model


@dataclass(frozen=True)
class MethodSpec:
    """One method id, as plain data. ``kind`` and ``family`` join the steps' with ``+`` for a
    composition; ``level`` is the (first) pruning level or ``None``; ``steps`` holds the specs of
    a composition's steps (empty for a single method)."""

    id: str
    family: str
    kind: str
    level: float | None
    label: str
    compression: str
    finetune: Mapping[str, FineTune] = field(default_factory=budgets, hash=False, compare=False)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False, compare=False)
    impl: Method | None = field(default=None, hash=False, compare=False, repr=False)
    steps: tuple["MethodSpec", ...] = ()

    @property
    def last(self) -> "MethodSpec":
        """The step that makes the variant: a composition's last step, or the method itself."""
        return self.steps[-1] if self.steps else self

    @property
    def quantized(self) -> bool:
        """Whether the variant is an INT8 module (MACs are then counted on the float graph it came from)."""
        return self.last.family == "quantization"

    def declared_request(self, cls: type, what: str):
        """The ``cls`` request (``Int8Request``, ``FloatRequest``, ...) that :attr:`last` declares as its
        class attribute ``request``; a TypeError naming the ``what`` method (``"INT8"``) when it declares none."""
        request = getattr(self.last.impl, "request", None)
        if not isinstance(request, cls):
            raise TypeError(f"{what} method {self.last.id!r} declares no {cls.__name__} (class attribute `request`)")
        return request

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.steps) if self.steps else (self.kind,)

    def budget(self, profile: str) -> FineTune:
        """Fine-tune budget for ``profile`` (a composition: the sum of its steps' epochs)."""
        if profile not in PROFILES or (not self.steps and profile not in self.finetune):
            raise UnknownProfileError(f"unknown profile {profile!r} for method {self.id!r}; "
                                      f"valid profiles: {', '.join(PROFILES)}")
        if self.steps:
            return FineTune(sum(s.budget(profile).epochs for s in self.steps), 1.0)
        return self.finetune[profile]

    def settings(self, profile: str) -> dict:
        """Everything that determines the variant built under ``profile``, as plain JSON-able
        values (for cache keys and saved results)."""
        if self.steps:
            return {"id": self.id, "steps": [s.settings(profile) for s in self.steps]}
        return {"id": self.id, "family": self.family, "kind": self.kind,
                "level": None if self.level is None else float(self.level),
                "finetune": self.budget(profile).to_dict(), "options": plain(dict(self.options))}


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"method option value {value!r} is not a plain JSON-able value")
