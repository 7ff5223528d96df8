"""Gates: accuracy, speed and size thresholds read from a TOML file, layered and derived, and the verdicts.

The file's grammar (its tables, keys and values, and what ``false`` means) is in
src/compression_bench/benchmarks/gates/thresholds_schema.py, which parses it into typed layers;
this module looks gates up in them.

Layers apply in this order, later ones overriding: the file's own, its runtime's, the machine's class,
the class's runtime, the profile's, the profile's runtime. Within a layer a model's table overrides
the method's, which overrides the defaults. What INT8 or pruning buys depends on the CPU's
instruction set (INT8 runs 4-5x faster than float with VNNI, 1.2-1.5x without), so speed floors
that hold on one class only belong under ``[classes.<class>]``.

On a runtime other than eager, ``min_speedup`` comes only from that runtime's layers (a speedup is
against the same runtime's float original, and what INT8 gains depends on the runtime); every other
gate applies on every runtime, and the runtime's layers override it. ``min_speedup = false`` in any
layer switches the floor off, whatever the runtime. A key set to ``false`` switches that gate off
for the layer and those below it. The original has only ``min_accuracy`` (drops and ratios are
against itself).

An absolute floor holds for one model on one data set: the shipped file (:data:`DEFAULT_PATH`) sets
``min_accuracy`` only in model tables, one per zoo model (the parser refuses it elsewhere there), so
a model it does not name, a user's own on the user's data, gets only the relative gates. A user's
own file (``--thresholds``) is the user's data: its floors may apply to every model.

Every gate is asserted in the variant's own test.

Methods without a table of their own get gates derived from the registered ones, layer by layer:

* a level that is not registered (``structured@0.6``) may lose as much accuracy as the next more
  aggressive registered level of its kind (``structured_70``) and must be at least as small and as
  fast as the next milder one (``structured_50``): pruning more can only shrink and speed up. Below
  the mildest registered level there are no size or speed gates, above the harshest no accuracy
  gates. A registered id (``structured_30``) has only the gates written for it;
* a composition (``structured_50+static_int8``) combines its steps' gates: accuracy drops add up,
  size ratios multiply, the largest ``min_speedup`` applies, and a ceiling (``max_speedup``,
  ``max_latency_ratio``) only when every step has one (their product).

A table for the exact id (``[methods."structured_50+static_int8"]``) overrides the derived gates.
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Iterable, Mapping

from compression_bench import compression
from compression_bench.benchmarks.measurement.stats import significance_text
from compression_bench.benchmarks.gates.thresholds_schema import (EMPTY, FLAGS, KEYS, Gates, Layer, Names,
                                                                    ThresholdsError, ThresholdsFile)
from compression_bench.compression.float_request import float_request
from compression_bench.compression.weight_request import weight_only_request
from compression_bench.compression.pruning import is_structured

__all__ = ["DEFAULT_PATH", "FLAGS", "KEYS", "Thresholds", "ThresholdsError", "accuracy_failures", "size_failures",
           "slowdown_flags", "speed_purpose", "speed_verdicts"]

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "thresholds.toml"  # compression_bench/benchmarks/


class Thresholds:
    """A thresholds file parsed (:class:`~.thresholds_schema.ThresholdsFile`) and its gates looked up.
    ``Thresholds(data, source)`` checks the structure and the values of ``data`` (a file read by tomllib)
    but not its names; :meth:`load` checks those too. ``shipped``: ``data`` is the shipped file's, whose
    absolute floors must each sit in a model's table (see the module docstring)."""

    def __init__(self, data: dict, source: str = "<dict>", names: Names = Names(), *, shipped: bool = False):
        self.data = data
        self.source = source
        self.shipped = shipped
        self.runtimes: set[str] | None = None if names.runtimes is None else set(names.runtimes)
        self.file = ThresholdsFile.from_data(data, source, names, shipped=shipped)

    @classmethod
    def load(cls, path: str | Path | None, *, models: Iterable[str], methods: Iterable[str],
             profiles: Iterable[str], runtimes: Iterable[str] | None = None) -> "Thresholds":
        path = Path(path) if path else DEFAULT_PATH
        shipped = path.resolve() == DEFAULT_PATH  # named with --thresholds or not, the zoo's floors stay the zoo's
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as err:
            raise ThresholdsError(f"cannot read thresholds file {str(path)!r} ({err.strerror}); "
                                  f"pass an existing file to --thresholds.") from None
        except UnicodeDecodeError as err:
            raise ThresholdsError(f"thresholds file {str(path)!r} is not UTF-8 text (byte {err.start}); "
                                  f"save it as UTF-8 TOML.") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ThresholdsError(f"thresholds file {str(path)!r} is not valid TOML ({err}); fix the syntax.") from None
        return cls(data, str(path), Names.of(models, methods, profiles, runtimes), shipped=shipped)

    def validate(self, models: Iterable[str], methods: Iterable[str], profiles: Iterable[str]) -> None:
        """Check the names too (registered models, methods and profiles; capability classes; the runtimes
        of :attr:`runtimes` when set): raises :class:`ThresholdsError` naming the first unknown one."""
        names = Names.of(models, methods, profiles, self.runtimes)
        self.file = ThresholdsFile.from_data(self.data, self.source, names, shipped=self.shipped)

    # ------------------------------------------------------------------ lookup
    def layers(self, profile: str, runtime: str = "eager", cpu_class: str | None = None) -> list[tuple[Layer, bool]]:
        """The layers that apply, in order, each with whether its ``min_speedup`` applies on ``runtime``."""
        prof = self.file.profiles.get(profile, EMPTY)
        cls = self.file.classes.get(cpu_class, EMPTY) if cpu_class else EMPTY
        layers = []
        for base in (self.file.base, cls, prof):
            layers.append((base, runtime == "eager"))
            if runtime != "eager":
                layers.append((base.runtimes.get(runtime, EMPTY), True))
        return layers

    def gates(self, model: str, method: str, profile: str, runtime: str = "eager",
              cpu_class: str | None = None) -> dict[str, float]:
        """The thresholds that apply to ``method`` on ``model`` under ``profile``, on ``runtime``, on a
        machine of capability class ``cpu_class`` (None: no class layer applies)."""
        out: dict[str, float] = {}
        for layer, own in self.layers(profile, runtime, cpu_class):
            got = layer.defaults.as_dict()
            got.update(_method_gates(layer.methods, method))
            got.update(_method_gates(layer.models.get(model, {}), method))
            if not own and got.get("min_speedup") is not False:  # the general speedup floors are eager's
                got.pop("min_speedup", None)
            out.update(got)
        out = {k: v for k, v in out.items() if v is not False}
        if method == "original":  # drops and ratios are against the original itself
            out = {k: v for k, v in out.items() if k == "min_accuracy"}
        return out

    def unsupported(self, model: str, method: str, profile: str, runtime: str = "eager",
                    cpu_class: str | None = None) -> str | None:
        """The reason the file gives for not running ``method`` on ``model`` (``unsupported``), or None."""
        return self.gates(model, method, profile, runtime, cpu_class).get("unsupported") or None


ACCURACY_KEYS = ("min_accuracy", "max_accuracy_drop")
CEILING_KEYS = ("max_speedup", "max_latency_ratio")


def _method_gates(table: Mapping[str, Gates], method: str) -> dict:
    """The gates ``table`` (one layer's methods) gives ``method``: its own entry, else derived (see
    the module docstring)."""
    if method in table:
        return table[method].as_dict()
    try:
        spec = compression.get_method(method)
    except compression.UnknownMethodError:
        return {}
    if spec.steps:
        combined = _combined([{k: v for k, v in _method_gates(table, s.id).items() if v is not False}
                              for s in spec.steps])
        # a cast last (half precision may be emulated) or weight-only INT8 last (a size method: dequantizing
        # costs time): slower than the parent is a flag, not a failure
        if float_request(spec) is not None or weight_only_request(spec) is not None:
            for key in ("min_speedup", "max_latency_ratio", "fail_if_slower"):
                combined.pop(key, None)
        return combined
    if spec.level is None or method in compression.list_methods(include_optional=True):
        return {}  # a registered id has only the gates written for it
    levels = sorted((s.level, s.id) for s in map(compression.get_method, compression.list_methods(True))
                    if s.kind == spec.kind and s.level is not None and not s.steps and s.id in table)
    harsher = [table[mid].as_dict() for level, mid in levels if level >= spec.level - 1e-9][:1]
    milder = [table[mid].as_dict() for level, mid in levels if level <= spec.level + 1e-9][-1:]
    out = {k: v for gates in milder for k, v in gates.items() if k not in ACCURACY_KEYS}
    out.update({k: v for gates in harsher for k, v in gates.items() if k in ACCURACY_KEYS})
    if not milder:  # ceilings hold at any level of a kind (e.g. masked weights are never faster)
        out.update({k: v for gates in harsher for k, v in gates.items() if k in CEILING_KEYS})
    return out


def _combined(parts: list[dict]) -> dict:
    out: dict = {}
    drops = [p["max_accuracy_drop"] for p in parts if "max_accuracy_drop" in p]
    if drops:
        out["max_accuracy_drop"] = sum(drops)
    sizes = [p["max_size_ratio"] for p in parts if "max_size_ratio" in p]
    if sizes:
        out["max_size_ratio"] = math.prod(sizes)
    reasons = [p["unsupported"] for p in parts if p.get("unsupported")]
    if reasons:
        out["unsupported"] = reasons[0]
    speedups = [p["min_speedup"] for p in parts if "min_speedup" in p]
    if speedups:
        out["min_speedup"] = max(speedups)
    if all(p.get("fail_if_slower") for p in parts):  # slower is a fault only where every step must gain
        out["fail_if_slower"] = True
    for ceiling in ("max_speedup", "max_latency_ratio"):
        if all(ceiling in p for p in parts):
            out[ceiling] = math.prod(p[ceiling] for p in parts)
    return out


def accuracy_failures(model: str, method: str, accuracy: float, original_accuracy: float,
                      gates: dict[str, float], p_value: float | None = None) -> list[str]:
    """Accuracy gates. ``p_value``: the exact McNemar p-value of the change against the original on
    the same images; a drop gate's message says whether the drop is significant (the gate itself is
    in points, as the thresholds file sets it)."""
    msgs = []
    if "min_accuracy" in gates and accuracy < gates["min_accuracy"]:
        msgs.append(f"{model} / {method}: accuracy {accuracy:.2f}% is below the required "
                    f"{gates['min_accuracy']:.2f}%")
    drop = original_accuracy - accuracy
    if method != "original" and "max_accuracy_drop" in gates and drop > gates["max_accuracy_drop"] + 1e-9:
        msgs.append(f"{model} / {method}: accuracy {accuracy:.2f}% is {drop:.2f} points below the original's "
                    f"{original_accuracy:.2f}%; at most {gates['max_accuracy_drop']:.2f} points are allowed"
                    + ("" if p_value is None else f" (the drop is {significance_text(p_value)})"))
    return msgs


def speed_verdicts(where: str, speedup: float | None, gates: dict[str, float], low: float | None = None,
                   high: float | None = None) -> tuple[list[str], list[str]]:
    """Speed gates judged on the speedup's 95% interval ``low``-``high`` (the estimate alone when there
    is none): (failures, inconclusive). A floor fails only when the whole interval is below it, a
    ceiling only when the whole interval is above it; an estimate on the wrong side of a gate whose
    interval straddles it is inconclusive. Nothing when latency was not measured."""
    fails: list[str] = []
    unsure: list[str] = []
    if speedup is None:
        return fails, unsure
    lo = speedup if low is None else low
    hi = speedup if high is None else high
    ci = "" if low is None or high is None else f" (95% interval {low:.2f}-{high:.2f}x)"

    def floor(value: float, text: str) -> None:
        if hi < value:
            fails.append(f"{where}: {text}")
        elif speedup < value:
            unsure.append(f"inconclusive: {where}: {text}; the interval reaches the floor, time again on a quieter "
                          f"machine")

    if "min_speedup" in gates:
        floor(gates["min_speedup"], f"speedup {speedup:.2f}x{ci} over the original, required at least "
                                    f"{gates['min_speedup']:.2f}x")
    if "max_latency_ratio" in gates:
        floor(1.0 / gates["max_latency_ratio"], f"latency {1.0 / speedup:.2f}x the original's{ci}, allowed at most "
                                                f"{gates['max_latency_ratio']:.2f}x")
    if "max_speedup" in gates:
        text = (f"speedup {speedup:.2f}x{ci} over the original, more than the plausible {gates['max_speedup']:.2f}x "
                f"(a timing artifact?)")
        if lo > gates["max_speedup"]:
            fails.append(f"{where}: {text}")
        elif speedup > gates["max_speedup"]:
            unsure.append(f"inconclusive: {where}: {text}; the interval reaches the ceiling")
    return fails, unsure


def speed_purpose(method: str) -> bool:
    """Whether ``method`` exists to run faster: static or QAT INT8, structured pruning, half precision
    (``bf16``, ``fp16``), a composition. Not unstructured pruning (masked weights run on dense kernels)
    nor dynamic INT8 (on convolutional models it quantizes the classifier only: a size method here)."""
    spec = compression.get_method(method)
    if spec.steps:
        return True
    return ((spec.quantized and spec.kind in ("static", "qat")) or is_structured(spec.kind)
            or float_request(spec) is not None)


def _upper(r) -> float | None:
    return r.speedup_high if r.speedup_high is not None else r.speedup


def slowdown_flags(r, parent=None, cpu_class: str = "unknown") -> list[str]:
    """Why a speed-purpose record (a :class:`benchmarks.results.schema.Record`) is slower than what it replaces:
    its float original (the upper end of its speedup interval below 1.0x), or, for a composition, its
    pruned ``parent`` record (the upper end of its interval below the parent's lower end). Each flag
    names the likely cause. Empty when neither holds."""
    from compression_bench.benchmarks.measurement import machine
    if r.method == "original" or r.speedup is None or not speed_purpose(r.method):
        return []
    spec = compression.get_method(r.method)
    int8 = spec.quantized
    precision = float_request(spec)
    weight_only = weight_only_request(spec) is not None
    # half precision is native or emulated by the CPU's flags, not its class: this machine's (the session's)
    half = machine.precision_note(precision.short.lower(), machine.identify()) if precision else None
    flags = []
    up = _upper(r)
    ci = "" if r.speedup_low is None else f" ({r.speedup_low:.2f}-{r.speedup_high:.2f})"
    if up is not None and up < 1.0:
        if int8:
            cause = (machine.int8_note(cpu_class) or f"on {r.runtime}, this model's INT8 kernels (quantize/dequantize "
                     f"steps, depthwise convolutions) do not beat its float kernels on {cpu_class}")
        elif precision is not None:
            cause = half or (f"on {r.runtime}, this model's {precision.short} kernels (and the casts around them) do "
                             f"not beat its float kernels on {cpu_class}")
        elif weight_only:
            cause = (f"on {r.runtime}, dequantizing the INT8 weights inside each matmul costs more than the smaller "
                     f"weight reads save: weight-only INT8 pays where a model is memory-bound (large Linear layers, "
                     f"small batches)")
        else:
            cause = ("pruned channel counts that are not multiples of the kernels' block (8 on AVX2, 16 on AVX-512) "
                     "miss the fast convolution path; prune with round_to (e.g. structured_50:round_to=8)"
                     if (spec.steps[0] if spec.steps else spec).options.get("round_to", 1) <= 1 else
                     f"{r.runtime} runs this pruned shape no faster than the original")
        flags.append(f"slower than its float original on {r.runtime}: {r.speedup:.2f}x{ci}; likely cause: {cause}")
    if parent is not None and parent.speedup is not None and r.speedup is not None:
        parent_low = parent.speedup_low if parent.speedup_low is not None else parent.speedup
        if up is not None and up < parent_low:
            cause = machine.int8_note(cpu_class) if int8 else half
            if weight_only:
                cause = ("weight-only INT8 dequantizes its weights inside each matmul: it saves memory, not time, "
                         "on a model that is not memory-bound")
            flags.append(f"slower than its parent {parent.method} on {r.runtime}: {r.speedup:.2f}x{ci} against "
                         f"{parent.speedup:.2f}x; likely cause: "
                         + (cause or "the last step's kernels are slower than the parent's on this shape"))
    return flags


def size_failures(where: str, size_ratio: float | None, gates: dict[str, float]) -> list[str]:
    if size_ratio is not None and "max_size_ratio" in gates and size_ratio > gates["max_size_ratio"]:
        return [f"{where}: size {size_ratio:.3f}x the original's, allowed at most {gates['max_size_ratio']:.3f}x"]
    return []
