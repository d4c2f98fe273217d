"""The unit every training data source yields: an aligned (HR, LR) pair of uint8 arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..images import Picture, read_rgb, to_8bit


@dataclass
class Pair:
    name: str
    hr: np.ndarray  # (H, W, 3) uint8, H and W multiples of scale
    lr: np.ndarray  # (H/scale, W/scale, 3) uint8


def decode_rgb(path: Path) -> np.ndarray:
    """Decode an image file to an HxWx3 uint8 array (srgan.images.read_rgb; 16-bit files rounded),
    the form training keeps its data in."""
    return to_8bit(Picture(read_rgb(path))).pixels
