"""SRResNet, the SRGAN generator (Ledig et al. 2017, Figure 4, top).

The whole network in one file: a 9x9 head, B residual blocks, a long skip, log2(scale)
pixel-shuffle upsamplers and a 9x9 tail. Inputs and outputs are RGB in [0, 1].
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
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


class _SingleSlopePReLU(torch.autograd.Function):
    """PReLU with one slope as leaky_relu plus a hand-written backward.

    PyTorch's own PReLU backward on the CPU is slow for bf16 channels_last maps (it reduces the
    slope gradient in bf16, element by element), slower than this leaky_relu form
    (docs/performance.md). Same maths; the slope gradient is summed in fp32 over per-channel
    partial sums.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.slope = float(weight.detach())
        ctx.save_for_backward(x)
        ctx.weight_dtype = weight.dtype
        return F.leaky_relu(x, ctx.slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        (x,) = ctx.saved_tensors
        weight_dtype = ctx.weight_dtype
        gx = torch.ops.aten.leaky_relu_backward(grad, x, ctx.slope, False) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            # Per-channel partial sums first (PyTorch's CPU reduction accumulates them in fp32),
            # then their total in fp32: `sum(dtype=float32)` over the whole map would first copy
            # the map to fp32, and sums less exactly.
            acc = torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype
            prod = grad * x.clamp(max=0)
            gw = prod.sum(dim=[d for d in range(prod.dim()) if d != 1]).sum(dtype=acc).reshape(1).to(weight_dtype)
        return gx, gw


class PReLU(nn.PReLU):
    """nn.PReLU (same parameter, same state dict) whose CPU training path is `_SingleSlopePReLU`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and self.weight.numel() == 1 and torch.is_grad_enabled()
                and not torch.jit.is_tracing() and not torch.compiler.is_compiling()):
            return _SingleSlopePReLU.apply(x, self.weight)
        return super().forward(x)


def single_slope(act: nn.PReLU) -> float | None:
    """The PReLU's slope as a float when it has one parameter (then leaky_relu is the same map)."""
    return float(act.weight.detach().reshape(-1)[0]) if act.weight.numel() == 1 else None


def _phase_taps(k: int, r: int) -> tuple[torch.Tensor, int]:
    """Index map of `polyphase_weight` along one axis, and the low-resolution padding P.

    taps[a, a2, q] is the original kernel tap i that output phase `a` applies to input phase
    `a2` at low-resolution offset q - P, or k (a zero tap) when no original tap lands there.
    Output row r*Y + a reads input rows r*Y + a + i - p, i.e. low-res row Y + floor(t / r) and
    phase t mod r for t = a + i - p, hence i = r * (q - P) + a2 - a + p.
    """
    p = k // 2
    pad = math.ceil(p / r)
    q = torch.arange(2 * pad + 1)
    a = torch.arange(r)
    i = r * (q[None, None, :] - pad) + a[None, :, None] - a[:, None, None] + p
    return torch.where((i >= 0) & (i < k), i, k), pad


def polyphase_weight(weight: torch.Tensor, bias: torch.Tensor | None, r: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Rewrite conv2d(pixel_shuffle(z, r), weight, bias, padding=k//2) to act on z itself.

    weight: (O, C, k, k) with k odd (stride 1, zero 'same' padding, no groups or dilation).
    Returns (weight', bias', P) with weight' of shape (O*r^2, C*r^2, 2P+1, 2P+1), P = ceil(k//2 / r),
    such that pixel_shuffle(conv2d(z, weight', bias', padding=P), r) equals the original for any
    z of shape (N, C*r^2, H, W) (the output is (N, O, rH, rW)). Zero padding maps exactly: the
    full-resolution pixels outside the image are exactly the low-resolution padding's phases.
    """
    o, c, k, k2 = weight.shape
    if k != k2 or k % 2 == 0:
        raise ValueError(f"polyphase_weight needs a square, odd kernel, got {k}x{k2}")
    taps, pad = _phase_taps(k, r)
    taps = taps.to(weight.device)
    padded = F.pad(weight, (0, 1, 0, 1))  # tap index k reads this zero row / column
    # (O, C, a, a2, qy, b, b2, qx): rows indexed by (a, a2, qy), columns by (b, b2, qx).
    w = padded[:, :, taps[:, :, :, None, None, None], taps[None, None, None, :, :, :]]
    # Output channel o*r^2 + a*r + b, input channel c*r^2 + a2*r + b2: PixelShuffle's order.
    w = w.permute(0, 2, 5, 1, 3, 6, 4, 7).reshape(o * r * r, c * r * r, 2 * pad + 1, 2 * pad + 1)
    return w.contiguous(), None if bias is None else bias.repeat_interleave(r * r), pad


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the identity. Shape-preserving (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = PReLU()
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
        self.act = PReLU()

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
        self.head = nn.Sequential(nn.Conv2d(config.in_channels, c, 9, padding=4), PReLU())
        self.body = nn.Sequential(*(ResidualBlock(c) for _ in range(config.num_blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        self.upsample = nn.Sequential(*(Upsample2x(c) for _ in range(int(math.log2(config.scale)))))
        self.tail = nn.Conv2d(c, config.out_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        for up in self.upsample[:-1]:
            feat = up(feat)
        # The last upsampler and the tail, polyphase (see `polyphase_weight`): the same sums as
        # tail(shuffle(prelu(conv(feat)))), but the 9x9 C -> 3 conv at full resolution, which
        # oneDNN runs at a third of its rate (and its backward worse), becomes a 5x5 4C -> 12
        # conv before the shuffle, and the C-channel full-resolution map is never built.
        # The PReLU moves before the shuffle: pre-shuffle channel c*r^2 + j is output channel c.
        last = self.upsample[-1]
        r = last.shuffle.upscale_factor
        z = last.conv(feat)
        z = last.act(z) if last.act.weight.numel() == 1 else F.prelu(z, last.act.weight.repeat_interleave(r * r))
        weight, bias, pad = polyphase_weight(self.tail.weight, self.tail.bias, r)
        out = F.pixel_shuffle(F.conv2d(z, weight, bias, padding=pad), r)
        return out if self.training else out.clamp(0.0, 1.0)
