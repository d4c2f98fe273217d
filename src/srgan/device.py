"""Device and numeric-precision choice, shared by inference and training."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import platform

import torch

log = logging.getLogger(__name__)


def select_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) picks CUDA > MPS > CPU; anything else is parsed by torch."""
    if name is None or str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which oneDNN has no bf16 dot-product instruction and
# so emulates bf16 with fp32 arithmetic plus conversions (slower than plain fp32).
_ONEDNN_ISAS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


def native_bf16(machine: str, x86_flags: frozenset[str], onednn_bf16: bool, onednn_max_isa: str = "") -> bool:
    """Whether bf16 convolutions run in hardware on a CPU with these features (a pure function).

    On x86, oneDNN reports bf16 as supported on any AVX-512 CPU because it can emulate it there,
    3-5x slower than fp32; only the bf16 dot-product instructions (the CPU flags avx512_bf16, or
    amx_bf16) make it fast, and a cap on oneDNN's ISA below AVX512_CORE_BF16 takes them away
    again. On ARM, oneDNN's own answer already is the CPU's bf16 feature (FEAT_BF16).
    """
    if machine.lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        if onednn_max_isa.upper() in _ONEDNN_ISAS_WITHOUT_BF16:
            return False
        return onednn_bf16 and bool(x86_flags & {"avx512_bf16", "amx_bf16"})
    return onednn_bf16


def _x86_bf16_flags() -> frozenset[str]:
    """The CPU's bf16 feature flags as PyTorch's cpuinfo reads them (CPUID)."""
    cpu = torch.cpu
    flags = set()
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        flags.add("avx512_bf16")
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        flags.add("amx_bf16")  # every CPU with AMX tiles so far has AMX-BF16
    return frozenset(flags)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU runs bf16 convolutions in hardware (AVX512-BF16 / AMX on x86, FEAT_BF16 on ARM)."""
    try:
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    max_isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    return native_bf16(platform.machine(), _x86_bf16_flags(), onednn_bf16, max_isa)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Map 'auto' | 'fp32' | 'bf16' | 'fp16' to a dtype the device really runs fast.

    auto: fp16 on CUDA and MPS, bf16 on CPUs with native bf16 (measured ~2x faster than fp32
    for SRResNet), otherwise fp32. An explicit half precision the device cannot run is an error.
    """
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if precision == "fp32":
        return torch.float32
    if precision == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu" and not (dtype == torch.bfloat16 and cpu_has_native_bf16()):
        raise ValueError(
            f"precision {precision} is not supported natively on this CPU (it would be emulated, slower than"
            " fp32); use fp32 or auto"
        )
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ValueError("precision bf16 is not supported on this GPU; use fp16 or auto")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device`, or a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def available_memory(device: torch.device) -> int:
    """Bytes that can be allocated now: free GPU memory, or the OS's MemAvailable."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Have glibc's malloc serve blocks up to `limit` bytes from its heap and keep what is freed
    there (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) instead of handing it back to the kernel.

    A training step frees and reallocates the same activations every iteration. By default every
    block over glibc's mmap threshold (dynamic, at most 32 MB) is a fresh mapping, so each GAN
    step faulted ~240 MB of pages back in: 58k faults per step, 10% of the step on the AMX kind
    (docs/performance.md). For a process whose working set repeats; returns False, changing
    nothing, without glibc (macOS, Windows, musl). It acts on the main arena, where the training
    loop allocates: a thread arena's heaps are at most 64 MB, and glibc maps larger blocks itself.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(libc.mallopt(m_mmap_threshold, limit)) and bool(libc.mallopt(m_trim_threshold, limit))
