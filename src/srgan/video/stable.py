"""Still regions kept still: the GAN's texture does not shimmer where the scene does not move.

A GAN upscaler is deterministic, but a video's still background is not bit-identical from frame to
frame: compression noise moves its code values by a few levels, and the network turns those into
different texture every frame, a shimmer on walls, skies and faces that the source does not have.

`Stabilizer` keeps, per LR pixel, the frame whose output is on screen there (its reference). Where
the new LR frame is within `threshold` grey levels of that reference over the pixel's
neighbourhood, the output shown there stays; elsewhere the new output is taken and the reference
moves on. Comparing with the reference, not the previous frame, keeps a slow change (a fade) from
being held for ever: it is let through once it adds up to the threshold. The hold is blended
over a few output pixels at its edges, so no seam shows. Deterministic: the same frames give
the same output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NEIGHBOURHOOD = 5  # LR px: one codec block's noise is judged with its neighbours, not pixel by pixel
FEATHER = 3  # LR px over which a held region blends into the new output


class Stabilizer:
    """Call once per frame, in order: (LR frame, its SR output) -> the SR output to write."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.reference: torch.Tensor | None = None  # (3, h, w) float LR, 8-bit grey levels
        self.shown: np.ndarray | None = None

    def __call__(self, lr: np.ndarray, sr: np.ndarray) -> np.ndarray:
        levels = 255.0 / np.iinfo(lr.dtype).max  # judge in 8-bit grey levels whatever the depth
        x = torch.from_numpy(lr.astype(np.float32)).permute(2, 0, 1) * levels
        if self.reference is None or self.reference.shape != x.shape or self.shown.shape != sr.shape:
            self.reference, self.shown = x, sr
            return sr
        change = (x - self.reference).abs().amax(0)[None, None]
        change = F.avg_pool2d(change, NEIGHBOURHOOD, stride=1, padding=NEIGHBOURHOOD // 2, count_include_pad=False)
        hold = (change <= self.threshold).float()
        self.reference = torch.where(hold[0].bool(), self.reference, x)
        soft = F.avg_pool2d(hold, 2 * FEATHER + 1, stride=1, padding=FEATHER, count_include_pad=False)
        weight = F.interpolate(soft, size=sr.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        weight = weight.numpy()[..., None]
        out = weight * self.shown.astype(np.float32) + (1 - weight) * sr.astype(np.float32)
        self.shown = np.rint(out).astype(sr.dtype)
        return self.shown
