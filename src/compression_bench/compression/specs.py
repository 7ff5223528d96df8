"""Methods by id: what each compression method is, and the registry that finds it.

A method *kind* is a subclass of :class:`Method` (how to build, export and reload a variant; its
family, label, fine-tune budget per profile and fixed recipe options), registered with
:func:`register_method`. Every module in :mod:`compression_bench.compression.methods` is imported
on first use, so a new kind is one new file there.

Ids (what ``--compression-methods`` takes):

* a registered id: ``static_int8``; a kind with ``levels`` registers ``<kind>_<percent>`` for each,
  e.g. ``structured_30``;
* a kind at any level: ``structured@0.6``, ``unstructured@0.9`` (a fraction in (0, 1));
* a recipe option changed with ``:<option>=<value>`` after the id, for the options a kind declares
  ``tunable``: ``structured_50:round_to=1`` prunes without rounding channel counts (its own variant,
  cached apart from ``structured_50``);
* a composition with ``+``: ``structured_50+static_int8`` applies the steps left to right, each with
  its own fine-tuning (prune, fine-tune, then quantize the pruned model). Quantization can only be
  the last step: an INT8 module cannot be pruned or quantized again.

:func:`get_method` returns a :class:`MethodSpec`, plain data about one id: its report label and
compression text, fine-tune budget per profile, and ``settings(profile)`` for cache keys.

The types (:class:`Method`, :class:`MethodSpec`, :class:`FineTune`) live in
:mod:`compression_bench.compression.method`, below both this registry and the compositions it
builds (:mod:`compression_bench.compression.compose`).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from ..plugins import Registry, import_submodules
from .compose import compose
from .method import (NO_FINETUNE, PROFILES, FineTune, Method, MethodSpec, UnknownMethodError, UnknownProfileError,
                     budgets, plain)

__all__ = ["FineTune", "Method", "MethodSpec", "NO_FINETUNE", "PROFILES", "UnknownMethodError", "UnknownProfileError",
           "budgets", "get_method", "list_kinds", "list_methods", "other_forms", "percent", "register_composition",
           "register_method", "spec_for"]

# ---------------------------------------------------------------- registry
def _builtin_methods() -> None:
    """Every module of :mod:`compression_bench.compression.methods` (read before the plugins')."""
    import_submodules(f"{__package__}.methods")


_KINDS: Registry[Method] = Registry("method kind", UnknownMethodError, builtins=_builtin_methods)
_IDS: Registry[MethodSpec] = Registry("method id", UnknownMethodError, builtins=_builtin_methods)


def percent(level: float) -> str:
    """``0.3`` -> ``"30"``, ``0.65`` -> ``"65"``."""
    return f"{round(level * 100, 6):g}"


def spec_for(method: Method, level: float | None = None, id: str | None = None) -> MethodSpec:
    """The spec of ``method`` at ``level``."""
    if level is None:
        mid, text = id or method.kind, method.compression
    else:
        mid, text = id or f"{method.kind}@{level:g}", f"{percent(level)}%"
    return MethodSpec(mid, method.family, method.kind, level, method.label, text,
                      finetune=MappingProxyType(dict(method.finetune)),
                      options=MappingProxyType(dict(method.options)), impl=method)


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register a :class:`Method` kind and its default ids."""
    method = cls()
    if not set(method.finetune) >= set(PROFILES):
        raise ValueError(f"method kind {method.kind!r} needs a fine-tune budget for each of {PROFILES}")
    plain(dict(method.options))  # options must be plain data (they are part of cache keys)
    _KINDS.add(method.kind, method)
    if method.levels:
        specs = [spec_for(method, lv, f"{method.kind}_{percent(lv)}") for lv in method.levels]
    else:
        specs = [spec_for(method, None, getattr(cls, "id", None) or method.kind)]
    for s in specs:
        _IDS.add(s.id, s)
    return cls


_COMPOSITIONS: dict[str, tuple[float, bool]] = {}


def register_composition(method_id: str, *, order: float = 90.0, default: bool = True) -> None:
    """List a composition such as ``structured_50+static_int8`` among the registered ids (any
    composition works without this; registering puts it in ``list_methods()``)."""
    _COMPOSITIONS[method_id] = (order, default)


def _ordered(include_optional: bool) -> list[MethodSpec]:
    rows = [(s.impl.order, s.level or 0.0, s) for _, s in _IDS.items() if include_optional or s.impl.default]
    rows += [(order, 0.0, get_method(mid)) for mid, (order, default) in _COMPOSITIONS.items()
             if include_optional or default]
    return [s for _, _, s in sorted(rows, key=lambda r: r[:2])]


def list_methods(include_optional: bool = False) -> list[str]:
    """Method ids in report order: the default matrix, or every registered id."""
    return [s.id for s in _ordered(include_optional)]


def list_kinds() -> list[str]:
    """Kinds that take any level as ``<kind>@<level>``."""
    return [k for k, m in _KINDS.items() if m.levels]


def get_method(method_id: str) -> MethodSpec:
    """The spec for ``method_id`` (see the module docstring for the forms an id takes);
    :class:`UnknownMethodError`, saying what is valid, for anything else."""
    if not isinstance(method_id, str) or not method_id.strip():
        raise UnknownMethodError(f"unknown compression method {method_id!r}; valid ids: {_valid()}")
    method_id = method_id.strip()
    if method_id in _IDS:
        return _IDS.get(method_id)
    if "+" in method_id:
        return compose(method_id, [get_method(part) for part in method_id.split("+")])
    if ":" in method_id:
        return _with_options(method_id)
    kind, at, level_text = method_id.partition("@")
    if at and kind in _KINDS and _KINDS.get(kind).levels:
        try:
            level = float(level_text)
        except ValueError:
            level = float("nan")
        if not 0.0 < level < 1.0:
            raise UnknownMethodError(f"method {method_id!r}: the level after '@' must be a fraction between 0 "
                                     f"and 1 (exclusive), e.g. {kind}@0.6")
        return spec_for(_KINDS.get(kind), level, method_id)
    raise UnknownMethodError(f"unknown compression method {method_id!r}; valid ids: {_valid()}")


def _with_options(method_id: str) -> MethodSpec:
    """``<id>:<option>=<value>[:...]``: the spec of ``<id>`` with those recipe options changed."""
    base_id, *parts = method_id.split(":")
    base = get_method(base_id)
    if base.steps or base.impl is None:
        raise UnknownMethodError(f"method {method_id!r}: options follow a single method's id, e.g. structured_50:round_to=8")
    tunable = dict(base.impl.tunable)
    options = dict(base.options)
    for part in parts:
        key, eq, value = part.partition("=")
        if key not in tunable:
            raise UnknownMethodError(f"method {method_id!r}: {base.kind!r} has no option {key!r} to set in its id; "
                                     f"it has {', '.join(tunable) or 'none'}")
        lo, hi = tunable[key]
        kind = float if isinstance(lo, float) else int  # a float range takes any number in it
        try:
            number = kind(value)
        except ValueError:
            number = None
        if not eq or number is None or not lo <= number <= hi:
            what = "a number" if kind is float else "an integer"
            raise UnknownMethodError(f"method {method_id!r}: {key} takes {what} from {lo:g} to {hi:g}, e.g. "
                                     f"{key}={hi:g}")
        options[key] = number
    changed = ", ".join(f"{k}={options[k]}" for k in dict.fromkeys(p.partition("=")[0] for p in parts))
    return replace(base, id=method_id, compression=f"{base.compression} ({changed})",
                   options=MappingProxyType(options))


def other_forms() -> str:
    """What is valid besides the default matrix's ids, in words (for error messages)."""
    optional = [m for m in list_methods(include_optional=True) if m not in list_methods()]
    return (f"opt-in: {', '.join(optional) or 'none'}; any level as <kind>@<fraction> for kinds "
            f"{', '.join(list_kinds())}; recipe options as <id>:<option>=<value>, e.g. structured_50:round_to=1; "
            f"compositions as a+b, e.g. structured_50+static_int8")


def _valid() -> str:
    return ", ".join(list_methods()) + "; " + other_forms()
