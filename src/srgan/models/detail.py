"""The detail dial: a PSNR-trained generator's output blended with its GAN fine-tune's.

ESRGAN (Wang et al. 2018, section 3.4) blends the two weight sets, (1 - a) * psnr + a * gan,
which works while the GAN phase stays close to the PSNR model it started from. After a long GAN
run the weight-space path leaves the basin: mid-dial the blended network's colours shift by
grey levels that show, almost all of it from blending the upsampler's convolutions
(docs/models.md). The output-space blend has no such path: with a squared error, which is
convex, its MSE is at most the endpoints' mix and it keeps the colours both models agree on.
Its cost is two forwards.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]


def check_detail(detail: float) -> float:
    """`detail` as a float in [0, 1]; ValueError naming the value otherwise (NaN included)."""
    if not 0.0 <= detail <= 1.0:
        raise ValueError(f"detail must be in [0, 1], got {detail}")
    return float(detail)


def blend_outputs(psnr: torch.Tensor, gan: torch.Tensor, detail: float) -> torch.Tensor:
    """The blend of two output images in [0, 1] (fp32): what `DetailBlend` returns for one input."""
    return torch.lerp(psnr.float().clamp(0.0, 1.0), gan.float().clamp(0.0, 1.0), detail)


class DetailBlend(nn.Module):
    """(1 - detail) * psnr(x) + detail * gan(x), each clamped to the [0, 1] of an image first (so
    the result is the blend of the two output images), in fp32 whatever the networks ran in."""

    def __init__(self, psnr: Forward, gan: Forward, detail: float) -> None:
        super().__init__()
        self.psnr, self.gan, self.detail = psnr, gan, check_detail(detail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blend_outputs(self.psnr(x), self.gan(x), self.detail)
