"""Network interpolation (Wang et al., ESRGAN 2018, section 3.4): a dial between fidelity and detail.

The PSNR-trained and the GAN-trained generator share one architecture and, because the GAN
phase starts from the PSNR model, one basin of weights: blending their parameters,
(1 - a) * psnr + a * gan, gives a model whose outputs move smoothly from faithful-but-smooth
(a = 0) to detailed (a = 1), with fewer artifacts than blending the output images, and at no
extra inference cost. BatchNorm running statistics are blended the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .srresnet import Generator


def interpolate_state_dicts(psnr: Mapping[str, torch.Tensor], gan: Mapping[str, torch.Tensor],
                            detail: float) -> dict[str, torch.Tensor]:
    """(1 - detail) * psnr + detail * gan for every floating tensor; integer counters from `gan`. Pure."""
    if not 0.0 <= detail <= 1.0:
        raise ValueError(f"detail must be in [0, 1], got {detail}")
    if set(psnr) != set(gan):
        raise ValueError("the two generators have different tensors; interpolation needs one architecture")
    out = {}
    for key, a in psnr.items():
        b = gan[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
        out[key] = torch.lerp(a.float(), b.float(), detail).to(a.dtype) if a.is_floating_point() else b.clone()
    return out


def blend_generators(psnr: Generator, gan: Generator, detail: float) -> Generator:
    """A new Generator at `detail` between `psnr` (0) and `gan` (1), in eval mode on `gan`'s device."""
    if psnr.config != gan.config:
        raise ValueError(f"cannot blend generators of different architectures: {psnr.config} vs {gan.config}")
    model = Generator(gan.config)
    model.load_state_dict(interpolate_state_dicts(psnr.state_dict(), gan.state_dict(), detail))
    device = next(gan.parameters()).device
    return model.to(device).eval()
