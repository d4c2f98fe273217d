"""LPIPS (Zhang et al., CVPR 2018), AlexNet v0.1, exact to the reference `lpips` package.

Written here because the reference package needs torchvision, which does not load beside the
CPU torch wheel this project installs. The network is small: AlexNet's five convs (torchvision's
`alexnet().features`), each ReLU output unit-normalised over channels, squared difference,
the official per-channel linear weights (1x1 convs, no bias), spatial mean, sum over layers.

Inputs of the module are (N, 3, H, W) RGB in [0, 1] (srgan's convention); the
reference scales them to [-1, 1] and then applies a fixed per-channel shift and scale, which
is done here the same way. Weights come from `srgan.metrics.weights` (the official files).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .protocol import shave as shave_border
from .weights import ALEXNET, LPIPS_ALEX, MetricWeightsError, find_metric_file

# The reference's ScalingLayer: (x - shift) / scale on [-1, 1] inputs (ImageNet statistics).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# Channels of the five tapped ReLU outputs (relu1 ... relu5).
CHANNELS = (64, 192, 384, 256, 256)
# Indices in torchvision's `alexnet().features` after which LPIPS taps a ReLU output.
TAPS = (1, 4, 7, 9, 11)
# Smallest side that still leaves relu5 a 1x1 map (conv 11/4, two 3/2 max-pools).
MIN_SIZE = 31
EPS = 1e-10  # the reference's normalize_tensor epsilon


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet `features` up to relu5 (same layer indices, so its keys load as is)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
    )


def unit_normalize(x: torch.Tensor) -> torch.Tensor:
    """Divide each feature vector (over channels) by its L2 norm, as the reference does."""
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + EPS)


def canonicalize_state_dict(alexnet: Mapping[str, torch.Tensor], linear: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official AlexNet + LPIPS files -> this module's keys. Pure.

    AlexNet: torchvision's `features.N.weight/bias` (a whole-model file's classifier keys are
    dropped). Linear layers: the LPIPS repository's `linK.model.1.weight` ([1, C, 1, 1]) or
    already `lins.K.weight`.
    """
    out = {k: v for k, v in alexnet.items() if k.startswith("features.")}
    for k, v in linear.items():
        parts = k.split(".")
        if k.startswith("lin") and parts[-1] == "weight":
            index = parts[1] if parts[0] == "lins" else parts[0][3:]
            out[f"lins.{index}.weight"] = v
    return out


class LPIPS(nn.Module):
    """LPIPS-alex v0.1 distance between batches of RGB images in [0, 1]; returns (N,) distances."""

    def __init__(self) -> None:
        super().__init__()
        self.features = alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised ReLU outputs of an input in [0, 1]."""
        x = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(unit_normalize(x))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"LPIPS: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS needs images of at least {MIN_SIZE}x{MIN_SIZE} px, got {x.shape[-1]}x{x.shape[-2]}")
        # Autocast off: a metric is compared with published figures to 1e-4, bf16 would not hold that.
        with torch.autocast(x.device.type, enabled=False):
            x, y = x.float(), y.float()
            total = x.new_zeros(x.shape[0])
            for lin, fx, fy in zip(self.lins, self.taps(x), self.taps(y)):
                total = total + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(weights: str | Path | None = None, *, download: bool = True) -> LPIPS:
    """LPIPS with the official weights, found by `srgan.metrics.weights.find_metric_file`.

    Raises MetricWeightsError (one line) when they are neither in `weights` (a folder), the
    `SRGAN_METRIC_WEIGHTS` folder, the torch hub cache, nor downloadable.
    """
    alex_path = find_metric_file(ALEXNET, weights, download=download)
    lin_path = find_metric_file(LPIPS_ALEX, weights, download=download)
    net = LPIPS()
    try:
        state = canonicalize_state_dict(
            torch.load(alex_path, map_location="cpu", weights_only=True),
            torch.load(lin_path, map_location="cpu", weights_only=True),
        )
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - any bad file becomes one line naming it
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MetricWeightsError(f"LPIPS weights {alex_path} / {lin_path} could not be loaded: {reason}") from None
    return net


def image_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8/uint16 RGB -> (1, 3, H, W) float32 in [0, 1]. Gray is refused: LPIPS is RGB."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"LPIPS needs (H, W, 3) RGB images, got shape {img.shape} (convert gray/alpha to RGB first)")
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"LPIPS needs uint8 or uint16 images, got {img.dtype}")
    scale = 255.0 if img.dtype == np.uint8 else 65535.0
    return torch.from_numpy(np.ascontiguousarray(img).astype(np.float32) / scale).permute(2, 0, 1)[None]


@lru_cache(maxsize=4)
def _shared_lpips(weights: str | None) -> LPIPS:
    """One loaded network per weights folder for the array function, as niqe's parameters are."""
    return load_lpips(weights)


@torch.no_grad()
def lpips(sr: np.ndarray, hr: np.ndarray, *, shave: int = 0, weights: str | Path | LPIPS | None = None) -> float:
    """LPIPS-alex v0.1 between two (H, W, 3) uint8/uint16 RGB arrays, `shave` px cut from each border.

    `weights`: a loaded `LPIPS` module, or a folder of the official files (see
    `srgan.metrics.weights`); None looks in `SRGAN_METRIC_WEIGHTS`, the torch hub cache, then
    downloads. Lower is more similar; an image with itself is 0.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"LPIPS: image sizes differ, {sr.shape[1]}x{sr.shape[0]} vs {hr.shape[1]}x{hr.shape[0]}")
    net = weights if isinstance(weights, LPIPS) else _shared_lpips(None if weights is None else str(weights))
    x, y = image_tensor(shave_border(sr, shave)), image_tensor(shave_border(hr, shave))
    device = next(net.parameters()).device
    return float(net(x.to(device), y.to(device))[0])


__all__ = ["LPIPS", "MIN_SIZE", "canonicalize_state_dict", "load_lpips", "lpips", "unit_normalize"]
