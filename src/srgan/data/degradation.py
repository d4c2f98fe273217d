"""The degradation model shared by training and evaluation: antialiased bicubic downscaling.

Pure functions on uint8/uint16 (H, W) or (H, W, C) numpy arrays.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of `scale` (top-left anchored, as MATLAB's modcrop)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def resize(img: np.ndarray, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) uint8/uint16 array to (height, width) with Pillow.

    Pillow's filters are antialiased: they widen the kernel when downscaling (like MATLAB's
    imresize), which is the degradation the SR benchmarks use. uint16 planes are resized in
    float32 so that no precision is lost.
    """
    height, width = size
    squeeze = img.ndim == 2
    planes = img[..., None] if squeeze else img
    if planes.dtype == np.uint8 and planes.shape[2] == 3:
        out = np.asarray(Image.fromarray(planes, "RGB").resize((width, height), resample))
    else:
        out = np.stack([_resize_plane(planes[..., c], (width, height), resample) for c in range(planes.shape[2])], axis=-1)
    return out[..., 0] if squeeze else out


def _resize_plane(plane: np.ndarray, wh: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    if plane.dtype == np.uint8:
        return np.asarray(Image.fromarray(plane, "L").resize(wh, resample))
    info = np.iinfo(plane.dtype)
    resized = np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize(wh, resample))
    return np.clip(np.round(resized), info.min, info.max).astype(plane.dtype)


def bicubic_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize to (height, width); see `resize`."""
    return resize(img, size, Image.Resampling.BICUBIC)


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """LR image for an HR image: modcrop to the scale, then antialiased bicubic by 1/scale."""
    hr = modcrop(img, scale)
    return bicubic_resize(hr, (hr.shape[0] // scale, hr.shape[1] // scale))
