"""`SRModel`: the one model type the engine, eval and serve consume.

Every source of a super-resolution network produces one: the bundled SRResNet weights (with the
fast inference rewrite), third-party files through spandrel (`models/third_party.py`) and ONNX
files through onnxruntime (`inference/onnx_backend.py`). Callers read its fields instead of
asking what kind of network they hold, so there are no isinstance branches downstream.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType

import torch
from torch import nn

from ..files import first_line
from ..registry import WeightsError

# A forward pass: (N, in_channels, h, w) float in [0, 1] -> (N, out_channels, scale*h, scale*w).
Forward = Callable[[torch.Tensor], torch.Tensor]

PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class SRModel:
    """A single-image super-resolution network and what inference needs to know about it.

    name: display name (bundled name, file stem); source: where it was loaded from.
    arch: architecture label ("SRResNet", spandrel's "ESRGAN", "Compact", "SwinIR", "ONNX" ...).
    scale: output size / input size, 1..8. in_channels / out_channels: 1 (grey) or 3 (RGB); the
        engine converts RGB tiles to grey (BT.601 luma) for grey models and back.
    size_multiple / min_size: input height and width must be multiples of size_multiple and at
        least min_size; the engine pads (reflect) and crops the output back. Tile boundaries are
        aligned to size_multiple so that tiles see the same pixel grid as the whole image.
    tile_overlap: LR pixels of overlap that make tiled output equal to the whole-image output
        (the receptive radius), or None for networks without a finite one (attention, global
        pooling): their tiles are approximate, so the engine runs them whole when memory allows.
    precisions: the precisions the network computes correctly ("fp32" always); others fall back
        to fp32 with a note.
    activation_elems: peak activation elements per padded LR pixel, for automatic tile sizes.
    device: where the network runs.
    build: returns the forward to run for one call of the engine (the SRResNet fast path is
        snapshotted from the current weights here, so a training Generator stays valid).
    module: the torch network (for export), or None (ONNX).
    stream: for networks that can run row by row (SRResNet on the CPU, inference/streaming.py):
        (image, dtype) -> iterator of (y0, x0, band) float output bands (1, C, n, w), the
        whole-image result in bounded memory with nothing recomputed; the engine's default
        path where it exists (it quantizes and places the bands).
    """

    name: str
    arch: str
    scale: int
    in_channels: int
    out_channels: int
    tile_overlap: int | None
    activation_elems: float
    device: torch.device
    build: Callable[[], Forward] = field(repr=False)
    size_multiple: int = 1
    min_size: int = 0
    precisions: frozenset[str] = frozenset({"fp32"})
    module: nn.Module | None = field(default=None, repr=False)
    source: str = ""
    stream: Callable[..., Iterator[tuple[int, int, torch.Tensor]]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.scale <= 8:
            raise WeightsError(f"{self.source or self.name}: scale x{self.scale} is not supported (x1-x8)")
        if self.in_channels not in (1, 3) or self.out_channels not in (1, 3):
            raise WeightsError(f"{self.source or self.name}: {self.in_channels} -> {self.out_channels} channels; "
                               "only grey (1) and RGB (3) models are supported")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network once on an NCHW batch (sizes must meet size_multiple and min_size)."""
        with torch.no_grad():
            return self.build()(x)

    def supports(self, dtype: torch.dtype) -> bool:
        return PRECISION_NAMES.get(dtype) in self.precisions


def require_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency, or raise a one-line WeightsError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except (ImportError, RuntimeError, OSError) as exc:  # RuntimeError: e.g. a torchvision built for another torch
        raise WeightsError(f"{what} needs {module}: pip install 'srgan[{extra}]' ({first_line(exc)})") from None
