"""Peak resident memory of loading and running one variant once, each in a child process of its own: the
orchestration (what the child loads, through which runtime, cached how); the measuring itself is
:func:`benchmarks.measurement.peakmem.peak_of_call`, below the runtimes. No pytest.

A process's resident memory only ever shows its high-water mark (``ru_maxrss``), and freed tensors stay
with the allocator, so a figure taken inside the benchmark process would carry every variant measured
before it. Here each measurement is a fresh Python process (:func:`benchmarks.measurement.child.run_child`):

1. it imports torch, the suite and the runtime's own libraries (ONNX Runtime, torchao for Inductor) and
   reads the input batch: its resident size then is the **baseline**, and its high-water mark is reset
   to it (``/proc/self/clear_refs``; where that is not possible the high-water mark so far is the baseline);
2. it loads the variant (the eager module from a pickle the parent wrote, or the runtime's artifact from
   its bytes) and runs it once on the batch, with the test's thread count: its high-water mark then is
   the **peak**. The eager module is the one the suite times, pickled with :class:`_Pickler`, which
   writes torch.ao's quantized modules as their own ``__deepcopy__`` copies them (torch.save alone
   writes them so that they do not load back: every FX INT8 graph); ``form`` in the cached figures
   says which form the child loaded. (Such graphs travelled as TorchScript traces before; TorchScript
   is deprecated, and the trace was not the module the suite times.)

``peak_mib`` is that peak (the whole process), ``peak_increase_mib`` the peak over the baseline: what
loading and running this variant cost, comparable between variants and runs. Results are cached with
the variant (keyed by its content, runtime, batch size, threads and this code), so warm runs measure
nothing. A child that fails (a user's model whose class the child cannot import, say) gives no figure
and one line saying why, never a failed test.

:func:`measure_many` runs several children at once (one per usable core, at most
:data:`MAX_WORKERS`): the session does so for every variant it built, before anything is timed. A
child's figures are its own process's, so children side by side measure what one alone would; a
child's time is mostly the import of torch and the runtimes, which side by side takes half as long on
two cores.
"""
from __future__ import annotations

import functools
import importlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compression_bench.benchmarks.measurement import peakmem
from compression_bench.benchmarks.runtimes import get_runtime
from compression_bench.benchmarks.measurement.child import run_child

CHILD_TIMEOUT_S = 300
MAX_WORKERS = 4  # children at once in measure_many: each holds torch and one variant in memory
_PREPARE = threading.Lock()  # one thread at a time pickles a module for its child


@functools.lru_cache(maxsize=None)
def code_fingerprint_() -> str:
    from compression_bench.zoo.keys import code_fingerprint
    return code_fingerprint(sys.modules[__name__], peakmem)


def _versions(runtime) -> dict[str, str]:
    """What the peak depends on besides the variant: torch (every child imports it, and it runs the
    eager and Inductor variants) and the runtime's own versions (ONNX Runtime's allocator, torchao's
    kernels, the INT8 format), so a library upgrade measures anew."""
    from compression_bench.zoo.keys import package_versions
    return {**package_versions("torch"), **runtime.versions()}


def measure(variant, runtime, x, threads: int, cache, *, say=None) -> dict:
    """``{"peak_mib", "peak_increase_mib"}`` of ``variant`` (a ``cached.Variant`` on eager, a
    ``runtime_variants.RuntimeVariant`` elsewhere) run by ``runtime`` on batch ``x``, from the cache or
    measured in a child process; empty when the child could not measure it."""
    return _measure(variant, runtime, x, threads, cache, say=say)[0]


def workers() -> int:
    """Children :func:`measure_many` runs at once: the cores this process may use, at most :data:`MAX_WORKERS`."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        usable = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, usable))


def measure_many(jobs, cache, *, say=None, on_error=None) -> int:
    """Measure every ``(variant, runtime, x, threads)`` of ``jobs`` as :func:`measure` does, :func:`workers`
    children at a time, into the cache. A job that raises (a cache fault, a module that does not
    pickle) is passed to ``on_error(job, err)`` when given, else raised after the others have finished.
    Returns how many children ran (the figures found in the cache need none)."""
    def one(job):
        try:
            return _measure(*job, cache, say=say)[1]
        except Exception as err:  # noqa: BLE001 - reported per job below
            if on_error is None:
                raise
            on_error(job, err)
            return False

    with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="peakmem") as pool:
        return sum(bool(built) for built in pool.map(one, list(jobs)))


def _measure(variant, runtime, x, threads: int, cache, *, say=None) -> tuple[dict, bool]:
    """:func:`measure`'s figures, and whether a child measured them (False: from the cache, or failed)."""
    native = runtime.native  # the child runs the module itself, not an artifact of the runtime's
    digest = variant.artifact_digest
    parts = {"kind": "peak-memory", "runtime": runtime.name, "variant": digest, "batch": list(x.shape),
             "threads": threads, "code": code_fingerprint_(), "versions": _versions(runtime)}
    name = f"{variant.trained.name}-{variant.method.id}-{runtime.name}-bs{x.shape[0]}-t{threads}"

    def build() -> dict:
        with _PREPARE:
            form, blob = _prepared(variant, native, x)
        return {"figures": _in_child(form, blob, runtime.name, x, threads)}

    try:
        entry, built = cache.get_or_build("peak-memory", name, parts, build)
    except _ChildFailed as err:
        if say:
            say(f"[{variant.trained.name}/{variant.method.id}@{runtime.name}] peak memory not measured: {err}")
        return {}, False
    return dict(entry["figures"]), built


def _prepared(variant, native: bool, x) -> tuple[str, bytes]:
    """What the child loads: ``(form, bytes)``, see :func:`_in_child`."""
    if not native:
        return "artifact", variant.artifact
    return "pickle", _pickled(variant.model)


class _ChildFailed(RuntimeError):
    pass


def _rebuilt(cls, state):
    """A module of ``cls`` from its ``__getstate__`` ``state``, made as the class's ``__deepcopy__`` makes
    one (see :class:`_Pickler`)."""
    import torch
    module = cls.__new__(cls)
    torch.nn.Module.__init__(module)
    module.__setstate__(state)
    return module


class _Pickler(pickle.Pickler):
    """A pickler for modules whose class replaces both ``__getstate__`` and ``__setstate__`` of
    ``nn.Module`` without a ``__reduce__`` of its own. torch.ao's quantized modules (``Conv2d``,
    ``ConvReLU2d``, ...) keep a tuple for TorchScript there, and their ``__setstate__`` sets attributes
    on a module that ``nn.Module.__init__`` never ran on: pickled as they are, they load without
    ``_modules`` ("'ConvReLU2d' object has no attribute '_modules'" when an FX graph is rebuilt).
    Here they are rebuilt as their ``__deepcopy__`` does: ``nn.Module.__init__``, then ``__setstate__``."""

    def reducer_override(self, obj):
        import torch
        cls, base = type(obj), torch.nn.Module
        if (isinstance(obj, base) and cls.__getstate__ is not base.__getstate__
                and cls.__setstate__ is not base.__setstate__ and cls.__reduce_ex__ is base.__reduce_ex__
                and cls.__reduce__ is base.__reduce__):
            return _rebuilt, (cls, obj.__getstate__())
        return NotImplemented


#: :class:`_Pickler` as the pickle module of ``torch.save(..., pickle_module=...)`` (which subclasses its
#: ``Pickler``); the child loads with plain ``torch.load``: the rebuilding is written into the file
_PICKLE = types.ModuleType(f"{__name__}.pickle")
_PICKLE.Pickler = _Pickler


def _pickled(model) -> bytes:
    """``model`` pickled (``torch.save`` with :class:`_Pickler`) as the child will load it, loaded back
    here first, so that a module that does not load fails here and not in a child that started for
    seconds; :class:`_ChildFailed` (no figure, a line saying why) when it does not."""
    import torch
    buffer = io.BytesIO()
    try:
        torch.save(model, buffer, pickle_module=_PICKLE)
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    except Exception as err:  # noqa: BLE001 - a user's module that does not pickle: no figure, one line why
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise _ChildFailed(f"the module does not pickle ({type(err).__name__}: {first})") from None
    return buffer.getvalue()


FILES = {"pickle": "model.pt", "artifact": "artifact.bin"}


def _in_child(form: str, blob: bytes, runtime: str, x, threads: int) -> dict:
    """Measure in a child process; ``form``: what ``blob`` holds (``pickle``: the eager module itself;
    ``artifact``: a runtime's artifact bytes)."""
    import torch
    with tempfile.TemporaryDirectory(prefix="peakmem-") as tmp:
        d = Path(tmp)
        torch.save(x, d / "input.pt")
        (d / FILES[form]).write_bytes(blob)
        spec = {"runtime": runtime, "threads": threads, "dir": tmp, "form": form}
        (d / "spec.json").write_text(json.dumps(spec))
        try:
            done = run_child(f"{__name__}:_child", str(d / "spec.json"), timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise _ChildFailed(f"the child process took more than {CHILD_TIMEOUT_S} s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise _ChildFailed(f"the child process failed ({last})")
    return json.loads(lines[-1])


def _child(spec_path: str) -> None:
    import torch
    spec = json.loads(Path(spec_path).read_text())
    d = Path(spec["dir"])
    rt = get_runtime(spec["runtime"])
    for module in rt.requires:  # the runtime's libraries belong to the baseline, not to the variant
        importlib.import_module(module)
    if rt.name == "inductor":
        importlib.import_module("torch._inductor.package")
    x = torch.load(d / "input.pt", weights_only=True)
    torch.set_num_threads(spec["threads"])
    path = d / FILES[spec["form"]]

    def load():
        if spec["form"] == "pickle":
            return rt.prepare(torch.load(path, weights_only=False), x)  # written by our parent a moment ago
        return rt.load(path.read_bytes(), spec["threads"])
    print(json.dumps({**peakmem.peak_of_call(load, x), "form": spec["form"]}))
