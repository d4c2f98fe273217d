"""The field's evaluation protocol: BT.601 Y channel, border shaved by the scale."""

from .protocol import grid_level, psnr, psnr_rgb, psnr_y, rgb_to_y, shave, ssim, ssim_y, texture_ratio, to_unit_float

__all__ = ["grid_level", "psnr", "psnr_rgb", "psnr_y", "rgb_to_y", "shave", "ssim", "ssim_y", "texture_ratio", "to_unit_float"]
