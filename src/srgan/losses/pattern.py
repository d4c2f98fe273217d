"""The fixed sub-pixel pattern a pixel-shuffle generator can print under adversarial training.

Each output pixel of an x`scale` generator has one of scale x scale sub-pixel phases. A GAN
phase can teach the generator to add the same small offset at every pixel of a phase (the
cheapest "texture" a discriminator rewards), which shows as a regular grid on flat areas.
Natural images have no such pattern: averaged over many blocks, their detail is not locked to
the upsampling grid. `pattern_loss` compares the mean pattern of SR and HR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def subpixel_pattern(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean scale x scale pattern of (N, C, H, W) images after removing each block's mean: (C, scale, scale)."""
    n, c, h, w = x.shape
    h, w = h - h % scale, w - w % scale
    blocks = x[..., :h, :w].reshape(n, c, h // scale, scale, w // scale, scale)
    return (blocks - blocks.mean(dim=(3, 5), keepdim=True)).mean(dim=(0, 2, 4))


def pattern_loss(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> torch.Tensor:
    """MSE between the batch's SR and HR sub-pixel patterns (0 when SR adds no fixed grid)."""
    return F.mse_loss(subpixel_pattern(sr.float(), scale), subpixel_pattern(hr.float(), scale))
