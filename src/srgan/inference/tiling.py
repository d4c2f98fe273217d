"""Tiling plans: pure functions that split an image into overlapping tiles.

A tile has a *core* (the LR pixels whose outputs it is responsible for) and a *padded* window
(the core grown by `pad` pixels on each side, clipped to the image) that is actually fed to the
network. With `pad` >= the network's receptive radius, every output pixel sees exactly the same
input as in a whole-image pass, so tiled and untiled outputs agree (up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """LR coordinates, half-open: core [y0, y1) x [x0, x1) inside padded [py0, py1) x [px0, px1)."""

    y0: int
    x0: int
    y1: int
    x1: int
    py0: int
    px0: int
    py1: int
    px1: int

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.py1 - self.py0, self.px1 - self.px0


def _splits(length: int, tile: int, align: int = 1) -> list[tuple[int, int]]:
    """Split [0, length) into ceil(length / tile) near-equal spans (equal spans batch well),
    inner edges on multiples of `align`."""
    count = max(1, math.ceil(length / tile))
    edges = [round(i * length / count / align) * align for i in range(count)] + [length]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def plan_tiles(height: int, width: int, tile: int, pad: int, align: int = 1) -> list[Tile]:
    """Cover an height x width image with tiles of core size <= `tile` and overlap `pad`.

    `tile` <= 0 means one tile for the whole image. With `align` > 1 (a model's size multiple,
    e.g. one that starts with pixel_unshuffle) the core edges and the pad are multiples of it,
    so every padded window starts on the whole image's pixel grid. Raises ValueError for empty
    images or a negative pad.
    """
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty image ({width}x{height})")
    if pad < 0:
        raise ValueError(f"tile pad must be >= 0, got {pad}")
    if tile <= 0:
        tile = max(height, width)
    pad = -(-pad // align) * align
    tiles = []
    for y0, y1 in _splits(height, tile, align):
        for x0, x1 in _splits(width, tile, align):
            tiles.append(Tile(y0, x0, y1, x1, max(0, y0 - pad), max(0, x0 - pad),
                              min(height, y1 + pad), min(width, x1 + pad)))
    return tiles
