"""Locally discriminative learning (LDL, Liang, Zeng and Zhang, CVPR 2022): an artifact penalty.

GAN training mixes real detail with artifacts (fake edges, speckle, lattices). LDL's
observation: artifacts are where the output's error is *locally irregular* and where the
current model is worse than its own moving average (whose outputs are stabler). The map:
local variance (k x k window) of the output's absolute residual, times the patch's residual
variance to the power 1/5 (so flat, easy patches count little), set to 0 wherever the output
is closer to HR than the EMA model's output is. The loss is the L1 distance of SR and HR under
that map: it pulls back only the pixels that look like artifacts and leaves texture alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def local_variance(x: torch.Tensor, k: int) -> torch.Tensor:
    """Unbiased variance of every k x k window (reflect-padded), same size as the (N, 1, H, W) input."""
    pad = k // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(padded, k, stride=1)
    mean_sq = F.avg_pool2d(padded * padded, k, stride=1)
    n = k * k
    return ((mean_sq - mean * mean) * n / (n - 1)).clamp_min(0)


def artifact_map(sr: torch.Tensor, hr: torch.Tensor, ema_sr: torch.Tensor, k: int = 7) -> torch.Tensor:
    """(N, 1, H, W) weights, large on likely artifacts; no gradient flows through the map."""
    with torch.no_grad():
        residual = (hr - sr).abs().sum(dim=1, keepdim=True)
        residual_ema = (hr - ema_sr).abs().sum(dim=1, keepdim=True)
        patch = residual.var(dim=(1, 2, 3), keepdim=True) ** 0.2
        weight = patch * local_variance(residual, k)
        return weight.masked_fill(residual < residual_ema, 0.0)


def artifact_loss(sr: torch.Tensor, hr: torch.Tensor, ema_sr: torch.Tensor, k: int = 7) -> torch.Tensor:
    """Mean |map * (SR - HR)|, the LDL term (its weight in the paper: 1)."""
    sr, hr = sr.float(), hr.float()
    return (artifact_map(sr, hr, ema_sr.float(), k) * (sr - hr)).abs().mean()
