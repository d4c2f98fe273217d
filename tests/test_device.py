"""Which precision `auto` picks on a CPU: bf16 only where the hardware multiplies in bf16."""

import pytest
import torch

from srgan import device
from srgan.device import native_bf16, resolve_precision

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("cpu", "machine", "flags", "onednn", "isa", "native"),
    [
        ("Cascade/Ice Lake Xeon: AVX-512, oneDNN emulates bf16", "x86_64", NONE, True, "", False),
        ("Sapphire Rapids: AMX", "x86_64", frozenset({"amx_bf16", "avx512_bf16"}), True, "", True),
        ("Zen 4/5: AVX512-BF16", "x86_64", frozenset({"avx512_bf16"}), True, "", True),
        ("Zen 1: AVX2 only", "x86_64", NONE, False, "", False),
        ("Zen 4 with oneDNN capped at AVX512_CORE_VNNI", "x86_64", frozenset({"avx512_bf16"}), True,
         "avx512_core_vnni", False),
        ("Zen 4 with oneDNN capped at AVX512_CORE_BF16", "x86_64", frozenset({"avx512_bf16"}), True,
         "AVX512_CORE_BF16", True),
        ("Graviton 3 / Apple M2: FEAT_BF16", "aarch64", NONE, True, "", True),
        ("Graviton 2: no FEAT_BF16", "aarch64", NONE, False, "", False),
    ],
)
def test_native_bf16_follows_the_cpu_features_not_onednns_emulation(cpu, machine, flags, onednn, isa, native):
    assert native_bf16(machine, flags, onednn, isa) is native, cpu


@pytest.fixture
def avx512_cpu_without_bf16(monkeypatch):
    """This process's CPU as an AVX-512 Xeon without bf16 instructions, whatever it really is."""
    monkeypatch.setattr(device.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(device, "_x86_bf16_flags", lambda: NONE)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    device.cpu_has_native_bf16.cache_clear()
    yield
    device.cpu_has_native_bf16.cache_clear()


def test_auto_runs_fp32_on_a_cpu_that_would_emulate_bf16(avx512_cpu_without_bf16):
    cpu = torch.device("cpu")
    assert not device.cpu_has_native_bf16()
    assert resolve_precision("auto", cpu) == torch.float32
    with pytest.raises(ValueError, match="bf16 is not supported natively on this CPU"):
        resolve_precision("bf16", cpu)


def test_auto_runs_bf16_where_the_cpu_has_it(avx512_cpu_without_bf16, monkeypatch):
    monkeypatch.setattr(device, "_x86_bf16_flags", lambda: frozenset({"avx512_bf16"}))
    device.cpu_has_native_bf16.cache_clear()
    assert resolve_precision("auto", torch.device("cpu")) == torch.bfloat16
