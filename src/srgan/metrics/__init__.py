"""The field's evaluation protocol (BT.601 Y channel, border shaved) and its perceptual metrics.

`lpips(sr, hr, shave=...)` and `niqe(img, shave=...)` are loaded on first use: they need torch
and weight files (srgan.metrics.weights), the protocol functions only numpy.
"""

from .protocol import (
    edge_error,
    flat_texture,
    grid_level,
    psnr,
    psnr_rgb,
    psnr_y,
    rgb_to_y,
    shave,
    ssim,
    ssim_y,
    texture_ratio,
    to_unit_float,
)

__all__ = ["edge_error", "flat_texture", "grid_level", "lpips", "niqe", "psnr", "psnr_rgb", "psnr_y", "rgb_to_y",
           "shave", "ssim", "ssim_y", "texture_ratio", "to_unit_float"]


def __getattr__(name: str):
    if name == "lpips":
        from .lpips_model import lpips

        return lpips
    if name == "niqe":
        from .niqe_model import niqe

        return niqe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
