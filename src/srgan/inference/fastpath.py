"""An inference-only rewrite of SRResNet with the same output and less work.

`InferenceGenerator.from_generator(gen)` builds, from a `Generator`'s current weights, a module
computing exactly what `gen.eval()(x)` computes (up to float rounding), restructured for speed:

* The final 9x9 conv (C -> 3 channels at full output resolution) is rewritten *polyphase*: a
  stride-1 conv applied after PixelShuffle(r) equals a conv with r^2 times the input and output
  channels and a ceil(p/r)-radius kernel applied *before* the shuffle, followed by
  PixelShuffle(r) of its output (see `polyphase_weight`). This is an exact reformulation, not an
  approximation: every output pixel sums the same products. For SRResNet x4 the tail becomes a
  256 -> 12, 5x5 conv at 2x resolution (1.23x the multiply-adds, but in a shape oneDNN/cuDNN run
  far better than 64 -> 3 at 4x), and the 64-channel full-resolution tensor is never built.
  (The measured gains are in docs/performance.md.)
* The PReLU after the last upsampling conv runs in place (leaky_relu_ when it has a single
  slope, as SRResNet's do), so the largest activation is not duplicated, which allows larger
  tiles for the same memory budget.

BatchNorms stay separate modules here: on this path folding them into the convs measured no
gain (docs/performance.md, on the CPU). The CPU's row streaming (`streaming.py`) does fold them,
since there each pass it saves is a pass over every band.

Weights are snapshotted at build time: rebuild after the generator's weights change (the
engine builds one per `upscale_array` call, which costs a few milliseconds).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import DetailBlend, Generator
from ..models.descriptor import SRModel
from ..models.detail import blend_outputs
from ..models.srresnet import polyphase_weight, single_slope
from .streaming import stream_rows


class InferenceGenerator(nn.Module):
    """Eval-mode SRResNet, restructured: (N, C_in, H, W) in [0, 1] -> (N, C_out, sH, sW) in [0, 1].

    Same output as `Generator.eval()` up to float rounding (fp32: ~1e-6; under bf16 autocast
    within the usual bf16 noise, > 50 dB PSNR). Not trainable: parameters are frozen copies,
    and BatchNorms use their running statistics.
    """

    def __init__(self, gen: Generator) -> None:
        super().__init__()
        if not self.supports(gen):
            raise TypeError(f"InferenceGenerator needs a plain srgan Generator, got {type(gen).__name__}")
        self.config = gen.config
        self.scale = gen.scale
        with torch.no_grad():
            # Copies, not shared modules: freezing or re-laying-out must not touch `gen`.
            self.head = copy.deepcopy(gen.head)
            self.body = copy.deepcopy(gen.body)
            self.body_tail = copy.deepcopy(gen.body_tail)
            self.upsample = copy.deepcopy(gen.upsample[:-1])
            last = gen.upsample[-1]
            self.last_conv = copy.deepcopy(last.conv)
            self.last_factor = last.shuffle.upscale_factor
            # The PReLU after the last shuffle acts on pre-shuffle channel c*r^2 + j as on channel c.
            self.last_slope = single_slope(last.act)
            self.register_buffer("last_prelu", last.act.weight.detach().repeat_interleave(
                self.last_factor**2 if last.act.weight.numel() > 1 else 1))
            tail = gen.tail
            weight, bias, self.tail_pad = polyphase_weight(tail.weight.float(), tail.bias.float(), self.last_factor)
            self.tail = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=self.tail_pad,
                                  device=weight.device)
            self.tail.weight.copy_(weight)
            self.tail.bias.copy_(bias)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def supports(gen: nn.Module) -> bool:
        """True for Generators whose forward is SRResNet's (subclasses may change the maths)."""
        return isinstance(gen, Generator) and type(gen).forward is Generator.forward and len(gen.upsample) > 0

    @classmethod
    def from_generator(cls, gen: Generator) -> "InferenceGenerator":
        """Snapshot `gen`'s weights; the result lives on gen's device, in channels_last layout."""
        return cls(gen).to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = self.body_tail(self.body(feat)).add_(feat)
        feat = self.upsample(feat)
        z = self.last_conv(feat)
        del feat  # free the input of the largest conv before the tail allocates
        if self.last_slope is not None:
            z = F.leaky_relu_(z, self.last_slope)
        else:
            z = F.prelu(z, self.last_prelu.to(z.dtype))
        out = F.pixel_shuffle(self.tail(z), self.last_factor)
        return out.clamp_(0.0, 1.0)


# Peak memory of SRResNet inference per padded LR pixel, in units of
# channels * scale^2 * bytes-per-element. With the fast path the peak is the last upsampler
# (its 4C-channel input at scale/2 resolution and its output, PReLU in place), about 1.3 units
# (docs/performance.md); 1.5 keeps a margin.
_ACTIVATION_FACTOR = 1.5


def srresnet_model(gen: Generator, name: str = "", source: str = "") -> SRModel:
    """The descriptor of an SRResNet Generator: the fast rewrite when its forward allows it.

    The rewrite is snapshotted from the generator's weights at each `build()` (once per engine
    call, a few milliseconds), so a generator being trained can be described once. Generators
    with a custom forward run as they are (their convs still see channels_last tiles).
    """
    cfg = gen.config

    def build() -> nn.Module:
        gen.eval()
        return InferenceGenerator.from_generator(gen) if InferenceGenerator.supports(gen) else gen

    def stream(image: np.ndarray, dtype: torch.dtype):
        gen.eval()
        return stream_rows(gen, image, dtype)

    streams = InferenceGenerator.supports(gen) and cfg.in_channels == cfg.out_channels == 3

    return SRModel(
        name=name or getattr(gen, "source", "") or "srresnet", arch="SRResNet", scale=cfg.scale,
        in_channels=cfg.in_channels, out_channels=cfg.out_channels, tile_overlap=cfg.receptive_radius,
        activation_elems=_ACTIVATION_FACTOR * cfg.channels * cfg.scale**2,
        device=next(gen.parameters()).device, build=build, precisions=frozenset({"fp32", "bf16", "fp16"}),
        module=gen, source=source or getattr(gen, "source", ""), stream=stream if streams else None,
    )


def as_sr_model(model: SRModel | Generator) -> SRModel:
    """Accept a Generator wherever an SRModel is expected (the one place that converts)."""
    if isinstance(model, SRModel):
        return model
    if isinstance(model, Generator):
        return srresnet_model(model)
    raise TypeError(f"expected an SRModel (srgan.load_model) or an srgan Generator, got {type(model).__name__}")


def detail_blend_model(psnr: Generator, gan: Generator, detail: float, name: str, source: str = "") -> SRModel:
    """The descriptor of the detail dial between two SRResNets: both run (fast path, streamed on
    the CPU, band for band) and their outputs are blended, (1 - detail) * psnr + detail * gan."""
    if psnr.config != gan.config:
        raise ValueError(f"cannot blend generators of different architectures: {psnr.config} vs {gan.config}")
    a, b = srresnet_model(psnr), srresnet_model(gan)

    def build() -> nn.Module:
        return DetailBlend(a.build(), b.build(), detail)

    def stream(image: np.ndarray, dtype: torch.dtype):
        # Same config and image, so both yield the same bands in the same order. Each stream
        # holds torch.no_grad() across its yields and restores the grad mode it found when it
        # ends; interleaved, the later one would restore the earlier one's no_grad, so both run
        # inside one no_grad of this stream's and are closed before it ends.
        with torch.no_grad():
            psnr_bands, gan_bands = a.stream(image, dtype), b.stream(image, dtype)
            try:
                for (y0, x0, u), (_, _, v) in zip(psnr_bands, gan_bands):
                    yield y0, x0, blend_outputs(u, v, detail)
            finally:
                psnr_bands.close()
                gan_bands.close()

    return replace(b, name=name, source=source, build=build, module=DetailBlend(psnr, gan, detail),
                   stream=stream if b.stream is not None else None)
