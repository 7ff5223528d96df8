"""Which machine a run measured: the CPU, the instruction-set features that select kernels, the
capability torch dispatches to, and a short *capability class* that speed expectations are keyed
by. A plain library (no pytest).

Why a class: the same INT8 variant runs 4-5x faster than its float original on an AVX-512 VNNI CPU
and 1.2-1.5x on an AVX2 CPU without VNNI (measured, see docs/guide/cpu.md). INT8 convolutions and matrix
products are multiply-adds of 8-bit values; VNNI (``vpdpbusd``) does them in one instruction with a
32-bit accumulator, AVX2 needs two or three (``vpmaddubsw`` + ``vpmaddwd``). What a variant buys is a
property of the class, not of the code, so every speed gate and every surprise is stated per class.

Classes, from the most capable feature the CPU has (:func:`capability_class`):

==================== =====================================================================
``x86-amx``          AMX tiles with INT8 (Sapphire Rapids and later)
``x86-avx512-vnni``  AVX-512 with VNNI (Cascade Lake, Ice Lake, Zen 4/5)
``x86-avx2-vnni``    AVX2 with AVX-VNNI, no AVX-512 (Alder Lake and later client CPUs)
``x86-avx512``       AVX-512 F/BW/VL without VNNI (Skylake-SP)
``x86-avx2``         AVX2 and FMA, nothing newer (Haswell to Coffee Lake, Zen 1-3)
``x86-baseline``     x86-64 without AVX2
``arm64-i8mm``       ARMv8.6 matrix multiply-accumulate of INT8 (Graviton 3/4, Neoverse V1/N2)
``arm64-dotprod``    ARMv8.2 dot product (Graviton 2, Neoverse N1, Apple M1)
``arm64-neon``       plain Advanced SIMD
==================== =====================================================================

**Half precision.** Independent of the class, :func:`half_precision` says where BF16 and FP16 are
*native*, computed by instructions of their own: BF16 with ``avx512_bf16`` (dot products of bf16
pairs into fp32: Cooper Lake, Zen 4/5) or ``amx_bf16`` (Sapphire Rapids and later) on x86, ``bf16``
(ARMv8.6: Graviton 3/4, Neoverse V1/N2) on arm64; FP16 with ``avx512_fp16`` or ``amx_fp16`` on x86,
``asimdhp`` (ARMv8.2 half-precision arithmetic) on arm64. Elsewhere a BF16 or FP16 model is
*emulated*: each value is widened to fp32 before the arithmetic, so it saves memory but runs no faster
than float, often slower (:func:`precision_note` says so beside a slow row). ``identify()`` records it
as ``half_precision`` (emulated under a cap below the CPU's class: oneDNN's bf16 and fp16 instruction
sets are above every cap's); the class and the machine key do not change with it.

**Approximating a class.** ``ONEDNN_MAX_CPU_ISA`` caps what oneDNN uses (float and INT8 convolutions,
Inductor's INT8 kernels), ``ATEN_CPU_CAPABILITY`` what ATen dispatches to and what Inductor generates,
``FBGEMM_ENABLE_INSTRUCTIONS`` what FBGEMM uses (torch.ao's INT8 linear layers, and convolutions on
CPUs without AVX-512 VNNI). When one of them is set below what the CPU has, :func:`identify` reports
the capped class (``capability_class``), keeps the real one (``hardware_class``) and says so in
``approximated``. Where the approximation stops: ONNX Runtime's kernels (MLAS) choose from the CPU
itself and follow none of them; torch.ao's ``x86`` engine routes INT8 convolutions to oneDNN or
FBGEMM by the real CPU (oneDNN capped to AVX2 here, FBGEMM on a real AVX2 CPU: the same results, not
necessarily the same speed); and an AVX2 CPU's clock, caches and memory are not reproduced.
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

CLASSES = ("x86-amx", "x86-avx512-vnni", "x86-avx2-vnni", "x86-avx512", "x86-avx2", "x86-baseline",
           "arm64-i8mm", "arm64-dotprod", "arm64-neon", "unknown")
#: classes whose CPUs multiply-accumulate INT8 in one instruction into 32 bits (no saturation, fast INT8)
FAST_INT8 = frozenset({"x86-amx", "x86-avx512-vnni", "x86-avx2-vnni", "arm64-i8mm", "arm64-dotprod"})

#: the features shown and recorded (the /proc/cpuinfo names on x86 and on arm64)
FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
            "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "bf16")

#: what an environment cap means for the class: (variable, value pattern) -> highest class it allows
_CAPS = {"avx2": "x86-avx2", "avx512_core": "x86-avx512", "avx512": "x86-avx512", "avx512_256": "x86-avx512",
         "avx512_core_vnni": "x86-avx512-vnni", "avx512_e1": "x86-avx512-vnni", "avx512_e1_256": "x86-avx512-vnni",
         "avx2_vnni": "x86-avx2-vnni", "default": "x86-baseline", "sse41": "x86-baseline", "sse4_1": "x86-baseline"}
_X86_ORDER = ["x86-baseline", "x86-avx2", "x86-avx512", "x86-avx2-vnni", "x86-avx512-vnni", "x86-amx"]


def cpu_flags(cpuinfo: str) -> tuple[str, str, set[str]]:
    """(model name, vendor, feature flags) from the text of ``/proc/cpuinfo`` (x86 ``flags`` or arm64
    ``Features``); empty where the text does not say."""
    model = vendor = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "cpu model") and not model:
            model = value
        elif key == "vendor_id" and not vendor:
            vendor = value
        elif key == "cpu implementer" and not vendor:
            vendor = {"0x41": "ARM", "0x61": "Apple", "0xc0": "Ampere", "0x48": "HiSilicon"}.get(value.lower(), value)
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, vendor, flags


def capability_class(machine: str, flags: set[str]) -> str:
    """The class (see the module doc) of a CPU with these feature ``flags`` on architecture ``machine``
    (``platform.machine()``: x86_64, AMD64, aarch64, arm64)."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        if {"amx_tile", "amx_int8"} <= flags:
            return "x86-amx"
        if {"avx512f", "avx512bw", "avx512_vnni"} <= flags:
            return "x86-avx512-vnni"
        if {"avx2", "avx_vnni"} <= flags:
            return "x86-avx2-vnni"
        if {"avx512f", "avx512bw", "avx512vl"} <= flags:
            return "x86-avx512"
        if "avx2" in flags:
            return "x86-avx2"
        return "x86-baseline"
    if machine in ("aarch64", "arm64"):
        if "i8mm" in flags:
            return "arm64-i8mm"
        if "asimddp" in flags:
            return "arm64-dotprod"
        return "arm64-neon"
    return "unknown"


def env_cap(environ=os.environ) -> tuple[str | None, list[str]]:
    """The highest x86 class that the kernel-selection variables in ``environ`` allow (None: no cap),
    and the ``NAME=value`` settings that cap it."""
    caps, said = [], []
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "FBGEMM_ENABLE_INSTRUCTIONS"):
        value = environ.get(name, "").strip().lower()
        if not value:
            continue
        cls = _CAPS.get(value)
        if cls is None and value.startswith("avx2"):
            cls = "x86-avx2"
        if cls is not None:
            caps.append(cls)
            said.append(f"{name}={environ[name]}")
    if not caps:
        return None, []
    return min(caps, key=_X86_ORDER.index), said


def capped(hardware: str, cap: str | None) -> str:
    """``hardware`` lowered to ``cap`` when the cap is below it (x86 only)."""
    if cap is None or hardware not in _X86_ORDER:
        return hardware
    return cap if _X86_ORDER.index(cap) < _X86_ORDER.index(hardware) else hardware


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def _sysctl_flags() -> set[str]:
    """Features on macOS (no /proc/cpuinfo): Apple silicon has NEON and the dot product, M2 and later i8mm."""
    import subprocess
    try:
        out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    flags = set()
    for name, flag in (("hw.optional.arm.FEAT_DotProd: 1", "asimddp"), ("hw.optional.arm.FEAT_I8MM: 1", "i8mm"),
                       ("hw.optional.avx2_0: 1", "avx2"), ("hw.optional.avx512f: 1", "avx512f"),
                       ("hw.optional.avx512bw: 1", "avx512bw"), ("hw.optional.avx512vl: 1", "avx512vl"),
                       ("hw.optional.avx512vnni: 1", "avx512_vnni"), ("hw.optional.arm.FEAT_BF16: 1", "bf16"),
                       ("hw.optional.arm.FEAT_FP16: 1", "asimdhp")):
        if name in out:
            flags.add(flag)
    return flags


#: torch.cpu.get_capabilities() names (cpuinfo's, read from CPUID) -> the /proc/cpuinfo names used here
_TORCH_NAMES = {"avx2": "avx2", "fma3": "fma", "avx512_f": "avx512f", "avx512_bw": "avx512bw", "avx512_vl": "avx512vl",
                "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni", "avx512_bf16": "avx512_bf16",
                "amx_tile": "amx_tile", "amx_int8": "amx_int8", "amx_bf16": "amx_bf16",
                "avx512_fp16": "avx512_fp16", "amx_fp16": "amx_fp16"}


def _cpuid_flags() -> set[str] | None:
    """x86 features as CPUID reports them to this process (torch's cpuinfo), or None where torch cannot
    say. Preferred to /proc/cpuinfo, which shows the host's flags under an emulator (qemu) and does
    not exist off Linux."""
    try:
        import torch
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return None
    if not hasattr(caps, "get") or "avx2" not in caps:  # a read-only mapping
        return None
    return {ours for theirs, ours in _TORCH_NAMES.items() if caps.get(theirs)}


#: the flags with which a CPU computes in each half-precision type itself, per architecture
NATIVE_HALF = {"x86": {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")},
               "arm64": {"bf16": ("bf16",), "fp16": ("asimdhp",)}}


def _arch_family(machine: str) -> str | None:
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        return "x86"
    return "arm64" if machine in ("aarch64", "arm64") else None


def half_precision(machine: str, flags: set[str]) -> dict[str, list[str]]:
    """For ``bf16`` and ``fp16``: the flags of ``flags`` that make it native on architecture ``machine``
    (empty: emulated). ``{"bf16": ["avx512_bf16", "amx_bf16"], "fp16": []}`` on a Cooper Lake."""
    native = NATIVE_HALF.get(_arch_family(machine) or "", {})
    return {dtype: [f for f in native.get(dtype, ()) if f in flags] for dtype in ("bf16", "fp16")}


def precision_note(dtype: str, info: dict) -> str | None:
    """Why a ``bf16`` or ``fp16`` row can be slower than float on the machine ``info`` (an
    :func:`identify` dict), or None where the type is native: said beside a speed figure that
    disappoints, never a failed gate."""
    native = (info.get("half_precision") or {}).get(dtype)
    if native is None or native:
        return None
    flags = " or ".join(NATIVE_HALF.get(_arch_family(info.get("arch", "")) or "", {}).get(dtype, ())) or "none known"
    return (f"{dtype.upper()} is emulated on this CPU ({info.get('capability_class', 'unknown')}, no {flags}): each "
            f"value is widened to fp32 before the arithmetic, so {dtype.upper()} halves the model's bytes but "
            f"runs no faster than float")


def runtime_versions() -> dict[str, str]:
    from compression_bench.zoo.keys import package_versions
    return package_versions("torch", "torchvision", "torchao", "onnxruntime", "torch-pruning")


@functools.lru_cache(maxsize=None)
def identify() -> dict:
    """This machine (see the module doc), as a plain dict that results and saved runs keep:
    ``cpu``, ``vendor``, ``arch``, ``features`` (those of :data:`FEATURES` it has), ``torch_capability``
    (what ATen dispatches to), ``cores`` (usable by this process), ``hardware_class``,
    ``capability_class`` (after the environment's caps), ``approximated`` (the caps, empty when none),
    ``fast_int8``, ``half_precision`` (:func:`half_precision`: the flags that make BF16 and FP16
    native, empty where emulated) and ``key`` (a short hash of class, CPU model and versions: same
    key, same kernels). Cached per process."""
    import torch
    model, vendor, flags = cpu_flags(_read_cpuinfo())
    arch = platform.machine()
    cpuid = _cpuid_flags() if arch.lower() in ("x86_64", "amd64") else None
    if cpuid is not None:
        flags = cpuid | (flags - set(_TORCH_NAMES.values()))
    elif not flags and platform.system() == "Darwin":
        flags = _sysctl_flags()
    hardware = capability_class(arch, flags)
    cap, said = env_cap()
    cls = capped(hardware, cap)
    try:
        torch_cap = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch before 2.3
        torch_cap = "unknown"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    info = {"cpu": model or platform.processor() or "unknown", "vendor": vendor or "unknown", "arch": arch,
            "features": [f for f in FEATURES if f in flags], "torch_capability": torch_cap, "cores": cores,
            "hardware_class": hardware, "capability_class": cls, "approximated": said,
            # a cap below the hardware's class also caps oneDNN below its bf16 and fp16 instruction sets
            "fast_int8": cls in FAST_INT8, "half_precision": half_precision(arch, flags if cls == hardware else set()),
            "versions": runtime_versions()}
    info["key"] = machine_key(info)
    return info


def machine_key(info: dict) -> str:
    """``x86-avx512-vnni-3f9a1c2e``: the class and 8 hex digits of the CPU model, features and versions."""
    text = "|".join([info.get("capability_class", ""), info.get("cpu", ""), ",".join(info.get("features", [])),
                     ",".join(f"{k}={v}" for k, v in sorted((info.get("versions") or {}).items()))])
    return f"{info.get('capability_class', 'unknown')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def describe(info: dict) -> str:
    """One line for the session header and the report:
    ``AMD EPYC (x86_64, 2 cores): class x86-avx512-vnni; avx2 fma avx512f ...; torch dispatches AVX512``."""
    cls = info["capability_class"]
    extra = ""
    if info.get("approximated"):
        extra = (f" (approximated with {' '.join(info['approximated'])} on a {info['hardware_class']} CPU; "
                 f"ONNX Runtime still uses the CPU's own kernels)")
    half = info.get("half_precision") or {}
    halves = "".join(f"; {d.upper()} " + (f"native ({' '.join(half[d])})" if half[d] else "emulated")
                     for d in ("bf16", "fp16") if d in half)
    return (f"{info['cpu']} ({info['arch']}, {info['cores']} cores): class {cls}{extra}; features "
            f"{' '.join(info['features']) or 'none detected'}; torch dispatches {info['torch_capability']}{halves}")


def int8_note(cls: str) -> str | None:
    """Why INT8 gains little on this class (None where it has fast INT8 kernels): said beside a speed
    figure that disappoints."""
    if cls in FAST_INT8 or cls == "unknown":
        return None
    if cls.startswith("x86"):
        return (f"INT8 convolutions on this CPU ({cls}) run without VNNI: AVX2/AVX-512BW multiply 8-bit pairs "
                f"into 16 bits (vpmaddubsw) and widen them again, so INT8 gains 1.2-1.5x over float here instead "
                f"of 4-5x with VNNI")
    return f"this CPU ({cls}) has no INT8 dot-product instructions, so INT8 kernels gain little over float"
