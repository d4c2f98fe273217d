"""The degradation model shared by training and evaluation: antialiased bicubic downscaling.

Pure functions on uint8/uint16 (H, W) or (H, W, C) numpy arrays.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..images import resize


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of `scale` (top-left anchored, as MATLAB's modcrop)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize to (height, width); see `resize`."""
    return resize(img, size, Image.Resampling.BICUBIC)


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """LR image for an HR image: modcrop to the scale, then antialiased bicubic by 1/scale."""
    hr = modcrop(img, scale)
    return bicubic_resize(hr, (hr.shape[0] // scale, hr.shape[1] // scale))
