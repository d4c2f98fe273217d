"""Paired (LR, HR) random crops from folders of HR photos, decoded once and kept in memory.

Every image is decoded a single time (decoding a DIV2K PNG costs ~40 ms, far more than a
training step can afford per crop); its LR counterpart is made once with the same antialiased
bicubic the evaluation uses, so training and test degradations match exactly. A crop then
costs a slice and a flip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .degradation import bicubic_downscale, modcrop

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def find_images(folders: list[str | Path]) -> list[Path]:
    """All image files under `folders`, recursively, in a stable order."""
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder of images")
        files.extend(sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
    return files


def decode_rgb(path: Path) -> np.ndarray:
    """Decode an image file to an HxWx3 uint8 array (EXIF orientation applied)."""
    from PIL import ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))


@dataclass
class Pair:
    name: str
    hr: np.ndarray  # (H, W, 3) uint8, H and W multiples of scale
    lr: np.ndarray  # (H/scale, W/scale, 3) uint8


def load_pairs(folders: list[str | Path], scale: int, min_size: int) -> list[Pair]:
    """Decode every image once; skip unreadable or too-small ones with a warning naming them."""
    pairs: list[Pair] = []
    for path in find_images(folders):
        try:
            hr = modcrop(decode_rgb(path), scale)
        except Exception as exc:  # a bad file must never stop a run
            log.warning("skipping %s: unreadable image (%s)", path, exc)
            continue
        if min(hr.shape[:2]) < min_size:
            log.warning("skipping %s: %dx%d is smaller than the %d px crop", path, hr.shape[1], hr.shape[0], min_size)
            continue
        pairs.append(Pair(str(path), np.ascontiguousarray(hr), bicubic_downscale(hr, scale)))
    if not pairs:
        raise ValueError(f"no usable training images in {', '.join(map(str, folders))}")
    return pairs


def augment(lr: np.ndarray, hr: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 dihedral transforms (flip + 90-degree rotations), the same on LR and HR.

    Bicubic downscaling commutes with these, so the pair stays exactly consistent.
    """
    if code & 1:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
    if code & 2:
        lr, hr = lr[::-1], hr[::-1]
    if code & 4:
        lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
    return lr, hr


class RandomCrops(torch.utils.data.Dataset):
    """Item i is a random aligned crop of image i % len(pairs): (lr (3,p/s,p/s), hr (3,p,p)) in [0,1].

    `epoch_size` items make one epoch; randomness comes from a generator seeded per item and
    epoch, so a resumed run sees the same crops as an uninterrupted one.
    """

    def __init__(self, pairs: list[Pair], patch_size: int, scale: int, seed: int = 0, epoch_size: int | None = None):
        if patch_size % scale:
            raise ValueError(f"patch size {patch_size} must be a multiple of the scale {scale}")
        self.pairs, self.patch, self.scale, self.seed = pairs, patch_size, scale, seed
        self.epoch_size = epoch_size or len(pairs)
        self.epoch = 0

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        pair = self.pairs[i % len(self.pairs)]
        lp = self.patch // self.scale
        y = int(rng.integers(0, pair.lr.shape[0] - lp + 1))
        x = int(rng.integers(0, pair.lr.shape[1] - lp + 1))
        s = self.scale
        lr = pair.lr[y : y + lp, x : x + lp]
        hr = pair.hr[y * s : (y + lp) * s, x * s : (x + lp) * s]
        lr, hr = augment(lr, hr, int(rng.integers(0, 8)))
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div_(255.0)  # noqa: E731
        return to_t(lr), to_t(hr)
