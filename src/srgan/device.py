"""Device and numeric-precision choice, shared by inference and training."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os

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


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when oneDNN can run bf16 convolutions in hardware (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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
        raise ValueError(f"precision {precision} is not supported natively on this CPU; use fp32 or auto")
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
