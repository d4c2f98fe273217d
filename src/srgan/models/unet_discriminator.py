"""A U-Net discriminator with spectral normalisation (the kind Real-ESRGAN uses, Wang et al. 2021).

Why not the paper's discriminator for long GAN runs: it judges a whole 96 px crop with one
logit through a 19M-parameter dense layer, so it learns global statistics and, trained long,
rewards whatever texture fools it everywhere at once (a lattice, docs/models.md "GAN recipe").
A U-Net gives one logit per pixel: it must find *where* the output looks generated, so
the generator is pushed towards locally plausible texture; spectral normalisation bounds each
layer's Lipschitz constant, which keeps the per-pixel game stable without BatchNorm.

Three stride-2 4x4 convs down, three bilinear upsamplings + 3x3 convs back up with skip
additions, two 3x3 convs and a 1-channel head. With `channels` = 32 (the CPU default here) it
has 1.1M parameters and costs about as much as the paper's discriminator per crop; Real-ESRGAN's
64 gives 4.4M at four times the FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class UNetDiscriminatorConfig:
    in_channels: int = 3
    channels: int = 32
    skip: bool = True  # add the encoder features back on the way up

    def __post_init__(self) -> None:
        if self.channels < 4:
            raise ValueError(f"UNetDiscriminatorConfig.channels must be >= 4, got {self.channels}")


class UNetDiscriminator(nn.Module):
    """(N, 3, H, W) in [0, 1], H and W multiples of 8 -> (N, 1, H, W) per-pixel logits."""

    def __init__(self, config: UNetDiscriminatorConfig = UNetDiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        sn = spectral_norm
        self.conv0 = nn.Conv2d(config.in_channels, c, 3, padding=1)
        self.down = nn.ModuleList(sn(nn.Conv2d(a, b, 4, stride=2, padding=1, bias=False))
                                  for a, b in ((c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c)))
        self.up = nn.ModuleList(sn(nn.Conv2d(a, b, 3, padding=1, bias=False))
                                for a, b in ((8 * c, 4 * c), (4 * c, 2 * c), (2 * c, c)))
        self.refine = nn.Sequential(sn(nn.Conv2d(c, c, 3, padding=1, bias=False)), nn.LeakyReLU(0.2, inplace=True),
                                    sn(nn.Conv2d(c, c, 3, padding=1, bias=False)), nn.LeakyReLU(0.2, inplace=True),
                                    nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"UNetDiscriminator needs H and W multiples of 8, got {x.shape[-2]}x{x.shape[-1]}")
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), 0.2))
        y = skips.pop()
        for conv in self.up:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = F.leaky_relu(conv(y), 0.2)
            skip = skips.pop()
            y = y + skip if self.config.skip else y
        return self.refine(y)
