"""SRResNet, the SRGAN generator (Ledig et al. 2017, Figure 4, top).

The whole network in one file: a 9x9 head, B residual blocks, a long skip, log2(scale)
pixel-shuffle upsamplers and a 9x9 tail. Inputs and outputs are RGB in [0, 1].
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of an SRResNet generator; the paper's model is the default."""

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64
    in_channels: int = 3
    out_channels: int = 3

    def __post_init__(self) -> None:
        for name in ("scale", "num_blocks", "channels", "in_channels", "out_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"GeneratorConfig.{name} must be an int, got {value!r}")
        if self.scale not in (2, 4, 8):
            raise ValueError(f"GeneratorConfig.scale must be 2, 4 or 8, got {self.scale}")
        if not 1 <= self.num_blocks <= 256:
            raise ValueError(f"GeneratorConfig.num_blocks must be in 1..256, got {self.num_blocks}")
        if not 1 <= self.channels <= 1024:
            raise ValueError(f"GeneratorConfig.channels must be in 1..1024, got {self.channels}")
        if self.in_channels not in (1, 3) or self.out_channels not in (1, 3):
            raise ValueError("GeneratorConfig in/out channels must be 1 or 3")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "GeneratorConfig":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"generator config must be a JSON object, got {text[:80]!r}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown generator config keys: {sorted(unknown)}")
        return cls(**data)

    @property
    def receptive_radius(self) -> int:
        """How many LR pixels on each side influence one output pixel (rounded up).

        Head 9x9 (4) + two 3x3 per block + the 3x3 before the long skip, all at LR; one 3x3 per
        upsampler at 1x, 2x, 4x... resolution (1, 1/2, 1/4... LR px); the 9x9 tail at full
        resolution (4 / scale LR px). Tiles overlapping by this much are exactly seamless.
        """
        stages = int(math.log2(self.scale))
        radius = 4 + 2 * self.num_blocks + 1 + sum(1 / 2**i for i in range(stages)) + 4 / self.scale
        return math.ceil(radius)

    @property
    def flops_per_lr_pixel(self) -> int:
        """Forward FLOPs (2 per multiply-add, convolutions only) per input (LR) pixel.

        Head 9x9 in->C and the 2B + 1 3x3 C->C convs at LR; upsampler i's 3x3 C->4C at 4^i
        times the LR pixel count; the 9x9 C->out tail at scale^2. 4.44 MFLOP for the paper's
        16 blocks, 64 channels, x4. Elementwise ops (BN, PReLU, adds) are left out.
        """
        c, k9, k3 = self.channels, 81, 9
        macs = self.in_channels * c * k9 + (2 * self.num_blocks + 1) * c * c * k3
        macs += sum(c * 4 * c * k3 * 4**i for i in range(int(math.log2(self.scale))))
        macs += c * self.out_channels * k9 * self.scale**2
        return 2 * macs


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the identity. Shape-preserving (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class Upsample2x(nn.Module):
    """conv3x3 C -> 4C, PixelShuffle(2), PReLU: (N, C, H, W) -> (N, C, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class Generator(nn.Module):
    """SRResNet: (N, 3, H, W) in [0, 1] -> (N, 3, scale*H, scale*W).

    In training mode the output is left unclamped so that the loss sees (and can pull back)
    values outside [0, 1]; in eval mode it is clamped to [0, 1], the range users receive.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        c = config.channels
        self.config = config
        self.scale = config.scale
        self.head = nn.Sequential(nn.Conv2d(config.in_channels, c, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlock(c) for _ in range(config.num_blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        self.upsample = nn.Sequential(*(Upsample2x(c) for _ in range(int(math.log2(config.scale)))))
        self.tail = nn.Conv2d(c, config.out_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        out = self.tail(self.upsample(feat))
        return out if self.training else out.clamp(0.0, 1.0)
