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
rows come out; pixel shuffles and activations act on each band as it passes. BatchNorms are
folded into their convs (eval mode), weights are cast once to the run's dtype.

Images wider than `MAX_STRIP` LR px are cut into vertical strips that overlap by the receptive
radius (exact, like tiles, but only at the few strip edges).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import Generator
from ..models.srresnet import polyphase_weight

# LR pixels per band: 8k keeps one 64-channel bf16 band at 1 MB, the L2 of one core (measured
# on Zen 4: 8k beat 16k and 32k by 3-8% at 512^2 and 1000x750), and at least MIN_BAND rows so
# the k - 1 rows of each line buffer stay a small part of the work.
BAND_PIXELS = 8192
MIN_BAND = 8
# Below this many LR pixels the whole image in one forward is as cache-friendly and skips the
# line-buffer copies (Zen 4: 5% faster at 256^2; streaming 27% faster at 512^2).
STREAM_MIN_PIXELS = 2 * 256 * 256
# Widest strip streamed in one piece (LR px); wider images are split into overlapping strips.
MAX_STRIP = 2048


class _Conv:
    """A 'same'-padded stride-1 conv over a stream of row bands (a k - 1 row line buffer)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight, self.bias = weight, bias
        self.k = weight.shape[-1]
        self.pad = self.k // 2
        self.held: torch.Tensor | None = None

    def _rows(self, x: torch.Tensor) -> torch.Tensor | None:
        inp = x if self.held is None else torch.cat([self.held, x], dim=2)
        if inp.shape[2] < self.k:
            self.held = inp
            return None
        self.held = inp[:, :, inp.shape[2] - (self.k - 1):]
        return F.conv2d(inp, self.weight, self.bias, padding=(0, self.pad))

    def push(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.held is None and self.pad:  # the zero rows above the image
            self.held = x.new_zeros(x.shape[0], x.shape[1], self.pad, x.shape[3]).contiguous(
                memory_format=torch.channels_last)
        return self._rows(x)

    def flush(self) -> torch.Tensor | None:
        if self.held is None or not self.pad:
            return None
        zeros = self.held.new_zeros(*self.held.shape[:2], self.pad, self.held.shape[3]).contiguous(
            memory_format=torch.channels_last)
        return self._rows(zeros)


class _Map:
    """A row-wise function (activation, pixel shuffle): no state."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def push(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

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

    def flush(self) -> torch.Tensor | None:
        carry = None
        for s in self.stages:
            carry = _cat([s.push(carry) if carry is not None else None, s.flush()])
        return carry


class _Residual:
    """x + branch(x): x's rows wait in a FIFO until the branch's matching rows come out."""

    def __init__(self, branch: _Chain) -> None:
        self.branch = branch
        self.fifo: deque[torch.Tensor] = deque()

    def _add(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if y is None:
            return None
        need, parts = y.shape[2], []
        while need:
            head = self.fifo[0]
            take = min(need, head.shape[2])
            parts.append(head[:, :, :take])
            if take == head.shape[2]:
                self.fifo.popleft()
            else:
                self.fifo[0] = head[:, :, take:]
            need -= take
        return y.add_(_cat(parts))

    def push(self, x: torch.Tensor) -> torch.Tensor | None:
        self.fifo.append(x)
        return self._add(self.branch.push(x))

    def flush(self) -> torch.Tensor | None:
        return self._add(self.branch.flush())


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, dtype: torch.dtype) -> _Conv:
    """conv followed by an eval-mode BatchNorm as one conv (computed in fp32, then cast)."""
    w = conv.weight.detach().float()
    b = conv.bias.detach().float() if conv.bias is not None else torch.zeros(w.shape[0], device=w.device)
    if bn is not None:
        g = bn.weight.detach().float() / torch.sqrt(bn.running_var.float() + bn.eps)
        w = w * g.view(-1, 1, 1, 1)
        b = (b - bn.running_mean.float()) * g + bn.bias.detach().float()
    return _Conv(w.to(dtype).contiguous(memory_format=torch.channels_last), b.to(dtype))


def _act(prelu: nn.PReLU, repeat: int = 1) -> _Map:
    """The PReLU in place (leaky_relu_ for one slope); per-channel slopes repeated for pre-shuffle maps."""
    w = prelu.weight.detach()
    if w.numel() == 1:
        slope = float(w)
        return _Map(lambda x: F.leaky_relu_(x, slope))
    w = w.repeat_interleave(repeat)
    return _Map(lambda x: F.prelu(x, w.to(x.dtype)))


def _network(gen: Generator, dtype: torch.dtype) -> _Chain:
    """gen (eval mode) as fresh streaming stages, weights folded and cast to dtype."""
    blocks = [_Residual(_Chain([_folded(b.conv1, b.bn1, dtype), _act(b.act), _folded(b.conv2, b.bn2, dtype)]))
              for b in gen.body]
    body = _Residual(_Chain(blocks + [_folded(gen.body_tail[0], gen.body_tail[1], dtype)]))
    stages = [_folded(gen.head[0], None, dtype), _act(gen.head[1]), body]
    for up in gen.upsample[:-1]:
        r = up.shuffle.upscale_factor
        stages += [_folded(up.conv, None, dtype), _Map(lambda x, r=r: F.pixel_shuffle(x, r)), _act(up.act)]
    last = gen.upsample[-1]
    r = last.shuffle.upscale_factor
    w, b, _ = polyphase_weight(gen.tail.weight.detach().float(), gen.tail.bias.detach().float(), r)
    stages += [_folded(last.conv, None, dtype), _act(last.act, r * r),
               _Conv(w.to(dtype).contiguous(memory_format=torch.channels_last), b.to(dtype)),
               _Map(lambda x: F.pixel_shuffle(x, r))]
    return _Chain(stages)


def _strips(width: int, radius: int) -> list[tuple[int, int, int, int]]:
    """(x0, x1, px0, px1): core columns and padded columns of each vertical strip."""
    if width <= MAX_STRIP:
        return [(0, width, 0, width)]
    n = -(-width // (MAX_STRIP - 2 * radius))
    edges = np.linspace(0, width, n + 1).round().astype(int)
    return [(int(a), int(b), max(0, int(a) - radius), min(width, int(b) + radius)) for a, b in zip(edges, edges[1:])]


def stream_rows(gen: Generator, image: np.ndarray, dtype: torch.dtype,
                band_pixels: int = BAND_PIXELS) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Run `gen` over an (H, W, 3) uint8/uint16 image; yields (y0, x0, rows): `rows` is a
    (1, 3, n, w) float band of the output whose top-left pixel is (y0, x0), top to bottom
    within each strip (quantizing and placing it is the engine's job).

    Same output as the whole image in one forward (up to float rounding), on gen's device.
    """
    if not isinstance(gen, Generator) or gen.config.in_channels != 3 or gen.config.out_channels != 3:
        raise TypeError("stream_rows needs an RGB srgan Generator")
    device = next(gen.parameters()).device
    maxval = float(np.iinfo(image.dtype).max)
    h, w = image.shape[:2]
    s = gen.scale
    with torch.no_grad():
        for x0, x1, px0, px1 in _strips(w, gen.config.receptive_radius):
            net = _network(gen, dtype)
            band = max(MIN_BAND, band_pixels // (px1 - px0))
            y_out = 0
            for y0 in range(0, h + band, band):  # the last pass (y0 >= h) drains the pipeline
                if y0 < h:
                    chunk = torch.from_numpy(np.require(image[y0 : y0 + band, px0:px1], requirements=["C", "W"]))
                    x = chunk.to(device).permute(2, 0, 1)[None].float().div_(maxval).to(dtype).contiguous(
                        memory_format=torch.channels_last)
                    y = net.push(x)
                else:
                    y = net.flush()
                if y is not None:
                    yield y_out, x0 * s, y[..., (x0 - px0) * s : (x1 - px0) * s]
                    y_out += y.shape[2]
