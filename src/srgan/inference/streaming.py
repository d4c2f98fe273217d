"""Row-streaming SRResNet inference: the whole image in bands of rows, exact, in cache.

Large maps run a conv at a fraction of its in-cache rate (docs/performance.md: a 3x3 64 -> 64
bf16 conv on a 512^2 map is ~20% slower per FLOP than on 128^2, and every BatchNorm, PReLU and
residual add is a memory-bound pass over the whole map), while tiles that fit in cache
recompute their overlap (tiles of 128 px with SRResNet's 41 px radius do 2.7x the work).

Streaming does neither. Each layer is a stage that receives its input a few rows at a time and
keeps only the k - 1 rows its kernel still needs from the previous band (a line buffer), so
every output row is computed once, from the same sums as a whole-image pass, and the live
activations are a few bands of rows per layer: they stay in cache, and memory no longer grows
with the image height. Residual adds hold their input rows in a short FIFO until the branch's
rows come out; pixel shuffles act on each band as it passes. BatchNorms are folded into their
convs (eval mode), weights are cast once to the run's dtype, and on the CPU one-slope PReLUs
and residual adds run in the conv's epilogue (oneDNN's fused conv ops), so no band is read and
written again just to activate or add it. Small images skip the line buffers: one pass over the
whole strip (`ONE_PASS_PIXELS`).

Images wider than `MAX_STRIP` LR px are cut into vertical strips that overlap by the receptive
radius (exact, like tiles, but only at the few strip edges).
"""

from __future__ import annotations

import platform
from collections import deque
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import Generator
from ..models.srresnet import polyphase_weight, single_slope
from .tiling import Tile, plan_tiles

# LR pixels per band: 8k keeps one 64-channel bf16 band at 1 MB, about one core's L2, and at
# least MIN_BAND rows so the k - 1 rows of each line buffer stay a small part of the work (the
# band-size sweep is in docs/performance.md).
BAND_PIXELS = 8192
MIN_BAND = 8
# Up to this many LR pixels a strip runs in one pass, zero-padded, without line buffers: on small
# images the copies into each conv's line buffer cost more than the cache misses they save
# (docs/performance.md), and the memory is that of a whole-image forward.
ONE_PASS_PIXELS = 2 * 256 * 256
# Widest strip streamed in one piece (LR px); wider images are split into overlapping strips.
MAX_STRIP = 2048


def _fusable(dtype: torch.dtype) -> bool:
    """oneDNN's fused conv + activation / + add, as PyTorch exposes it for Inductor, on x86 in
    fp32 and bf16; elsewhere (fp16, Arm builds) the plain ops run, with the same output."""
    return (dtype in (torch.float32, torch.bfloat16) and platform.machine().lower() in ("x86_64", "amd64")
            and torch.backends.mkldnn.is_available())


class _Conv:
    """A 'same'-padded stride-1 conv over a stream of row bands (a k - 1 row line buffer),
    optionally followed by a leaky ReLU (a one-slope PReLU) or by a residual add, fused into the
    conv by oneDNN on the CPU: where the convs run fast, a separate memory-bound pass over each
    band for the activation or the add costs a large share of the conv's own time
    (docs/performance.md)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, slope: float | None = None) -> None:
        self.weight, self.bias, self.slope = weight, bias, slope
        self.k = weight.shape[-1]
        self.pad = self.k // 2
        self.held: torch.Tensor | None = None
        self.fused = weight.device.type == "cpu" and _fusable(weight.dtype)

    def _apply(self, inp: torch.Tensor, skip: torch.Tensor | None, pad_rows: int = 0) -> torch.Tensor:
        # oneDNN's add epilogue takes no leaky ReLU after it (SRResNet has none after its adds).
        assert skip is None or self.slope is None, "a streaming conv fuses an activation or an add, not both"
        pad, one = [pad_rows, self.pad], [1, 1]
        if self.fused and skip is not None:
            return torch.ops.mkldnn._convolution_pointwise.binary(
                inp, skip, self.weight, self.bias, pad, one, one, 1, "add", None, None, [], None)
        if self.fused:
            attr, scalars = ("none", []) if self.slope is None else ("leaky_relu", [self.slope])
            return torch.ops.mkldnn._convolution_pointwise(inp, self.weight, self.bias, pad, one, one, 1,
                                                           attr, scalars, "")
        y = F.conv2d(inp, self.weight, self.bias, padding=pad)
        if self.slope is not None:
            F.leaky_relu_(y, self.slope)
        return y if skip is None else y.add_(skip)

    def _rows(self, x: torch.Tensor, skip) -> torch.Tensor | None:
        inp = x if self.held is None else torch.cat([self.held, x], dim=2)
        if inp.shape[2] < self.k:
            self.held = inp
            return None
        self.held = inp[:, :, inp.shape[2] - (self.k - 1):]
        return self._apply(inp, None if skip is None else skip(inp.shape[2] - (self.k - 1)))

    def push(self, x: torch.Tensor, skip=None) -> torch.Tensor | None:
        """x: the next rows; skip(n), if given, returns the n rows to add to the output."""
        if self.held is None and self.pad:  # the zero rows above the image
            self.held = x.new_zeros(x.shape[0], x.shape[1], self.pad, x.shape[3]).contiguous(
                memory_format=torch.channels_last)
        return self._rows(x, skip)

    def whole(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """The conv over a whole image at once (zero-padded on all sides, no line buffer)."""
        return self._apply(x, skip, self.pad)

    def flush(self, skip=None) -> torch.Tensor | None:
        if self.held is None or not self.pad:
            return None
        zeros = self.held.new_zeros(*self.held.shape[:2], self.pad, self.held.shape[3]).contiguous(
            memory_format=torch.channels_last)
        return self._rows(zeros, skip)


class _Map:
    """A row-wise function (activation, pixel shuffle): no state."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def push(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    whole = push

    def flush(self) -> None:
        return None


def _cat(parts: list[torch.Tensor]) -> torch.Tensor | None:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


class _Chain:
    """Stages in sequence; a flush drains each stage into the next."""

    def __init__(self, stages: list) -> None:
        self.stages = stages

    def push(self, x: torch.Tensor | None) -> torch.Tensor | None:
        for s in self.stages:
            if x is None:
                return None
            x = s.push(x)
        return x

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        for s in self.stages:
            x = s.whole(x)
        return x

    def flush(self) -> torch.Tensor | None:
        carry = None
        for s in self.stages:
            carry = _cat([s.push(carry) if carry is not None else None, s.flush()])
        return carry


class _Residual:
    """x + last(branch(x)): x's rows wait in a FIFO until `last`, a conv, is about to produce
    the matching rows; it adds them in its own epilogue."""

    def __init__(self, branch: _Chain, last: _Conv) -> None:
        self.branch, self.last = branch, last
        self.fifo: deque[torch.Tensor] = deque()

    def _take(self, need: int) -> torch.Tensor:
        parts = []
        while need:
            head = self.fifo[0]
            take = min(need, head.shape[2])
            parts.append(head[:, :, :take])
            if take == head.shape[2]:
                self.fifo.popleft()
            else:
                self.fifo[0] = head[:, :, take:]
            need -= take
        return _cat(parts)

    def push(self, x: torch.Tensor) -> torch.Tensor | None:
        self.fifo.append(x)
        y = self.branch.push(x)
        return None if y is None else self.last.push(y, self._take)

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        return self.last.whole(self.branch.whole(x), x)

    def flush(self) -> torch.Tensor | None:
        y = self.branch.flush()
        return _cat([None if y is None else self.last.push(y, self._take), self.last.flush(self._take)])


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, dtype: torch.dtype,
            slope: float | None = None) -> _Conv:
    """conv followed by an eval-mode BatchNorm as one conv (computed in fp32, then cast)."""
    w = conv.weight.detach().float()
    b = conv.bias.detach().float() if conv.bias is not None else torch.zeros(w.shape[0], device=w.device)
    if bn is not None:
        g = bn.weight.detach().float() / torch.sqrt(bn.running_var.float() + bn.eps)
        w = w * g.view(-1, 1, 1, 1)
        b = (b - bn.running_mean.float()) * g + bn.bias.detach().float()
    return _Conv(w.to(dtype).contiguous(memory_format=torch.channels_last), b.to(dtype), slope)


def _conv_act(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, prelu: nn.PReLU, dtype: torch.dtype,
              repeat: int = 1) -> list:
    """conv (and BatchNorm) then PReLU. One slope is a leaky ReLU fused into the conv; per-channel slopes
    (repeated for a map before its pixel shuffle) stay a separate stage."""
    slope = single_slope(prelu)
    if slope is not None:
        return [_folded(conv, bn, dtype, slope=slope)]
    w = prelu.weight.detach().repeat_interleave(repeat)
    return [_folded(conv, bn, dtype), _Map(lambda x: F.prelu(x, w.to(x.dtype)))]


def _network(gen: Generator, dtype: torch.dtype) -> _Chain:
    """gen (eval mode) as fresh streaming stages, weights folded and cast to dtype.

    Every activation acts before its pixel shuffle (elementwise, so the order does not matter
    with one slope; per-channel slopes are repeated to the pre-shuffle channels)."""
    blocks = [_Residual(_Chain(_conv_act(b.conv1, b.bn1, b.act, dtype)), _folded(b.conv2, b.bn2, dtype))
              for b in gen.body]
    body = _Residual(_Chain(blocks), _folded(gen.body_tail[0], gen.body_tail[1], dtype))
    stages = [*_conv_act(gen.head[0], None, gen.head[1], dtype), body]
    for up in gen.upsample:
        r = up.shuffle.upscale_factor
        stages += _conv_act(up.conv, None, up.act, dtype, r * r)
        if up is not gen.upsample[-1]:
            stages.append(_Map(lambda x, r=r: F.pixel_shuffle(x, r)))
    w, b, _ = polyphase_weight(gen.tail.weight.detach().float(), gen.tail.bias.detach().float(), r)
    stages += [_Conv(w.to(dtype).contiguous(memory_format=torch.channels_last), b.to(dtype)),
               _Map(lambda x: F.pixel_shuffle(x, r))]
    return _Chain(stages)


def _strips(width: int, radius: int) -> list[Tile]:
    """The vertical strips an image is streamed in (tiling.plan_tiles over one row of pixels):
    the whole width up to MAX_STRIP, else strips of at most MAX_STRIP padded columns."""
    return plan_tiles(1, width, width if width <= MAX_STRIP else MAX_STRIP - 2 * radius, radius)


def stream_rows(gen: Generator, image: np.ndarray, dtype: torch.dtype,
                band_pixels: int | None = None) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Run `gen` over an (H, W, 3) uint8/uint16 image; yields (y0, x0, rows): `rows` is a
    (1, 3, n, w) float band of the output whose top-left pixel is (y0, x0), top to bottom
    within each strip (quantizing and placing it is the engine's job). band_pixels: LR pixels
    per band (default BAND_PIXELS, read at call time).

    Same output as the whole image in one forward (up to float rounding), on gen's device.
    """
    if not isinstance(gen, Generator) or gen.config.in_channels != 3 or gen.config.out_channels != 3:
        raise TypeError("stream_rows needs an RGB srgan Generator")
    device = next(gen.parameters()).device
    maxval = float(np.iinfo(image.dtype).max)
    h, w = image.shape[:2]
    s = gen.scale
    def rows(y0: int, y1: int, px0: int, px1: int) -> torch.Tensor:
        chunk = torch.from_numpy(np.require(image[y0:y1, px0:px1], requirements=["C", "W"]))
        return chunk.to(device).permute(2, 0, 1)[None].float().div_(maxval).to(dtype).contiguous(
            memory_format=torch.channels_last)

    with torch.no_grad():
        for strip in _strips(w, gen.config.receptive_radius):
            x0, x1, px0, px1 = strip.x0, strip.x1, strip.px0, strip.px1
            net = _network(gen, dtype)
            crop = slice((x0 - px0) * s, (x1 - px0) * s)
            band = max(MIN_BAND, (band_pixels or BAND_PIXELS) // (px1 - px0))
            if band >= h or h * (px1 - px0) <= ONE_PASS_PIXELS:
                yield 0, x0 * s, net.whole(rows(0, h, px0, px1))[..., crop]
                continue
            y_out = 0
            for y0 in range(0, h + band, band):  # the last pass (y0 >= h) drains the pipeline
                y = net.push(rows(y0, y0 + band, px0, px1)) if y0 < h else net.flush()
                if y is not None:
                    yield y_out, x0 * s, y[..., crop]
                    y_out += y.shape[2]
