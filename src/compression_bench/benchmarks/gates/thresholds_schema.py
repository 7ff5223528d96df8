"""The thresholds file's grammar as typed dataclasses, each built by a constructor that validates one TOML table.

Layout of the file (every table optional)::

    [defaults]                                  # every method, every model
    [methods.<method>]                          # one method
    [models.<model>.methods.<method>]           # one method on one model
    [profiles.<profile>.defaults]               # the same three layers, for one profile only
    [profiles.<profile>.methods.<method>]
    [profiles.<profile>.models.<model>.methods.<method>]
    [runtimes.<runtime>.defaults]               # the same three layers, for one runtime only
    [runtimes.<runtime>.methods.<method>]       # (also inside a profile: [profiles.<p>.runtimes.<r>...])
    [runtimes.<runtime>.models.<model>.methods.<method>]
    [classes.<class>.defaults]                  # the same layers, for one CPU capability class only
    [classes.<class>.methods.<method>]          # (src/compression_bench/benchmarks/measurement/machine.py: x86-avx2, x86-avx512-vnni, ...)
    [classes.<class>.runtimes.<runtime>...]     # and one runtime on that class

Parsed, the file is a :class:`ThresholdsFile`: its own :class:`Layer`, one per profile and one per
class; a layer holds its ``defaults``, its ``methods`` and its ``models`` (each a :class:`Gates`,
one per method) and, except inside a runtime, a layer per runtime. How the layers combine, and the
gates derived for ids without a table of their own, are in
src/compression_bench/benchmarks/gates/thresholds.py.

Keys of a table of gates (all optional):
    min_accuracy       floor for the variant's top-1 accuracy, in percent (used for the original)
    max_accuracy_drop  largest drop from the original's accuracy, in points
    min_speedup        original latency / variant latency at the same batch size, both timed in
                       the variant's test (paired, see src/compression_bench/benchmarks/measurement/timing.py)
    max_latency_ratio  variant latency / original latency (a ceiling, e.g. 1.15)
    max_speedup        a ceiling on the speedup: catches timing artifacts where no speedup can exist
                       (a masked dense model runs at the dense model's speed)
    max_size_ratio     variant size / original size (serialized state_dict bytes)
    fail_if_slower     true or false: whether a variant whose speedup interval lies wholly below 1.0x
                       (slower than the float original it replaces), or a composition slower than
                       its pruned parent, fails the run. Such a variant is flagged in its row and
                       listed at the session end either way.
    unsupported        a reason (text): the method is not run on this model and its row reads
                       ``n/a: <reason>``, without failing the run (a method that fails without it
                       reads ``failed: <error>`` and fails its test)

A key set to ``false`` switches that gate off for the layer and those below it (:class:`Gates`
keeps ``False``; ``None`` is a key the table does not set).

An absolute floor (``min_accuracy``) holds for one model on one data set. The shipped file's floors
are tuned to the zoo's models on the zoo's data, so there (``shipped``) each sits in a
``[..models.<model>.methods.<method>]`` table: a model the file does not name, such as a user's own
on the user's data, gets only the relative gates (drops, size, speed). ``min_accuracy = false`` may
still switch floors off anywhere, and a user's own file may set a floor for every model.

Every error is a :class:`ThresholdsError` of one sentence naming the file, the place (the TOML path,
such as ``profiles.smoke.methods.static_int8.min_speedup``) and what to write instead.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Literal, NoReturn

from compression_bench import compression
from compression_bench.benchmarks.measurement import machine

KEYS = {  # the numeric gates and their ranges (0 itself only for the accuracy keys)
    "min_accuracy": (0.0, 100.0),
    "max_accuracy_drop": (0.0, 100.0),
    "min_speedup": (0.0, 1000.0),
    "max_latency_ratio": (0.0, 1000.0),
    "max_speedup": (0.0, 1000.0),
    "max_size_ratio": (0.0, 1000.0),
}
FLAGS = ("fail_if_slower",)  # keys that take true or false
ZERO_ALLOWED = ("min_accuracy", "max_accuracy_drop")
SECTIONS = "defaults, methods, models, profiles, classes, runtimes"

Limit = float | Literal[False] | None  # a number as the file writes it (int or float), False: off, None: not set


class ThresholdsError(ValueError):
    """The thresholds file is unusable; the message names the file, the place and the fix."""


@dataclass(frozen=True)
class Place:
    """Where in which file: the TOML path of a table or key, for error messages."""
    source: str
    path: str = ""

    def __truediv__(self, key: str) -> Place:
        return Place(self.source, f"{self.path}.{key}" if self.path else key)

    def fail(self, what: str) -> NoReturn:
        raise ThresholdsError(f"thresholds file {self.source!r}: {self.path}: {what}.")


@dataclass(frozen=True)
class Names:
    """The names a file may use, in the order its messages list them; None: any name (not checked)."""
    models: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    profiles: tuple[str, ...] | None = None
    runtimes: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None

    @classmethod
    def of(cls, models: Iterable[str], methods: Iterable[str], profiles: Iterable[str],
           runtimes: Iterable[str] | None = None) -> Names:
        """The registered names, and the capability classes of machine.py."""
        return cls(tuple(sorted(set(models))), tuple(sorted(set(methods))), tuple(sorted(set(profiles))),
                   None if runtimes is None else tuple(sorted(set(runtimes))), tuple(machine.CLASSES))


def _number(key: str, value, place: Place) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        place.fail(f"expected a number, got {type(value).__name__} {value!r}")
    lo, hi = KEYS[key]
    if not lo <= value <= hi or (key not in ZERO_ALLOWED and value == 0):
        place.fail(f"{value} is out of range ({lo} to {hi})")
    return value


def _value(key: str, value, place: Place):
    """One key's value, checked; ``False`` (switched off) is valid for every key."""
    if key not in KEYS and key != "unsupported" and key not in FLAGS:
        place.fail(f"unknown threshold; valid keys are {', '.join(KEYS)}, {', '.join(FLAGS)}, unsupported")
    if value is False:
        return False
    if key in FLAGS:
        if value is not True:
            place.fail(f"expected true or false, got {value!r}")
        return True
    if key == "unsupported":
        if not isinstance(value, str) or not value.strip():
            place.fail("expected the reason as text, e.g. unsupported = \"FX cannot trace the model\"")
        return value
    return _number(key, value, place)


@dataclass(frozen=True)
class Gates:
    """One table of gates (``[methods.static_int8]``, ``[defaults]``...): None where the table does not
    set the key, False where it switches the gate off, else the value (see the module docstring)."""
    min_accuracy: Limit = None
    max_accuracy_drop: Limit = None
    min_speedup: Limit = None
    max_latency_ratio: Limit = None
    max_speedup: Limit = None
    max_size_ratio: Limit = None
    fail_if_slower: bool | None = None
    unsupported: str | Literal[False] | None = None

    @classmethod
    def from_table(cls, table, place: Place) -> Gates:
        """The gates of one TOML table, every key checked in the file's order; ``place`` is its path."""
        if not isinstance(table, dict):
            place.fail("expected a table of thresholds")
        return cls(**{key: _value(key, value, place / key) for key, value in table.items()})

    def as_dict(self) -> dict:
        """The keys the table sets, switched off ones (False) included: what a layer overrides."""
        return {f.name: v for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None}


def _methods(table, place: Place, names: Names) -> dict[str, Gates]:
    """``[<place>.<method>]`` tables: a registered method or any id the registry resolves (a level, a composition)."""
    if not isinstance(table, dict):
        place.fail("expected a table of methods")
    out = {}
    for method, gates in table.items():
        if names.methods is not None and method not in names.methods:
            try:
                compression.get_method(method)
            except compression.UnknownMethodError:
                (place / method).fail(f"unknown method; valid methods are {', '.join(names.methods)}, "
                                      f"any <kind>@<level> and compositions a+b")
        out[method] = Gates.from_table(gates, place / method)
    return out


def _models(table, place: Place, names: Names) -> dict[str, dict[str, Gates]]:
    """``[<place>.<model>.methods.<method>]`` tables, by model."""
    if not isinstance(table, dict):
        place.fail("expected a table of models")
    out = {}
    for model, sub in table.items():
        if names.models is not None and model not in names.models:
            (place / model).fail(f"unknown model; valid models are {', '.join(names.models)}")
        if not isinstance(sub, dict) or set(sub) - {"methods"}:
            (place / model).fail("expected only a [..methods.<method>] table")
        out[model] = _methods(sub.get("methods", {}), place / model / "methods", names)
    return out


def _per_model(gates: Gates, place: Place, layer: Place, method: str = "<method>") -> None:
    """Refuse ``gates`` of a shipped file's ``defaults`` or ``methods`` table (at ``place``, in the layer
    at ``layer``) that set an absolute floor: the zoo's floors hold for the zoo's data only."""
    if gates.min_accuracy is not None and gates.min_accuracy is not False:
        model_table = (layer / "models" / "<model>" / "methods" / method).path
        (place / "min_accuracy").fail(f"an absolute floor in the shipped file belongs to one model's data; write it "
                                      f"under [{model_table}] (a model the file does not name gets only relative "
                                      f"gates)")


def _runtimes(table, place: Place, names: Names, floors: bool) -> dict[str, Layer]:
    if not isinstance(table, dict):
        place.fail("expected a table of runtimes, such as [runtimes.onnxruntime.methods.static_int8]")
    out = {}
    for runtime, sub in table.items():
        if names.runtimes is not None and runtime not in names.runtimes:
            (place / runtime).fail(f"unknown runtime; valid runtimes are {', '.join(names.runtimes)}")
        if not isinstance(sub, dict):
            (place / runtime).fail("expected a table")
        out[runtime] = Layer.from_table(sub, place / runtime, names, runtimes=False, floors=floors)
    return out


@dataclass(frozen=True)
class Layer:
    """The gates of one layer: the file's own, one profile's, one class's or one runtime's in any of them."""
    defaults: Gates = Gates()
    methods: dict[str, Gates] = field(default_factory=dict)
    models: dict[str, dict[str, Gates]] = field(default_factory=dict)  # model -> method -> gates
    runtimes: dict[str, Layer] = field(default_factory=dict)  # empty in a runtime's own layer

    @classmethod
    def from_table(cls, table: dict, place: Place, names: Names, *, runtimes: bool = True,
                   skip: tuple[str, ...] = (), floors: bool = True) -> Layer:
        """The layer of one TOML table. ``runtimes``: whether it may hold runtime layers; ``skip``:
        sections the caller parses (the file's profiles and classes); ``floors``: whether its
        ``defaults`` and ``methods`` may set ``min_accuracy`` (not in the shipped file)."""
        parts: dict = {}
        for key, value in table.items():
            here = place / key
            if key == "defaults":
                parts[key] = Gates.from_table(value, here)
                if not floors:
                    _per_model(parts[key], here, place)
            elif key == "methods":
                parts[key] = _methods(value, here, names)
                if not floors:
                    for method, gates in parts[key].items():
                        _per_model(gates, here / method, place, method)
            elif key == "models":
                parts[key] = _models(value, here, names)
            elif key in skip:
                continue
            elif key == "runtimes" and runtimes:
                parts[key] = _runtimes(value, here, names, floors)
            else:
                here.fail(f"unknown section; valid sections are {SECTIONS}")
        return cls(**parts)


EMPTY = Layer()


def _named_layers(table, place: Place, names: Names, valid: tuple[str, ...] | None, noun: str,
                  plural: str, example: str, *, floors: bool) -> dict[str, Layer]:
    """The ``[<place>.<name>...]`` layers of the file's profiles or classes."""
    if not isinstance(table, dict):
        place.fail(f"expected a table of {example}")
    out = {}
    for name, layer in table.items():
        if valid is not None and name not in valid:
            (place / name).fail(f"unknown {noun}; valid {plural} are {', '.join(valid)}")
        if not isinstance(layer, dict):
            (place / name).fail("expected a table")
        out[name] = Layer.from_table(layer, place / name, names, floors=floors)
    return out


@dataclass(frozen=True)
class ThresholdsFile:
    """A whole thresholds file: its own layer (with its runtimes'), one per profile and one per class."""
    base: Layer = EMPTY
    profiles: dict[str, Layer] = field(default_factory=dict)
    classes: dict[str, Layer] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict, source: str = "<dict>", names: Names = Names(), *,
                  shipped: bool = False) -> ThresholdsFile:
        """The file read by tomllib (``source`` names it in errors), every name checked against ``names``;
        ``shipped``: the file shipped with the package, whose absolute floors must each name a model."""
        top = Place(source)
        base = Layer.from_table(data, top, names, skip=("profiles", "classes"), floors=not shipped)
        profiles = _named_layers(data.get("profiles", {}), top / "profiles", names, names.profiles, "profile", "profiles",
                                 "profiles, such as [profiles.smoke.defaults]", floors=not shipped)
        classes = _named_layers(data.get("classes", {}), top / "classes", names, names.classes, "capability class",
                                "classes", "CPU capability classes, such as [classes.x86-avx2.methods.static_int8]",
                                floors=not shipped)
        return cls(base, profiles, classes)
