"""The Python API: `load_model` and `upscale`."""

from __future__ import annotations

import functools
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..device import select_device
from ..images import LUMA, Picture, _from_pillow, resize, to_8bit, to_pillow
from ..models import (
    DEFAULT_MODEL,
    MODELS,
    Generator,
    WeightsError,
    check_detail,
    load_generator,
    resolve,
)
from ..models.descriptor import SRModel
from ..models.io import generator_from_state, is_srresnet, read_weights
from .engine import upscale_array
from .fastpath import as_sr_model, detail_blend_model, srresnet_model


def load_model(name_or_path: str | os.PathLike = DEFAULT_MODEL, device: str | torch.device | None = None,
               detail: float | None = None) -> SRModel:
    """Load any supported model as an `SRModel` on `device` (default: CUDA > MPS > CPU).

    `detail` in [0, 1] blends a bundled GAN model's output with that of the PSNR model it was
    fine-tuned from: 0 = srresnet_x4, 1 = srgan_x4, in between both run and their outputs are
    mixed. Only bundled models with a `detail_base` (srgan_x4, srgan_x4_real) have the dial.

    Bundled names and srgan/SRResNet files run the SRResNet fast path; other .pth/.safetensors
    files go through spandrel (`pip install 'srgan[interop]'`); .onnx files through onnxruntime
    (`pip install 'srgan[onnx]'`, CPU). The result is called on NCHW batches in [0, 1]:
    (N, in_channels, H, W) -> (N, out_channels, scale*H, scale*W); see SRModel for its fields.
    """
    if detail is not None:
        return detail_model(str(name_or_path), detail, select_device(device))
    resolved = resolve(name_or_path)
    path = resolved.path
    if path.suffix == ".onnx":
        from .onnx_backend import onnx_model

        return onnx_model(path, resolved.name)
    dev = select_device(device)
    state, metadata = read_weights(path)
    build = next(build for detect, build in ARCHITECTURES if detect(state, metadata))
    return replace(build(state, metadata, path, dev), name=resolved.name)


def _srresnet(state: dict, metadata: dict, path: Path, device: torch.device) -> SRModel:
    return srresnet_model(generator_from_state(state, metadata, path, device), path.stem, str(path))


def _spandrel(state: dict, metadata: dict, path: Path, device: torch.device) -> SRModel:
    from ..models.third_party import spandrel_model

    return spandrel_model(state, path, device)


# Weights files by architecture, first match wins (spandrel's dispatch): this package's SRResNet
# runs its own fast path; everything else is whatever spandrel recognises.
ARCHITECTURES = ((is_srresnet, _srresnet), (lambda state, metadata: True, _spandrel))


def detail_model(name: str, detail: float, device: torch.device) -> SRModel:
    """A bundled GAN model's output blended with its PSNR base's at `detail` (0 = base, 1 = the
    GAN model; both ends run one network, in between both run: srgan.models.detail)."""
    entry = MODELS.get(name)
    if entry is None or entry.detail_base is None:
        dialable = ", ".join(n for n, e in MODELS.items() if e.detail_base) or "none"
        raise WeightsError(f"--detail works with the bundled GAN models ({dialable}), not {name!r}")
    try:
        detail = check_detail(detail)
    except ValueError as exc:
        raise WeightsError(str(exc)) from None
    label = f"{name}@{detail:g}"
    if detail in (0.0, 1.0):
        weights = resolve(entry.detail_base if detail == 0.0 else name).path
        return srresnet_model(load_generator(weights, device), label, str(weights))
    base = load_generator(resolve(entry.detail_base).path, device)
    gan = load_generator(resolve(name).path, device)
    return detail_blend_model(base, gan, detail, label, str(entry.path))


@functools.lru_cache(maxsize=4)
def _cached_model(name_or_path: str, device: str | None, detail: float | None = None) -> SRModel:
    return load_model(name_or_path, device, detail)


def upscale_picture(
    pic: Picture, model: SRModel | Generator, outscale: float | None = None, tile: int = 0,
    tile_pad: int | None = None, precision: str = "auto", progress: bool = False,
) -> Picture:
    """Upscale a Picture: colour through the network, alpha by bicubic, grey stays grey.

    outscale: final size factor; other than the model's scale, the network output is resized
    with Lanczos. The ICC profile and bit depth are carried over.
    """
    h, w = pic.pixels.shape[:2]
    outscale = float(outscale or model.scale)
    if not (0 < outscale <= 16) or not np.isfinite(outscale):
        raise ValueError(f"outscale must be in (0, 16], got {outscale}")
    rgb = np.repeat(pic.pixels, 3, axis=2) if pic.is_gray else pic.pixels
    sr = upscale_array(model, rgb, tile=tile, tile_pad=tile_pad, precision=precision, progress=progress)
    target = (max(1, round(h * outscale)), max(1, round(w * outscale)))
    if sr.shape[:2] != target:
        sr = resize(sr, target, Image.Resampling.LANCZOS)
    if pic.is_gray:
        # The network sees R=G=B, so its output is nearly grey; take BT.601 luma.
        luma = sr.astype(np.float32) @ np.array(LUMA, dtype=np.float32)
        sr = np.clip(np.round(luma), 0, np.iinfo(sr.dtype).max).astype(sr.dtype)[..., None]
    alpha = None if pic.alpha is None else resize(pic.alpha, target, Image.Resampling.BICUBIC)
    return replace(pic, pixels=sr, alpha=alpha, notes=list(pic.notes))


def _as_picture(image) -> Picture:
    if isinstance(image, Image.Image):
        return _from_pillow(image)
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise ValueError(f"expected a (C, H, W) or (1, C, H, W) tensor with C in 1, 3, 4; got {tuple(image.shape)}")
        image = (t.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype.kind == "f":
            arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
        if arr.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"unsupported array dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"expected an (H, W), (H, W, 1|2|3|4) array, got shape {image.shape}")
        if arr.shape[2] in (2, 4):
            return Picture(np.ascontiguousarray(arr[..., :-1]), np.ascontiguousarray(arr[..., -1]))
        return Picture(np.ascontiguousarray(arr))
    raise TypeError(f"cannot upscale a {type(image).__name__}; pass a PIL image, numpy array or tensor")


def upscale(
    image: Image.Image | np.ndarray | torch.Tensor,
    model: str | os.PathLike | SRModel | Generator = DEFAULT_MODEL,
    outscale: float | None = None,
    tile: int = 0,
    precision: str = "auto",
    device: str | None = None,
    detail: float | None = None,
) -> Image.Image:
    """Super-resolve a PIL image, an (H, W[, C]) uint8/uint16/float-[0,1] array or a (C, H, W) tensor.

    Returns a PIL image (8-bit; use `upscale_array` for 16-bit output) of `outscale` (default:
    the model's scale) times the input size, in the input's mode family (L, LA, RGB, RGBA).
    `detail` (0-1) dials a bundled GAN model between its PSNR base and itself (see load_model).
    """
    if isinstance(model, (SRModel, Generator)):
        if detail is not None:
            raise ValueError("detail needs a bundled model name (e.g. 'srgan_x4'), not a loaded model")
        net = as_sr_model(model)
    else:
        net = _cached_model(str(model), device, detail)
    pic = _as_picture(image)
    return to_pillow(to_8bit(upscale_picture(pic, net, outscale, tile, None, precision)))
