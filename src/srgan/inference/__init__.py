"""Inference: tiling plans, the tiled engine, image I/O and the Python API."""

from ..images import DEFAULT_MAX_PIXELS, ImageError, Picture, read_image, write_image
from .api import load_model, upscale, upscale_picture
from .engine import upscale_array
from .tiling import Tile, plan_tiles

__all__ = [
    "DEFAULT_MAX_PIXELS", "ImageError", "Picture", "Tile", "load_model", "plan_tiles", "read_image",
    "upscale", "upscale_array", "upscale_picture", "write_image",
]
