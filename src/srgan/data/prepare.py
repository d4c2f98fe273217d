"""`srgan data prepare`: an on-disk cache of decoded sub-images for data sets too big for RAM.

Each HR image is decoded once, modcropped, its LR made with the training degradation, and both
are cut into overlapping sub-images (BasicSR-style, 480 px with a 240 px step by default) saved
as raw `.npy` arrays. Training memory-maps them, so nothing is decoded during a run and the OS
page cache, not the Python heap, holds what is hot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..images import find_images
from .degradation import bicubic_downscale, modcrop
from .pairs import Pair, decode_rgb

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def sub_image_origins(length: int, crop: int, step: int) -> list[int]:
    """Start offsets covering [0, length) with windows of `crop` every `step` (last one flush)."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def iter_sub_images(hr: np.ndarray, lr: np.ndarray, scale: int, crop: int, step: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Aligned (hr, lr) windows; crop and step are rounded down to multiples of the scale."""
    crop, step = crop - crop % scale, max(scale, step - step % scale)
    for y in sub_image_origins(hr.shape[0], crop, step):
        for x in sub_image_origins(hr.shape[1], crop, step):
            y, x = y - y % scale, x - x % scale
            h, w = min(crop, hr.shape[0] - y), min(crop, hr.shape[1] - x)
            yield hr[y : y + h, x : x + w], lr[y // scale : (y + h) // scale, x // scale : (x + w) // scale]


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a temp name
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)


def prepare(folders: list[str | Path], out: Path, scale: int, crop: int = 480, step: int = 240) -> int:
    """Write the cache to `out`; returns the number of sub-image pairs. Bad images are skipped."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in find_images(folders):
        try:
            hr = modcrop(decode_rgb(path), scale)
        except Exception as exc:
            log.warning("skipping %s: unreadable image (%s)", path, exc)
            continue
        lr = bicubic_downscale(hr, scale)
        for k, (h, l) in enumerate(iter_sub_images(hr, lr, scale, crop, step)):
            name = f"{path.stem}_s{k:03d}"
            for suffix, arr in (("hr", h), ("lr", l)):
                atomic_write(out / f"{name}.{suffix}.npy", lambda tmp, a=arr: _save_npy(tmp, a))
            entries.append({"name": name, "source": str(path), "hr": list(h.shape)})
    manifest = {"scale": scale, "crop": crop, "step": step, "pairs": entries}
    atomic_write(out / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)))
    return len(entries)


def load_prepared(folder: Path, scale: int):
    """Memory-mapped pairs of a prepared cache (validated against the requested scale)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("scale") != scale:
        raise ValueError(f"{folder}: prepared for scale {manifest.get('scale')}, not {scale}; run 'srgan data prepare' again")
    pairs = []
    for entry in manifest["pairs"]:
        hr = np.load(folder / f"{entry['name']}.hr.npy", mmap_mode="r", allow_pickle=False)
        lr = np.load(folder / f"{entry['name']}.lr.npy", mmap_mode="r", allow_pickle=False)
        pairs.append(Pair(entry["name"], hr, lr))
    return pairs
