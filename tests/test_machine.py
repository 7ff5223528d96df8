"""Machine identity: CPU features, capability class, the environment's caps, and what follows from the
class (the ONNX Runtime INT8 format). Plain functions over text; no timing."""
from __future__ import annotations

import pytest

from compression_bench.benchmarks.measurement import machine
from compression_bench.benchmarks.runtimes.onnxruntime import int8_format

ZEN2 = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B12
flags		: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2
"""
ZEN4 = ZEN2.replace("AMD EPYC 7B12", "AMD EPYC 9B14").replace(
    "avx2 bmi2", "avx2 bmi2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16")
SKYLAKE_SP = ZEN2.replace("avx2 bmi2", "avx2 bmi2 avx512f avx512dq avx512bw avx512vl")
ALDER_LAKE = ZEN2.replace("avx2 bmi2", "avx2 bmi2 avx_vnni")
SAPPHIRE_RAPIDS = ZEN4.replace("avx512_bf16", "avx512_bf16 amx_bf16 amx_tile amx_int8")
GRAVITON2 = """processor	: 0
BogoMIPS	: 243.75
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
"""
GRAVITON3 = GRAVITON2.replace("asimddp", "asimddp sve i8mm bf16")


@pytest.mark.parametrize("cpuinfo, arch, expected", [
    (ZEN2, "x86_64", "x86-avx2"), (ZEN4, "x86_64", "x86-avx512-vnni"), (SKYLAKE_SP, "x86_64", "x86-avx512"),
    (ALDER_LAKE, "x86_64", "x86-avx2-vnni"), (SAPPHIRE_RAPIDS, "x86_64", "x86-amx"),
    (ZEN2.replace("fma avx2 ", ""), "x86_64", "x86-baseline"),
    (GRAVITON2, "aarch64", "arm64-dotprod"), (GRAVITON3, "aarch64", "arm64-i8mm"),
    (GRAVITON2.replace(" asimddp", ""), "aarch64", "arm64-neon"), ("", "riscv64", "unknown"),
])
def test_the_capability_class_comes_from_the_features_that_select_int8_kernels(cpuinfo, arch, expected):
    model, vendor, flags = machine.cpu_flags(cpuinfo)
    assert machine.capability_class(arch, flags) == expected
    assert expected in machine.CLASSES


def test_cpuinfo_gives_the_model_the_vendor_and_the_flags():
    assert machine.cpu_flags(ZEN2)[:2] == ("AMD EPYC 7B12", "AuthenticAMD")
    assert {"avx2", "fma"} <= machine.cpu_flags(ZEN2)[2]
    assert machine.cpu_flags(GRAVITON2)[1] == "ARM" and "asimddp" in machine.cpu_flags(GRAVITON2)[2]


@pytest.mark.parametrize("env, cap", [
    ({}, None), ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "x86-avx2"), ({"ATEN_CPU_CAPABILITY": "avx2"}, "x86-avx2"),
    ({"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512"}, "x86-avx512"), ({"ONEDNN_MAX_CPU_ISA": "ALL"}, None),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI", "ATEN_CPU_CAPABILITY": "avx2"}, "x86-avx2"),  # the lowest cap wins
])
def test_environment_caps_lower_the_class_and_say_so(env, cap):
    got, said = machine.env_cap(env)
    assert got == cap and len(said) == (0 if cap is None else len(env))
    assert machine.capped("x86-avx512-vnni", got) == (cap or "x86-avx512-vnni")
    assert machine.capped("x86-avx2", "x86-avx512") == "x86-avx2"  # a cap never raises the class
    assert machine.capped("arm64-dotprod", "x86-avx2") == "arm64-dotprod"


def test_this_machine_is_described_with_its_class_features_and_a_stable_key():
    info = machine.identify()
    assert info["capability_class"] in machine.CLASSES and info["cores"] >= 1
    assert info["key"].startswith(info["capability_class"] + "-") and len(info["key"].rsplit("-", 1)[1]) == 8
    assert info["key"] == machine.machine_key(dict(info))
    other = dict(info, versions={**info["versions"], "torch": "0.0"})
    assert machine.machine_key(other) != info["key"]  # another torch: another key (kernels may differ)
    line = machine.describe(info)
    assert f"class {info['capability_class']}" in line and f"torch dispatches {info['torch_capability']}" in line


def test_an_approximated_class_is_named_with_the_caps_and_where_it_stops():
    info = dict(machine.identify(), capability_class="x86-avx2", hardware_class="x86-avx512-vnni",
                approximated=["ONEDNN_MAX_CPU_ISA=AVX2"])
    line = machine.describe(info)
    assert "class x86-avx2 (approximated with ONEDNN_MAX_CPU_ISA=AVX2 on a x86-avx512-vnni CPU" in line
    assert "ONNX Runtime still uses the CPU's own kernels" in line


def test_int8_notes_name_the_missing_instructions_only_where_they_are_missing():
    assert "without VNNI" in machine.int8_note("x86-avx2") and "x86-avx2" in machine.int8_note("x86-avx2")
    assert machine.int8_note("x86-avx512-vnni") is None and machine.int8_note("x86-amx") is None


@pytest.mark.parametrize("cls, fmt", [("x86-avx2", "U8S8-rr"), ("x86-avx512", "U8S8-rr"), ("x86-baseline", "U8S8-rr"),
                                      ("x86-avx512-vnni", "U8S8"), ("x86-amx", "U8S8"), ("x86-avx2-vnni", "U8S8"),
                                      ("arm64-dotprod", "U8S8"), ("arm64-neon", "U8S8")])
def test_onnx_runtime_int8_weights_use_7_bits_where_16_bit_pair_sums_would_saturate(cls, fmt):
    got, why = int8_format(cls)
    assert got == fmt and cls in why


def test_x86_features_come_from_cpuid_through_torch_where_it_can_say():
    import platform
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86 only")
    flags = machine._cpuid_flags()
    assert flags is not None
    assert set(machine.identify()["features"]) & set(machine._TORCH_NAMES.values()) == \
        flags & set(machine.FEATURES)
