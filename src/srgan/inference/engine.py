"""Tiled inference: any image size, bounded memory, output assembled directly in 8/16-bit.

The network never sees more than one batch of tiles at a time, and the full-resolution result
is only ever held as uint8/uint16 (3 bytes per output pixel in 8-bit RGB), never as float.
Everything model-specific (scale, channels, size multiple, exact overlap, precisions, memory per
pixel, the forward itself) comes from the `SRModel` descriptor, whatever produced it.

Speed (measured numbers and what did not help: docs/performance.md): on the CPU, SRResNet
runs with BatchNorms folded and activations and residual adds fused into its convs, streaming
bands of rows through every layer on large images (`streaming.py`: in cache, no tile overlap,
bounded memory). Tiled, it runs as `fastpath.InferenceGenerator` (the 9x9 tail rewritten polyphase, exactly), in
channels_last, under bf16 autocast on CPUs with native bf16 and fp16 autocast on GPUs. On CUDA,
tiles are staged in pinned host memory and copied both ways with non_blocking transfers, and a
batch's result is written into the output while the next batch computes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict, deque
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..device import autocast, available_memory, resolve_precision
from ..images import LUMA
from ..models import Generator
from ..models.descriptor import PRECISION_NAMES, SRModel
from .fastpath import as_sr_model
from .tiling import Tile, plan_tiles

log = logging.getLogger(__name__)

# On CPUs, tiles beyond ~1 GiB of activations gain no speed, only memory use.
_CPU_TILE_BUDGET = 1 << 30
# Overlap for networks without a finite receptive radius (attention): tiles are approximate.
APPROX_OVERLAP = 16


def _budget_side(model: SRModel, dtype: torch.dtype, device: torch.device) -> int:
    """Side (LR px) of the largest padded tile whose activations fit in a quarter of the free memory."""
    budget = available_memory(device) // 4
    if device.type == "cpu":
        budget = min(budget, _CPU_TILE_BUDGET)
    per_px = model.activation_elems * (torch.finfo(dtype).bits // 8)
    return int(math.sqrt(budget / per_px))


def auto_tile_size(model: SRModel, dtype: torch.dtype, device: torch.device, pad: int) -> int:
    """Largest tile core (LR px) whose activations fit in a quarter of the free memory."""
    return max(32, _budget_side(model, dtype, device) - 2 * pad)


def tile_plan(model: SRModel, height: int, width: int, tile: int, tile_pad: int | None,
              dtype: torch.dtype, device: torch.device) -> list[Tile]:
    """The tiles `upscale_array` runs for an LR image of height x width (arguments as there).

    tile 0 picks `auto_tile_size`, or the whole image when that needs no more activation memory
    than one padded tile (then no overlap is recomputed: at 512^2, 2x2 tiles would cost 1.34x).
    The default overlap is the model's exact one; where that would make automatic tiles mostly
    overlap (deep networks such as RRDB, radius ~350 px), or the model has none, it is smaller
    and the tiles are approximate (noted in the log).
    """
    model = as_sr_model(model)
    exact = model.tile_overlap
    pad = (APPROX_OVERLAP if exact is None else exact) if tile_pad is None else tile_pad
    if tile == 0:
        if tile_pad is None and exact is not None and 4 * pad > (side := _budget_side(model, dtype, device)):
            pad = max(APPROX_OVERLAP, side // 4)
        tile = auto_tile_size(model, dtype, device, pad)
        if height * width <= (tile + 2 * pad) ** 2:
            tile = max(height, width)
    tiles = plan_tiles(height, width, tile, pad, align=model.size_multiple)
    if len(tiles) > 1 and (exact is None or pad < exact):
        log.info("%s: %d tiles with %d px overlap%s; tiles may differ slightly from a whole-image pass",
                 model.name, len(tiles), pad, "" if exact is None else f" (exact needs {exact})")
    return tiles


def inference_dtype(model: SRModel, precision: str) -> torch.dtype:
    """The precision resolved for the device, or fp32 (with a note) where the model lacks it."""
    dtype = resolve_precision(precision, model.device)
    if not model.supports(dtype):
        log.info("%s: note: %s does not run in %s; using fp32", model.name, model.arch, PRECISION_NAMES[dtype])
        return torch.float32
    return dtype


def _fit_input(x: torch.Tensor, model: SRModel) -> torch.Tensor:
    """RGB tiles -> the model's channels, padded (reflect, then replicate) to its size rules."""
    if model.in_channels == 1:
        luma = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * luma).sum(1, keepdim=True)
    h, w = x.shape[-2:]
    m = model.size_multiple
    th, tw = max(h, model.min_size), max(w, model.min_size)
    th, tw = -(-th // m) * m, -(-tw // m) * m
    if (th, tw) != (h, w):
        rh, rw = min(th - h, h - 1), min(tw - w, w - 1)
        x = F.pad(x, (0, rw, 0, rh), mode="reflect")
        x = F.pad(x, (0, tw - w - rw, 0, th - h - rh), mode="replicate")
    return x


def _stage_dtype(dtype: np.dtype) -> torch.dtype:
    """Integer dtype for moving pixels between host and device: uint8, or int32 for 16-bit
    (PyTorch's uint16 lacks kernels on some devices; int32 holds 0..65535 exactly)."""
    return torch.uint8 if dtype == np.uint8 else torch.int32


def _load_tiles(image: np.ndarray, batch: list[Tile], maxval: float, device: torch.device) -> torch.Tensor:
    """Padded tile windows of an (H, W, 3) uint image -> (N, 3, h, w) float in [0, 1] on `device`.

    The result is channels_last (an NHWC buffer viewed as NCHW), the layout the network runs in.
    On CUDA the integer pixels are staged in pinned memory and sent without blocking, so the
    copy overlaps the previous batch's compute; the float conversion happens on the device.
    """
    h, w = batch[0].padded_shape
    pin = device.type == "cuda"
    host = torch.empty((len(batch), h, w, 3), dtype=_stage_dtype(image.dtype), pin_memory=pin)
    view = host.numpy()
    for k, t in enumerate(batch):
        view[k] = image[t.py0 : t.py1, t.px0 : t.px1]
    x = host.to(device, non_blocking=pin)
    return x.permute(0, 3, 1, 2).float().div_(maxval)


def _quantize(y: torch.Tensor, maxval: float, stage: torch.dtype) -> torch.Tensor:
    """(N, 3, sh, sw) network output -> (N, sh, sw, 3) integers in [0, maxval], on y's device."""
    return y.permute(0, 2, 3, 1).float().clamp_(0, 1).mul_(maxval).round_().to(stage)


def _assemble(out: np.ndarray, batch: list[Tile], host: torch.Tensor, ready: torch.cuda.Event | None,
              scale: int) -> None:
    """Write each tile's core from `host` (N, sh, sw, 3) into `out` once its copy has landed."""
    if ready is not None:
        ready.synchronize()
    tiles = host.numpy()
    for t, yt in zip(batch, tiles):
        oy, ox = (t.y0 - t.py0) * scale, (t.x0 - t.px0) * scale
        out[t.y0 * scale : t.y1 * scale, t.x0 * scale : t.x1 * scale] = \
            yt[oy : oy + (t.y1 - t.y0) * scale, ox : ox + (t.x1 - t.x0) * scale]


def _batches(tiles: list[Tile], batch_size: int) -> Iterator[list[Tile]]:
    """Tiles grouped by padded shape (a batch must stack), at most batch_size per batch."""
    groups: dict[tuple[int, int], list[Tile]] = defaultdict(list)
    for t in tiles:
        groups[t.padded_shape].append(t)
    for same_shape in groups.values():
        for i in range(0, len(same_shape), batch_size):
            yield same_shape[i : i + batch_size]


@contextlib.contextmanager
def _cudnn_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN benchmark mode for the duration of a call on CUDA; the caller's setting is restored.

    A tiling plan has at most four distinct tile shapes, so the per-shape algorithm search is
    paid at most four times and then reused for every tile. (torch.backends.cudnn.flags would
    also reset unrelated flags to its defaults, hence the explicit save/restore.)
    """
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def upscale_array(
    model: SRModel | Generator,
    image: np.ndarray,
    tile: int = 0,
    tile_pad: int | None = None,
    precision: str = "auto",
    batch_size: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Super-resolve an (H, W, 3) uint8 or uint16 RGB array to (sH, sW, 3) of the same dtype.

    tile: LR tile core size in pixels; 0 = automatic: models that stream (SRResNet on the CPU)
        run fused, small images in one pass and larger ones in bands of rows with nothing
        recomputed; others in tiles sized from free memory (the whole image when it fits in one
        padded tile).
    tile_pad: overlap in LR pixels; default = the model's receptive radius (seamless).
    precision: auto | fp32 | bf16 | fp16 (see srgan.device.resolve_precision).
    batch_size: tiles per forward pass; default 1 on CPU (measured no gain), 4 on GPUs.
    model: an SRModel (srgan.load_model) or a Generator (described on the fly, fast path kept).
    Grey models see the BT.601 luma of the tiles and give grey RGB; inputs are padded to the
    model's size multiple and the output cropped back; a precision the model does not support
    falls back to fp32 with a note. A Generator is left in eval mode, its weights and memory
    format unchanged.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = as_sr_model(model)
    device = model.device
    dtype = inference_dtype(model, precision)
    scale = model.scale
    h, w = image.shape[:2]
    out = np.empty((h * scale, w * scale, 3), dtype=image.dtype)
    maxval = float(np.iinfo(image.dtype).max)
    stage = _stage_dtype(image.dtype)
    if model.stream is not None and device.type == "cpu" and tile == 0 and tile_pad is None:
        # Row streaming (inference/streaming.py): the whole-image result, in cache, nothing recomputed.
        bar = tqdm(total=h * scale, desc="rows", unit="row", leave=False, disable=not progress)
        for y0, x0, band in model.stream(image, dtype):
            rows = _quantize(band, maxval, stage)[0].numpy()
            out[y0 : y0 + rows.shape[0], x0 : x0 + rows.shape[1]] = rows
            bar.update(rows.shape[0] * rows.shape[1] / (w * scale))
        bar.close()
        return out
    tiles = tile_plan(model, h, w, tile, tile_pad, dtype, device)
    if batch_size is None:
        batch_size = 1 if device.type == "cpu" else 4
    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", leave=False, disable=not progress or len(tiles) < 4)
    # Results whose device-to-host copy is in flight (CUDA only; on CPU they are written at once).
    pending: deque[tuple[list[Tile], torch.Tensor, torch.cuda.Event | None]] = deque()
    with torch.no_grad(), _cudnn_autotune(device):
        net = model.build()
        for batch in _batches(tiles, batch_size):
            x = _load_tiles(image, batch, maxval, device)
            h, w = x.shape[-2:]
            with autocast(device, dtype):
                y = net(_fit_input(x, model))
            y = y[..., : h * scale, : w * scale]
            if model.out_channels == 1:
                y = y.repeat(1, 3, 1, 1)
            q = _quantize(y, maxval, stage)
            del x, y
            if device.type == "cuda":
                # Pinned destination + event: the copy overlaps the next batch's compute.
                host, ready = q.to("cpu", non_blocking=True), torch.cuda.Event()
                ready.record()
                pending.append((batch, host, ready))
            else:
                pending.append((batch, q.cpu(), None))
            while len(pending) > (1 if device.type == "cuda" else 0):
                _assemble(out, *pending.popleft(), scale)
            bar.update(len(batch))
        while pending:
            _assemble(out, *pending.popleft(), scale)
    bar.close()
    return out
