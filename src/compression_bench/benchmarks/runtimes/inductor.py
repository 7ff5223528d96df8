"""``inductor``: the variant compiled ahead of time by AOTInductor into a ``.pt2`` package.

The artifact is a shared library plus the weights, for one batch size (``source.example``'s): the
model is exported with ``torch.export`` (strict), compiled with freezing on (constant folding and
weight prepacking, which INT8 convolutions need) under ``torch.no_grad()``, and loaded with
``torch._inductor.aoti_load_package``, which runs the compiled code without compiling anything.
Kernels are generated with ``cpp.dynamic_threads`` so that they follow ``torch.set_num_threads`` at
run time instead of the thread count of the compiling process.

INT8 uses torchao's PT2E flow with ``X86InductorQuantizer``: static (per-channel symmetric weights,
activations calibrated on ``source.calibration()``), QAT (``prepare_qat_pt2e``, observers initialised
on the calibration batches, ``source.finetune`` with observers and BatchNorm statistics frozen for the
last epochs like the eager QAT row) and dynamic (``nn.Linear`` only, like the eager dynamic row).

Isolation: importing torchao's x86 quantizer sets ``torch._inductor.config.pre_grad_custom_pass`` and
registers INT8 fusion passes and lowerings in Inductor for the rest of the process. So every compile
runs in a fresh Python process (:func:`_compile_in_child`), which receives an exported program and
imports the quantizer only for INT8. QAT must fine-tune in this process (``source.finetune`` is a
closure over the training data); it runs with ``torch._inductor.config`` restored afterwards
(:func:`_inductor_config_restored`); the pattern registrations stay, but nothing in this process
is compiled by this runtime, so its artifacts never depend on what ran before.

A compile child that runs past its timeout (:func:`compile_timeout`: 20 minutes, more for a graph of
over 600 nodes, or ``$COMPRESSION_BENCH_COMPILE_TIMEOUT_S``) is killed with the processes it started,
and the variant fails with ``TimeoutError`` in its row, as a model the runtime cannot compile does; the
session goes on. Compiles take 13 to 40 s on two cores for the default profile's models.

Half precision (``bf16``, ``fp16``): the cast variant compiled as it is, its bfloat16 or float16
weights frozen into the package; ``torch.export`` traces the variant's cast of the float32 input and
of the logits (hooks on its root module), so the package takes and returns float32 like every other.

Weight-only INT8 (``weight_only_int8``): the torchao module of the eager row exported as it is
(``torch.export`` traces torchao's ``Int8Tensor`` weights into their INT8 data and scales: no
``unwrap_tensor_subclass`` needed) and compiled with freezing *off* (:data:`WEIGHT_ONLY_OPTIONS`):
freezing constant-folds each weight's conversion to float32, so the package would store and run
float32 weights (ViTTiny before its convolutional stem: 576,640 bytes of float32 constants, no INT8
one); without it the package keeps the INT8 weights (131,712 bytes, 35,968 of float32 for scales,
biases and norms) and its kernels convert them at each call.

Layers an accuracy-aware INT8 method keeps in float get a ``None`` configuration by module name
(``set_module_name_qconfig``). Its length (about 390 lines) is the runtime and its compile child
together: export, the PT2E recipes (QAT with its fine-tuning), the child process and the loaded package.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from compression_bench.benchmarks.measurement.child import run_child

from compression_bench.compression.int8_request import int8_request, undeclared
from compression_bench.compression.weight_request import torchao_missing, weight_only_request

from . import Prepared, Source, register_runtime, torch_threads

#: Inductor settings of every compile (the child process sets nothing else, but a weight-only compile's
#: :data:`WEIGHT_ONLY_OPTIONS`). Without the profilers' line tables (on by default) a package is 1.1-1.3
#: MiB smaller and runs the same code.
COMPILE_OPTIONS = {"freezing": True, "cpp.dynamic_threads": True, "aot_inductor.enable_line_tables": False}
#: what a weight-only INT8 compile changes: freezing would fold the INT8 weights into float32 constants
WEIGHT_ONLY_OPTIONS = {"freezing": False}
_MODULE = __name__
#: a compile child's time limit: at least this many seconds (compiles take 13 to 40 s on two cores, so
#: this allows a slower machine and a larger model many times over) ...
COMPILE_TIMEOUT_S = 20 * 60
#: ... and this many per node of the exported graph, for graphs larger than the zoo's
COMPILE_S_PER_NODE = 2
#: the environment variable that sets the limit instead (seconds; 0 or ``none``: no limit)
TIMEOUT_VARIABLE = "COMPRESSION_BENCH_COMPILE_TIMEOUT_S"


def compile_timeout(nodes: int) -> float | None:
    """Seconds a compile child of a graph of ``nodes`` nodes may run before it is killed (None: no
    limit): ``$COMPRESSION_BENCH_COMPILE_TIMEOUT_S`` when set, else :data:`COMPILE_TIMEOUT_S` or
    :data:`COMPILE_S_PER_NODE` per node, whichever is longer. Without a limit a compile that hangs
    hangs the session with it."""
    given = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not given:
        return max(COMPILE_TIMEOUT_S, COMPILE_S_PER_NODE * nodes)
    if given.lower() in ("none", "off"):
        return None
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # a word, a negative number, NaN
        raise ValueError(f"{TIMEOUT_VARIABLE} takes seconds (0 or none: no limit); got {given!r}")
    return seconds or None


def _pt2e():
    """torchao's PT2E entry points. Importing the x86 quantizer changes Inductor's global state:
    call this only in a compile child or under :func:`_inductor_config_restored`."""
    from torchao.quantization.pt2e import disable_observer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    return dict(prepare=prepare_pt2e, prepare_qat=prepare_qat_pt2e, convert=convert_pt2e,
                quantizer=x86.X86InductorQuantizer, config=x86.get_default_x86_inductor_quantization_config,
                disable_observer=disable_observer)


@contextlib.contextmanager
def _inductor_config_restored() -> Iterator[None]:
    """``torch._inductor.config`` as it was before the body, every key (callables included)."""
    import torch._inductor.config as config
    before = config.get_config_copy()
    try:
        yield
    finally:
        after = config.get_config_copy()
        config.load_config({k: v for k, v in before.items() if after[k] is not v and after[k] != v})


def _export(model: nn.Module, example: torch.Tensor, dynamic_batch: bool = False) -> torch.export.ExportedProgram:
    """Strict export (non-strict export breaks X86InductorQuantizer on torchvision's ResNet, whose
    bottleneck calls one ReLU module three times). ``dynamic_batch`` for a graph that is quantized
    before being exported again at the timed batch size: calibration and fine-tuning batches differ
    in size (the example must have a batch of 2 or more; the graph then runs any batch size)."""
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    return torch.export.export(model, (example,), dynamic_shapes=shapes, strict=True)


def _quantize(program: torch.export.ExportedProgram, kind: str, batches: list[torch.Tensor],
              example: torch.Tensor, keep_float: list[str] = ()) -> torch.export.ExportedProgram:
    """Static or dynamic PT2E INT8 of ``program`` (exported with a dynamic batch), observed on
    ``batches``, exported again at ``example``'s shape; the modules ``keep_float`` stay float."""
    api = _pt2e()
    quantizer = api["quantizer"]()
    if kind == "static":
        quantizer.set_global(api["config"]())
    else:  # dynamic: Linear only, activations quantized per batch at run time
        quantizer.set_module_type_qconfig(nn.Linear, api["config"](is_dynamic=True))
    for name in keep_float:
        quantizer.set_module_name_qconfig(name, None)
    prepared = api["prepare"](program.module(), quantizer)
    with torch.no_grad():
        for batch in batches:
            prepared(batch)
    return _export(api["convert"](prepared), example)


_BATCH_NORM = torch.ops.aten.batch_norm.default   # args: x, w, b, mean, var, training, momentum, eps, cudnn
_DROPOUT = torch.ops.aten.dropout.default         # args: x, p, train


def _set_arg(node: torch.fx.Node, index: int, value) -> bool:
    if node.args[index] == value and type(node.args[index]) is type(value):
        return False
    node.args = (*node.args[:index], value, *node.args[index + 1:])
    return True


def _restore_batch_norm_literals(prepared: torch.fx.GraphModule, float_model: nn.Module) -> None:
    """torchao's QAT Conv+BN rewrite writes eps 1e-5 and momentum 0.1 into the graph whatever the
    module had (torchvision's MobileNetV3 has 1e-3 and 0.01); put back each BatchNorm's own."""
    for node in prepared.graph.nodes:
        mean, var = (node.args[3], node.args[4]) if node.target is _BATCH_NORM else (None, None)
        if getattr(mean, "op", None) != "get_attr":
            continue
        try:
            bn = float_model.get_submodule(mean.target.rpartition(".")[0])
        except AttributeError:  # not a module's statistics: leave the node as it is
            continue
        if bn.momentum is not None:
            _set_arg(node, 6, float(bn.momentum))
        _set_arg(node, 7, float(bn.eps))
        for user in list(var.users):  # the rewrite's running_std = sqrt(running_var + eps)
            if user.target is torch.ops.aten.add.Tensor and user.args[0] is var and type(user.args[1]) is float:
                _set_arg(user, 1, float(bn.eps))
    prepared.recompile()


class _QatModes:
    """``train()``/``eval()`` of an exported QAT graph, as ``source.finetune`` and ``evaluate`` call
    them: the ``training`` flag of every dropout and BatchNorm node is switched in place (torchao's
    ``move_exported_model_to_train`` rewrites them from templates with p=0.5, eps=1e-5,
    momentum=0.1). After :meth:`freeze`, BatchNorm stays on its running statistics (neither taken
    from the batch nor updated) and observers are off: the PT2E form of eager QAT's frozen epochs."""

    def __init__(self, model: torch.fx.GraphModule, disable_observer):
        self.model, self.disable_observer, self.frozen = model, disable_observer, False
        model.train = self.train
        model.eval = lambda: self.train(False)

    def train(self, mode: bool = True) -> torch.fx.GraphModule:
        nn.Module.train(self.model, mode)  # the flags (evaluate() restores model.training)
        changed = False
        for node in self.model.graph.nodes:
            if node.target is _BATCH_NORM:
                changed |= _set_arg(node, 5, mode and not self.frozen)
            elif node.target is _DROPOUT:
                changed |= _set_arg(node, 2, mode)
        if changed:
            self.model.recompile()
        return self.model

    def freeze(self) -> None:
        self.frozen = True
        self.model.apply(self.disable_observer)
        self.train(self.model.training)


def _qat_program(source: Source, batches: list[torch.Tensor], example: torch.Tensor) -> torch.export.ExportedProgram:
    """QAT in this process (``source.finetune`` cannot move to another one), the converted model
    exported at the timed batch size; Inductor's config is restored afterwards."""
    from compression_bench.compression.methods.int8 import QatInt8
    from compression_bench.compression.quant import qat_freeze_epoch
    model = copy.deepcopy(source.float_model).cpu().eval()  # fine-tuning must not touch the source
    with _inductor_config_restored():
        api = _pt2e()
        quantizer = api["quantizer"]().set_global(api["config"](is_qat=True))
        prepared = api["prepare_qat"](_export(model, max(batches, key=len), dynamic_batch=True).module(), quantizer)
        _restore_batch_norm_literals(prepared, model)
        modes = _QatModes(prepared, api["disable_observer"])
        prepared.eval()
        source.say("QAT INT8 (PT2E): initialising observers on calibration batches")
        with torch.no_grad():
            for batch in batches:
                prepared(batch)
        freeze_from = qat_freeze_epoch(source.epochs, float(QatInt8.options["freeze_last_epochs_fraction"]))

        def on_epoch_start(_model: nn.Module, epoch: int) -> None:
            if epoch >= freeze_from and not modes.frozen:
                modes.freeze()

        source.say(f"QAT INT8 (PT2E): fine-tuning {source.epochs} epochs (frozen from epoch {freeze_from})")
        source.finetune(prepared, source.epochs, source.lr_scale, on_epoch_start=on_epoch_start)
        prepared.cpu().eval()
        return _export(api["convert"](prepared), example)


def _compile_in_child(folder: Path, kind: str | None, log, keep_float: tuple[str, ...] = (),
                      timeout: float | None = None, options: dict | None = None) -> Path:
    """Run :func:`_child` on ``folder`` in a fresh interpreter; the package it wrote. ``options``:
    Inductor settings that replace those of :data:`COMPILE_OPTIONS`. Past ``timeout`` seconds the
    child and the processes it started are killed: :class:`TimeoutError`."""
    (folder / "job.json").write_text(json.dumps({"kind": kind, "keep_float": list(keep_float),
                                                 "options": dict(options or {})}))
    try:
        done = run_child(f"{_MODULE}:_child", str(folder), timeout=timeout, group=True)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"inductor: the compile process ran past {timeout:g} s and was stopped (set "
                           f"{TIMEOUT_VARIABLE} to more seconds, or 0 for no limit)") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"inductor: the compile process failed (exit {done.returncode}):\n{tail}")
    for line in done.stdout.splitlines():
        log(line)
    return folder / "model.pt2"


def _child(folder: str) -> None:
    """The compile process: load the exported program, quantize it (static/dynamic INT8), compile."""
    folder = Path(folder)
    job = json.loads((folder / "job.json").read_text())
    kind = job["kind"]
    example = torch.load(folder / "example.pt")
    if kind is not None:
        _pt2e()  # INT8: torchao's lowerings and fusion passes must be registered before compiling
    program = torch.export.load(folder / "program.pt2")
    if kind in ("static", "dynamic"):
        batches = torch.load(folder / "batches.pt")
        program = _quantize(program, kind, batches, example, job.get("keep_float") or [])
        kept = len(job.get("keep_float") or [])
        print(f"{kind} INT8 (PT2E): observed {len(batches)} batches, converted"
              + (f", {kept} layer(s) kept float" if kept else ""))
    # the compiled code does not check its input (AOTI_RUNTIME_CHECK_INPUTS unset): _Loaded does
    options = {**COMPILE_OPTIONS, **job.get("options", {}), "aot_inductor.metadata": {"input": _signature(example)}}
    with torch.no_grad():  # freezing only runs with gradients off
        torch._inductor.aoti_compile_and_package(program, package_path=str(folder / "model.pt2"),
                                                 inductor_configs=options)
    print("AOTInductor: compiled")


def _signature(x: torch.Tensor) -> str:
    return f"{tuple(x.shape)} {x.dtype}"


class _Loaded:
    """A loaded package, callable on a batch of the shape it was compiled for (another shape would
    run out of bounds, unchecked); holds the folder the package lies in."""

    def __init__(self, artifact: bytes):
        self._folder = tempfile.TemporaryDirectory(prefix="cb-inductor-")
        path = Path(self._folder.name) / "model.pt2"
        path.write_bytes(artifact)
        self._model = torch._inductor.aoti_load_package(str(path))
        self.input = self._model.get_metadata().get("input")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.input is not None and _signature(x) != self.input:
            raise ValueError(f"this inductor artifact was compiled for input {self.input}, got {_signature(x)}")
        with torch.inference_mode():
            return self._model(x)


class Inductor:
    name = "inductor"
    description = "AOTInductor package (torch.export, ahead-of-time compiled, freezing; INT8: torchao PT2E x86)"
    requires = ("torchao",)
    install = "pip install torchao"
    batch_specific = True
    native = False

    def versions(self) -> dict[str, str]:
        """torch, torchao, and the CPU's vector ISA: the compiled code is built for it (AVX512 code
        would not run on an AVX2 machine sharing the cache)."""
        from compression_bench.zoo.keys import package_versions
        return {**package_versions("torch", "torchao"), "cpu_capability": torch.backends.cpu.get_cpu_capability()}

    def unsupported(self, method) -> str | None:
        """None: float methods, weight-only INT8 (torchao's module), and INT8 requests
        X86InductorQuantizer expresses: static (per-channel weights, every conv and linear layer,
        layers kept float by module name), QAT, and dynamic (``nn.Linear`` only)."""
        if undeclared(method):
            return undeclared(method)
        if weight_only_request(method) is not None:
            return torchao_missing()
        r = int8_request(method)
        if r is None:
            return None
        if not r.per_channel:
            return "X86InductorQuantizer has per-channel weights only (no per-tensor configuration)"
        if r.static and set(r.layers) != {"conv", "linear"}:
            return f"X86InductorQuantizer's static configuration quantizes conv and linear layers, not {'+'.join(r.layers)} only"
        if not r.static and set(r.layers) != {"linear"}:
            return "no dynamic INT8 convolution in X86InductorQuantizer (dynamic INT8 of Linear only)"
        if r.training == "qat" and r.keep_float != "none":
            return "layers kept in float are not combined with QAT here"
        return None

    def build(self, source: Source) -> bytes:
        r = source.request
        reason = None if r is None else self.unsupported(source.method)
        if reason:
            raise ValueError(f"inductor cannot build {source.method.id!r}: {reason}")
        kind = None if r is None else ("qat" if r.training == "qat" else r.activations)
        if kind == "qat" and (source.finetune is None or source.epochs <= 0):
            raise ValueError(f"QAT INT8 on inductor needs source.finetune and epochs > 0 "
                             f"(got {source.finetune!r}, {source.epochs})")
        modules = dict(source.float_model.named_modules())
        missing = [name for name in source.keep_float if name not in modules]
        if missing:  # the quantizer would ignore a name that matches nothing: fail instead
            raise ValueError(f"inductor: layer(s) to keep in float not found in the model: {', '.join(missing)}")
        example = source.example.detach().cpu().contiguous()
        weight_only = weight_only_request(source.method)
        options = WEIGHT_ONLY_OPTIONS if weight_only is not None else None
        with tempfile.TemporaryDirectory(prefix="cb-inductor-build-") as tmp:
            folder = Path(tmp)
            torch.save(example, folder / "example.pt")
            if kind is None:
                if source.precision is not None:
                    source.say(f"inductor: {source.precision.describe()} (the cast model compiled)")
                if weight_only is not None:
                    source.say(f"inductor: {weight_only.describe()} (the torchao module compiled, freezing off)")
                program = _export(copy.deepcopy(source.float_model).cpu().eval(), example)
            else:
                batches = [b.detach().cpu() for b in source.calibration()]
                if not batches:
                    raise ValueError("inductor INT8 needs calibration batches; source.calibration() yielded none")
                if kind == "qat":
                    program = _qat_program(source, batches, example)
                else:
                    program = _export(copy.deepcopy(source.float_model).cpu().eval(), max(batches, key=len),
                                      dynamic_batch=True)
                    torch.save(batches if kind == "static" else batches[:1], folder / "batches.pt")
            torch.export.save(program, folder / "program.pt2")
            return _compile_in_child(folder, kind, source.say, tuple(source.keep_float),
                                     timeout=compile_timeout(len(program.graph.nodes)), options=options).read_bytes()

    def load(self, artifact: bytes, threads: int) -> Prepared:
        """The package loaded (no compile); its kernels take torch's thread count at each call."""
        return _Loaded(artifact)

    def threads(self, count: int):
        return torch_threads(count)


INDUCTOR = register_runtime(Inductor())
