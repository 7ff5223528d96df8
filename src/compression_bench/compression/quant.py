"""INT8 quantization: every use of ``torch.ao.quantization`` lives here.

torch's eager/FX quantization API is deprecated upstream (it still ships in
the pinned torch and has real x86 INT8 kernels).  Its calls emit deprecation
and observer warnings by the hundred; :func:`_quiet` silences exactly those,
around our own calls only, so the rest of the program's warnings are
untouched.

Three recipes:

* dynamic: ``quantize_dynamic`` on every ``nn.Linear`` (INT8 weights, per
  tensor; activations quantized per batch at run time).
* static: FX graph mode ``prepare_fx`` with the x86 default qconfig mapping
  (per-channel symmetric INT8 weights, histogram-observed activations; Conv+BN
  (+ReLU) fusion happens inside ``prepare_fx``), calibration, ``convert_fx``.
* QAT: FX ``prepare_qat_fx`` with the x86 default QAT mapping, observers
  initialised on calibration batches, fine-tuning with BN statistics and
  observers frozen for the last epochs, ``convert_fx``.

The model is traced in eval mode in both FX recipes.  Python-level
``if self.training`` branches of non-leaf modules are resolved at trace time;
tracing in eval mode bakes in their inference behaviour (e.g. torchvision's
stochastic depth becomes the identity, as it is at inference) instead of
baking a random drop into the converted INT8 model.  Leaf modules (BN, fused
ConvBn, Dropout, fake-quant) still follow ``train()``/``eval()`` during QAT.

Converted models take float input and return float output (FX inserts the
quantize / dequantize nodes).

Its length (about 340 lines) is one concern: every call into torch.ao's FX
quantization (the three recipes, the accuracy-aware search, rebuilding for
loading), kept in one module so that the deprecated API is used nowhere else.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from .int8_request import Int8Request

BACKEND = "x86"

_QUIET_MESSAGES = (
    r"(?s).*torch\.ao\.quantization is deprecated",
    r"(?s).*Please use quant_min and quant_max to specify the range for observers",
    r"(?s).*torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor",
    r"(?s).*must run observer before calling calculate_qparams",
    r"(?s).*TypedStorage is deprecated",
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the quantization API's known deprecation/observer chatter."""
    with warnings.catch_warnings():
        for pattern in _QUIET_MESSAGES:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def _use_backend() -> None:
    engines = torch.backends.quantized.supported_engines
    if BACKEND not in engines:
        raise RuntimeError(
            f"this torch build has no {BACKEND!r} quantized engine (has {engines}); "
            "INT8 methods need a CPU build of torch with x86 quantization kernels"
        )
    if torch.backends.quantized.engine != BACKEND:
        torch.backends.quantized.engine = BACKEND


def _api():
    # imported lazily so that importing `compression` stays cheap and silent
    with _quiet():
        from torch.ao import quantization as tq
        from torch.ao.quantization import quantize_fx
        import torch.ao.nn.intrinsic.qat as nniqat
    return tq, quantize_fx, nniqat


# ---------------------------------------------------------------- dynamic
def quantize_dynamic_int8(model: nn.Module, layers: Iterable[str] = ("linear",)) -> nn.Module:
    """INT8 dynamic quantization of every ``nn.Linear``; returns a new module. ``layers`` are the
    request's layer types (:class:`~compression_bench.compression.int8_request.Int8Request`): torch's
    dynamic INT8 has no convolution kernel, so ``conv`` is refused."""
    if set(layers) != {"linear"}:
        raise ValueError(f"dynamic INT8 (torch.ao) quantizes Linear layers only, not {'+'.join(layers)}")
    _use_backend()
    tq, _, _ = _api()
    with _quiet():
        out = tq.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
    return out.eval()


# ---------------------------------------------------------------- static
#: the layers accuracy-aware INT8 may keep in float (each is one weight-carrying quantized op)
QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def quantizable_layers(model: nn.Module) -> list[str]:
    """Names of the modules static INT8 quantizes and accuracy-aware INT8 may keep in float."""
    return [n for n, m in model.named_modules() if isinstance(m, QUANTIZABLE)]


_TYPES = {"conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d), "linear": (nn.Linear,)}


def _qconfig(per_channel: bool = True):
    """The x86 default static qconfig (per-channel symmetric weights), or its per-tensor form."""
    tq, _, _ = _api()
    with _quiet():
        default = tq.get_default_qconfig(BACKEND)
        return default if per_channel else tq.QConfig(activation=default.activation,
                                                      weight=tq.default_weight_observer)


def _mapping(float_layers: Iterable[str] = (), only: str | None = None, request: Int8Request | None = None):
    """The qconfig mapping a static ``request`` asks for (the x86 default: every conv and linear layer,
    per-channel weights) with ``float_layers`` kept in float, or (``only``) a mapping that quantizes
    that one layer and nothing else."""
    tq, _, _ = _api()
    request = request or Int8Request()
    q = _qconfig(request.per_channel)
    with _quiet():
        if only is not None:
            return tq.QConfigMapping().set_module_name(only, q)
        if set(request.layers) == set(_TYPES):
            mapping = tq.get_default_qconfig_mapping(BACKEND)
            if not request.per_channel:
                mapping.set_global(q)
        else:  # some layer types only: everything else stays float
            mapping = tq.QConfigMapping()
            for kind in request.layers:
                for t in _TYPES[kind]:
                    mapping.set_object_type(t, q)
        for name in float_layers:
            mapping.set_module_name(name, None)
    return mapping


def _prepare_static(model: nn.Module, example_inputs: torch.Tensor, mapping=None) -> nn.Module:
    _use_backend()
    tq, qfx, _ = _api()
    model = copy.deepcopy(model).cpu().eval()
    with _quiet():
        return qfx.prepare_fx(model, mapping if mapping is not None else tq.get_default_qconfig_mapping(BACKEND),
                              (example_inputs.cpu(),))


def _convert(prepared: nn.Module) -> nn.Module:
    _, qfx, _ = _api()
    prepared = prepared.cpu().eval()
    with _quiet():
        return qfx.convert_fx(prepared).eval()


@torch.no_grad()
def _observe(prepared: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    prepared.eval()
    n = 0
    with _quiet():
        for batch in batches:
            prepared(batch.cpu())
            n += 1
    return n


def quantize_static_int8(
    model: nn.Module,
    example_inputs: torch.Tensor,
    calibration: Iterable[torch.Tensor],
    log: Callable[[str], None] = lambda s: None,
    request: Int8Request | None = None,
) -> nn.Module:
    """Post-training static INT8 (FX, x86) as ``request`` asks (default: per-channel weights, every
    conv and linear layer): prepare, calibrate, convert."""
    prepared = _prepare_static(model, example_inputs, _mapping(request=request))
    log("static INT8: calibrating observers")
    n = _observe(prepared, calibration)
    if n == 0:
        raise ValueError("static INT8 needs calibration batches; ctx.calibration() yielded none")
    log(f"static INT8: calibrated on {n} batches, converting")
    return _convert(prepared)


def quantize_static_int8_guarded(
    model: nn.Module,
    example_inputs: torch.Tensor,
    calibration: Callable[[], Iterable[torch.Tensor]],
    validate: Callable[[nn.Module], float],
    max_drop: float,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[nn.Module, dict]:
    """Accuracy-aware static INT8: the plain recipe, and when it loses more than ``max_drop`` points of
    validation accuracy, the layers most sensitive to quantization kept in float until it does not.

    Sensitivity of a layer: the validation accuracy lost when that layer alone is quantized (the rest
    in float), which isolates its own quantization error from the others'. Layers are then kept in
    float one at a time, most sensitive first, until the drop is within ``max_drop`` or no layer whose
    quantization alone costs anything is left. ``calibration()`` yields fresh calibration batches on
    each call. Returns the converted model and what was decided (``float_layers``, ``ranking``,
    ``float_accuracy``, ``int8_accuracy``, ``within``: on validation)."""
    def build(mapping) -> nn.Module:
        prepared = _prepare_static(model, example_inputs, mapping)
        if _observe(prepared, calibration()) == 0:
            raise ValueError("static INT8 needs calibration batches; ctx.calibration() yielded none")
        return _convert(prepared)

    base = validate(model)
    q = build(_mapping())
    acc = validate(q)
    info = {"float_accuracy": base, "int8_accuracy": acc, "float_layers": [], "ranking": [], "max_drop": max_drop}
    log(f"guarded INT8: float {base:.2f}%, all layers INT8 {acc:.2f}% on validation (bound: {max_drop:g} pt)")
    if base - acc <= max_drop:
        info["within"] = True
        return q, info
    layers = quantizable_layers(model)
    costs = []
    for i, name in enumerate(layers):
        costs.append((base - validate(build(_mapping(only=name))), name))
        if (i + 1) % 10 == 0 or i + 1 == len(layers):
            log(f"guarded INT8: sensitivity of {i + 1} of {len(layers)} layers measured")
    ranking = sorted(costs, key=lambda c: -c[0])
    info["ranking"] = [[name, round(cost, 4)] for cost, name in ranking]
    kept: list[str] = []
    for cost, name in ranking:
        if cost <= 0:
            break
        kept.append(name)
        q = build(_mapping(float_layers=kept))
        acc = validate(q)
        log(f"guarded INT8: {len(kept)} layer(s) in float ({name} costs {cost:.2f} pt alone): {acc:.2f}%")
        if base - acc <= max_drop:
            break
    info.update(float_layers=kept, int8_accuracy=acc, within=base - acc <= max_drop)
    return q, info


# ---------------------------------------------------------------- QAT
def _prepare_qat(model: nn.Module, example_inputs: torch.Tensor) -> nn.Module:
    _use_backend()
    tq, qfx, _ = _api()
    model = copy.deepcopy(model).cpu().eval()  # eval-mode trace, see module docstring
    with _quiet():
        prepared = qfx.prepare_qat_fx(
            model, tq.get_default_qat_qconfig_mapping(BACKEND), (example_inputs.cpu(),)
        )
    return prepared.eval()


def qat_freeze_epoch(epochs: int, fraction: float) -> int:
    """First epoch index that runs with BN statistics and observers frozen:
    the last ``max(1, round(epochs * fraction))`` epochs are frozen."""
    frozen = max(1, int(round(epochs * fraction)))
    return max(0, epochs - frozen)


def _freeze_hook(freeze_from: int) -> Callable[[nn.Module, int], None]:
    tq, _, nniqat = _api()

    def on_epoch_start(model: nn.Module, epoch: int) -> None:
        if epoch < freeze_from:
            return
        with _quiet():
            # fused Conv+BN: use running statistics, stop updating them
            model.apply(nniqat.freeze_bn_stats)
            # keep scales / zero points fixed from here on
            model.apply(tq.disable_observer)
            for m in model.modules():
                # stand-alone BN (not fused): stop updating running statistics
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                    m.momentum = 0.0

    return on_epoch_start


def quantize_qat_int8(
    model: nn.Module,
    example_inputs: torch.Tensor,
    calibration: Iterable[torch.Tensor],
    finetune: Callable[..., None],
    epochs: int,
    lr_scale: float,
    freeze_fraction: float,
    log: Callable[[str], None] = lambda s: None,
) -> nn.Module:
    """Quantization-aware training from a trained float model."""
    prepared = _prepare_qat(model, example_inputs)
    # Start the fake-quant observers from real activation ranges instead of
    # from the first training batch (eval mode: BN running stats untouched).
    log("QAT INT8: initialising observers on calibration batches")
    _observe(prepared, calibration)
    freeze_from = qat_freeze_epoch(epochs, freeze_fraction)
    log(f"QAT INT8: fine-tuning {epochs} epochs (BN stats and observers frozen from epoch {freeze_from})")
    with _quiet():
        finetune(prepared, epochs, lr_scale, on_epoch_start=_freeze_hook(freeze_from))
    log("QAT INT8: converting")
    return _convert(prepared)


# ---------------------------------------------------------------- rebuild for loading
def rebuild(request: Int8Request, float_model: nn.Module, example_inputs: torch.Tensor,
            float_layers: Iterable[str] = ()) -> nn.Module:
    """The converted module structure of ``request`` for ``float_model``, with
    placeholder quantization parameters, ready for ``load_state_dict``.

    One forward pass on ``example_inputs`` gives the observers finite ranges so
    that ``convert`` never sees empty observers; every value it produces is
    overwritten by the saved state dict.
    """
    if not request.static:
        return quantize_dynamic_int8(float_model, request.layers)
    if request.training == "qat":
        prepared = _prepare_qat(float_model, example_inputs)
    else:
        prepared = _prepare_static(float_model, example_inputs, _mapping(float_layers, request=request))
    _observe(prepared, [example_inputs])
    return _convert(prepared)


def load_state(model: nn.Module, state: dict) -> nn.Module:
    with _quiet():
        model.load_state_dict(state, strict=True)
    return model.eval()


__all__ = [
    "BACKEND",
    "quantize_dynamic_int8",
    "quantize_static_int8",
    "quantize_static_int8_guarded",
    "quantizable_layers",
    "quantize_qat_int8",
    "qat_freeze_epoch",
    "rebuild",
    "load_state",
]
