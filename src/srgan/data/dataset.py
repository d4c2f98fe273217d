"""Paired (LR, HR) random crops from folders of HR photos, decoded once and kept in memory.

Every image is decoded a single time (decoding a DIV2K PNG costs ~40 ms, far more than a
training step can afford per crop); its LR counterpart is made once with the same antialiased
bicubic the evaluation uses, so training and test degradations match exactly. A crop then
costs a slice and a flip.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..device import available_memory
from ..images import find_images
from .degradation import bicubic_downscale, modcrop
from .pairs import Pair, decode_rgb
from .prepare import MANIFEST, load_prepared

log = logging.getLogger(__name__)

def load_pairs(folders: list[str | Path], scale: int, min_size: int,
               lr_folders: list[str | Path] | None = None) -> list[Pair]:
    """Every training pair, decoded once; unreadable or too-small images are skipped with a warning.

    A folder made by `srgan data prepare` (it holds `manifest.json`) is memory-mapped instead of
    decoded. With `lr_folders`, LR images are read from there (matched by file stem, DIV2K's
    `0001x4.png` naming included) instead of being made by bicubic downscaling.
    """
    pairs: list[Pair] = []
    lr_index = index_by_stem(lr_folders, scale) if lr_folders else None
    for folder in folders:
        if (Path(folder) / MANIFEST).is_file():
            pairs.extend(p for p in load_prepared(Path(folder), scale) if min(p.hr.shape[:2]) >= min_size)
            continue
        files = find_images([folder])
        _check_fits_in_memory(files, scale)
        for path in files:
            try:
                hr = modcrop(decode_rgb(path), scale)
                if lr_index is not None:
                    lr_path = lr_index.get(path.stem)
                    if lr_path is None:
                        raise ValueError("no matching LR image")
                    lr = decode_rgb(lr_path)
                    if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
                        raise ValueError(f"LR {lr_path.name} is {lr.shape[1]}x{lr.shape[0]}, not HR/{scale}")
                else:
                    lr = None
            except Exception as exc:  # a bad file must never stop a run
                log.warning("skipping %s: unreadable image (%s)", path, exc)
                continue
            if min(hr.shape[:2]) < min_size:
                log.warning("skipping %s: %dx%d is smaller than the %d px crop", path, hr.shape[1], hr.shape[0], min_size)
                continue
            pairs.append(Pair(str(path), np.ascontiguousarray(hr), lr if lr is not None else bicubic_downscale(hr, scale)))
    if not pairs:
        raise ValueError(f"no usable training images in {', '.join(map(str, folders))}")
    return pairs


def index_by_stem(folders: list[str | Path], scale: int) -> dict[str, Path]:
    """LR images of `folders` by HR stem: `0001x4.png` (DIV2K's naming) and `0001.png` both -> "0001"."""
    index = {}
    for path in find_images(folders):
        stem = path.stem
        if stem.lower().endswith(f"x{scale}"):
            stem = stem[: -len(f"x{scale}")]
        index[stem] = path
    return index


def _check_fits_in_memory(files: list[Path], scale: int) -> None:
    """Refuse up front when decoding everything would not fit in half the available memory."""
    total = 0
    for path in files:
        try:
            with Image.open(path) as im:
                total += im.width * im.height * 3
        except Exception:
            continue  # reported when it is decoded
    total = int(total * (1 + 1 / scale**2))
    available = available_memory(torch.device("cpu"))
    if total > available // 2:
        raise ValueError(f"decoding these {len(files)} images needs {total >> 20} MB, more than half the "
                         f"{available >> 20} MB available; make an on-disk cache with "
                         "'srgan data prepare DIR -o CACHE' and train on CACHE")


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
    """Item i -> an aligned random crop (lr (3, p/s, p/s), hr (3, p, p)), float in [0, 1].

    `i` is a global index over the whole run: epoch e covers items [e*N, (e+1)*N) for N images,
    visiting every image once in an order shuffled per epoch. The crop position and dihedral
    transform are drawn from a generator seeded by (seed, i), so the batch of a given iteration
    is fixed by the iteration alone: a resumed run, or the same batch split over several DDP
    ranks, sees exactly the crops of an uninterrupted single-process run.
    """

    def __init__(self, pairs: list[Pair], patch_size: int, scale: int, seed: int = 0):
        if patch_size % scale:
            raise ValueError(f"patch size {patch_size} must be a multiple of the scale {scale}")
        self.pairs, self.patch, self.scale, self.seed = pairs, patch_size, scale, seed
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def image_index(self, i: int) -> int:
        epoch, j = divmod(i, len(self.pairs))
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng((self.seed, epoch)).permutation(len(self.pairs)))
        return int(self._order[1][j])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, i, 1))
        pair = self.pairs[self.image_index(i)]
        lp = self.patch // self.scale
        y = int(rng.integers(0, pair.lr.shape[0] - lp + 1))
        x = int(rng.integers(0, pair.lr.shape[1] - lp + 1))
        s = self.scale
        lr = pair.lr[y : y + lp, x : x + lp]
        hr = pair.hr[y * s : (y + lp) * s, x * s : (x + lp) * s]
        lr, hr = augment(lr, hr, int(rng.integers(0, 8)))
        return _to_tensor(lr), _to_tensor(hr)


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div_(255.0)


class StepBatches(torch.utils.data.Sampler):
    """Index lists for iterations start, start+1, ...: this rank's share of each global batch.

    Global batch s is items [s*B, (s+1)*B); rank r of W takes the r-th contiguous slice of B/W.
    """

    def __init__(self, start_step: int, global_batch: int, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ValueError(f"batch size {global_batch} must be divisible by the {world} processes")
        self.start, self.batch, self.rank, self.world = start_step, global_batch, rank, world

    def __iter__(self):
        per_rank = self.batch // self.world
        step = self.start
        while True:
            base = step * self.batch + self.rank * per_rank
            yield list(range(base, base + per_rank))
            step += 1
