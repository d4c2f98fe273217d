"""The GAN losses, computed from logits for numerical stability."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(LR)) averaged over the batch (the paper's non-saturating generator loss)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy terms (real HR -> 1, generated SR -> 0); D minimises their sum."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)),
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


# Relativistic average GAN (Jolicoeur-Martineau 2018, as ESRGAN uses it): D estimates whether
# real data is *more realistic than the average fake* (and vice versa) instead of an absolute
# "real" probability. The generator then gets gradients from real images too, which ESRGAN
# found gives sharper edges and more detailed texture. Logits may be (N, 1) or per-pixel
# (N, 1, H, W); the average is over every logit of the batch.


def ragan_discriminator_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(real term, fake term): real more realistic than the mean fake -> 1, fake than the mean real -> 0."""
    real = real_logits - fake_logits.mean()
    fake = fake_logits - real_logits.mean()
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def ragan_generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side, the two labels swapped and averaged; `real_logits` carry no gradient."""
    real = real_logits - fake_logits.mean()
    fake = fake_logits - real_logits.mean()
    return 0.5 * (F.binary_cross_entropy_with_logits(real, torch.zeros_like(real))
                  + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)))
