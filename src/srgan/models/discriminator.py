"""The SRGAN discriminator (Ledig et al. 2017, Figure 4, bottom)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# (filters, stride) of the eight 3x3 convolutions, as in the paper.
_PAPER_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2),
)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """`input_size` is the HR crop the dense layer is sized for (96 in the paper -> 6x6x512)."""

    input_size: int = 96
    in_channels: int = 3
    base_channels: int = 64
    dense: int = 1024

    def __post_init__(self) -> None:
        if self.input_size < 16 or self.input_size % 16:
            raise ValueError(f"DiscriminatorConfig.input_size must be a multiple of 16 >= 16, got {self.input_size}")


class Discriminator(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, 1) logits (not probabilities; use BCE-with-logits).

    The four stride-2 convs reduce H, W by 16. The paper feeds 96x96 crops, giving 6x6x512
    features for the dense layer; other crop sizes are adaptively average-pooled to that grid,
    which is the identity at the configured size.
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_ch = config.in_channels
        widen = config.base_channels / 64
        for i, (filters, stride) in enumerate(_PAPER_LAYERS):
            out_ch = int(filters * widen)
            layers.append(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=i == 0))
            if i > 0:  # no BN after the first conv, as in the paper
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        grid = config.input_size // 16
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_ch * grid * grid, config.dense),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(config.dense, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.pool(self.features(x))
        # The dense layer in fp32 even under autocast: casting its 18.9M weights to bf16 on every
        # call costs more than the fp32 matmul on a batch of crops.
        with torch.autocast(x.device.type, enabled=False):
            return self.classifier(feat.float())
