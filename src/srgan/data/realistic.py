"""Real-ESRGAN's second-order degradation (Wang et al., ICCVW 2021), made on the fly from HR batches.

Real photos are not bicubic downscales: they are blurred by lenses and motion, resized by
cameras and web pages, noisy, and JPEG-compressed, often more than once. A model trained on
bicubic LR upscales those defects too. Real-ESRGAN synthesises such LR by running a classical
degradation twice:

    blur (Gaussian / generalized Gaussian / plateau kernel or sinc) -> random resize ->
    Gaussian or Poisson noise (colour or gray) -> JPEG            ... then once more, and finally
    [resize to HR/scale + sinc filter] and JPEG, in random order.

`DegradationConfig` holds every probability and range, with Real-ESRGAN's published values
(options/train_realesrnet_x4plus.yml) as defaults and its option names, so a Real-ESRGAN
config can be ported key by key. The random draws are split in two, as in Real-ESRGAN:
per-batch choices (resize factor and mode, Gaussian vs Poisson, the second blur and the final
order) and per-image ones (kernels, noise strength and colour, JPEG quality). `sample_plan`
draws them all from generators seeded by (seed, step) and (seed, step, position in the global
batch), so the LR of an iteration is a pure function of those: a resumed run, or the batch
split over DDP ranks, makes the same LR as an uninterrupted single process on the same kind
of device. `apply_plan` then does the work on the whole batch in torch (the device's noise
generator is used, so CPU and CUDA streams differ); only JPEG leaves torch, through Pillow,
one image at a time.

Left out from Real-ESRGAN: its training-pair pool (a queue of 180 pairs that mixes batches
to vary the per-batch choices; it would make a batch depend on earlier iterations) and its
crop of 400 px GT before degrading (we degrade the training crop itself, borders reflected).
"""

from __future__ import annotations

import dataclasses
import io
import math
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..images import LUMA

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
_UP, _DOWN = 0, 1  # indices in resize_prob (up, down, keep)


@dataclass(frozen=True)
class DegradationConfig:
    """Probabilities and ranges of the two degradation stages; defaults are Real-ESRGAN's x4plus.

    Sigmas and noise levels are in pixels and 0-255 units; `*_range` fields are [low, high].
    Fields ending in 2 configure the second stage.
    """

    # Blur kernels: odd sizes from 7 to blur_kernel_size, chosen uniformly.
    blur_kernel_size: int = 21
    # First stage (the blur is always applied).
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # over KERNEL_TYPES
    sinc_prob: float = 0.1  # a sinc (ringing) kernel instead of one of KERNEL_TYPES
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)  # generalized Gaussian shape
    betap_range: tuple[float, float] = (1.0, 2.0)  # plateau shape
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # otherwise Poisson noise
    noise_range: tuple[float, float] = (1.0, 30.0)  # Gaussian sigma, 0-255 units
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4  # the same noise on all three channels
    jpeg_range: tuple[int, int] = (30, 95)
    # Second stage.
    second_blur_prob: float = 0.8
    kernel_prob2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[int, int] = (30, 95)
    # Final step: resize to HR/scale followed by this sinc filter (else none), before or after JPEG.
    final_sinc_prob: float = 0.8
    # Unsharp-mask the HR crop before degrading it and use it as the training target, as
    # Real-ESRGAN does (gt_usm): the model learns to output slightly crisper images than its data.
    usm_sharpen: bool = True
    # Not Real-ESRGAN's: the share of images whose LR is the plain antialiased bicubic downscale
    # of the unsharpened HR, which is then the target. A model trained on degraded LR alone
    # over-sharpens clean input (below bicubic PSNR on the benchmarks); these pairs teach it that a
    # clean input wants a faithful output. Drawn from its own stream: the other draws do not move.
    clean_prob: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f.name, getattr(self, f.name))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DegradationConfig":
        """From a TOML/JSON table; lists become tuples. Errors name the bad key."""
        if not isinstance(data, dict):
            raise ValueError(f"must be a table of options, got {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def summary(self) -> str:
        """One line for model cards: the options that differ from Real-ESRGAN's."""
        default = DegradationConfig()
        changed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)}
        options = ", ".join(f"{k}={v}" for k, v in changed.items()) or "Real-ESRGAN x4plus defaults"
        return f"realesrgan second-order (Wang et al. 2021): {options}"

    def stage(self, n: int) -> "_Stage":
        """The options of stage 1 or 2 under common names."""
        suffix = "" if n == 1 else "2"
        get = lambda name: getattr(self, name + suffix)  # noqa: E731
        return _Stage(
            blur_prob=1.0 if n == 1 else self.second_blur_prob, kernel_prob=get("kernel_prob"),
            sinc_prob=get("sinc_prob"), blur_sigma=get("blur_sigma"), betag_range=get("betag_range"),
            betap_range=get("betap_range"), resize_prob=get("resize_prob"), resize_range=get("resize_range"),
            gaussian_noise_prob=get("gaussian_noise_prob"), noise_range=get("noise_range"),
            poisson_scale_range=get("poisson_scale_range"), gray_noise_prob=get("gray_noise_prob"),
            jpeg_range=get("jpeg_range"), kernel_size=self.blur_kernel_size,
        )


def _check_field(name: str, value: Any) -> None:
    """One-line errors that start with the option's name (the caller prefixes the table name)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    def fail(what: str) -> None:
        raise ValueError(f"{name} must be {what}, got {value!r}")

    base = name.rstrip("2")
    if base == "usm_sharpen":
        if not isinstance(value, bool):
            fail("true or false")
    elif base == "blur_kernel_size":
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 7 and value % 2):
            fail("an odd integer >= 7")
    elif base.endswith("_prob") and base not in ("kernel_prob", "resize_prob"):
        if not (number(value) and 0 <= value <= 1):
            fail("a probability in [0, 1]")
    elif base in ("kernel_prob", "resize_prob"):
        size = len(KERNEL_TYPES) if base == "kernel_prob" else 3
        labels = ", ".join(KERNEL_TYPES) if base == "kernel_prob" else "up, down, keep"
        if not (isinstance(value, tuple) and len(value) == size and all(number(v) and v >= 0 for v in value)
                and sum(value) > 0):
            fail(f"{size} non-negative weights ({labels}), not all zero")
    elif base.endswith("_range") or base == "blur_sigma":
        if not (isinstance(value, tuple) and len(value) == 2 and all(number(v) for v in value)
                and value[0] <= value[1]):
            fail("a [low, high] pair of numbers with low <= high")
        low, high = value
        if base == "jpeg_range" and not (all(isinstance(v, int) for v in value) and 1 <= low and high <= 100):
            fail("a [low, high] pair of integer JPEG qualities in 1..100")
        if base == "resize_range" and not (0 < low <= 1 <= high):
            fail("a [low, high] pair with 0 < low <= 1 <= high (down to low, up to high)")
        if base in ("blur_sigma", "betag_range", "betap_range") and low <= 0:
            fail("a [low, high] pair of positive numbers")
        if low < 0:
            fail("a [low, high] pair of non-negative numbers")


@dataclass(frozen=True)
class _Stage:
    blur_prob: float
    kernel_prob: tuple[float, ...]
    sinc_prob: float
    blur_sigma: tuple[float, float]
    betag_range: tuple[float, float]
    betap_range: tuple[float, float]
    resize_prob: tuple[float, float, float]
    resize_range: tuple[float, float]
    gaussian_noise_prob: float
    noise_range: tuple[float, float]
    poisson_scale_range: tuple[float, float]
    gray_noise_prob: float
    jpeg_range: tuple[int, int]
    kernel_size: int


# ----------------------------------------------------------------------------- kernels (numpy)

def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T S^-1 x on a size x size grid centred at 0, S the covariance rotated by theta."""
    ax = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(ax, ax)
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy  # coordinates along the kernel's own axes
    v = -s * xx + c * yy
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def blur_kernel(kind: str, size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0) -> np.ndarray:
    """A normalised (sum 1) size x size kernel of one of KERNEL_TYPES.

    Gaussian exp(-q/2); generalized Gaussian exp(-q^beta/2) (beta < 1 heavier tails, > 1 flatter
    top); plateau 1 / (1 + q^beta); q the quadratic form above. *_iso kernels ignore sigma_y
    and theta.
    """
    if kind.endswith("_iso") or kind == "iso":
        sigma_y, theta = sigma_x, 0.0
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    if kind.startswith("generalized"):
        k = np.exp(-0.5 * q**beta)
    elif kind.startswith("plateau"):
        k = 1.0 / (1.0 + q**beta)
    else:
        k = np.exp(-0.5 * q)
    return k / k.sum()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Normalised circular low-pass (2-D sinc, a jinc) with cutoff frequency `cutoff` in (0, pi].

    Real-ESRGAN uses it to imitate the ringing and overshoot that sharpening and band-limited
    resampling leave around edges.
    """
    ax = np.arange(size, dtype=np.float64) - size // 2
    r = np.hypot(*np.meshgrid(ax, ax))
    r_safe = np.where(r == 0, 1.0, r)
    j1 = torch.special.bessel_j1(torch.from_numpy(cutoff * r_safe)).numpy()
    k = np.where(r == 0, cutoff**2 / (4 * math.pi), cutoff * j1 / (2 * math.pi * r_safe))
    return k / k.sum()


def _pad_to(k: np.ndarray, size: int) -> np.ndarray:
    p = (size - k.shape[0]) // 2
    return np.pad(k, p)


def _random_kernel(rng: np.random.Generator, st: _Stage) -> tuple[str, np.ndarray]:
    """(type name, kernel padded to st.kernel_size) for one image, as Real-ESRGAN draws them."""
    size = int(rng.choice(np.arange(7, st.kernel_size + 1, 2)))
    if rng.uniform() < st.sinc_prob:
        # Small kernels cannot hold a low cutoff's wide main lobe (Real-ESRGAN's bounds).
        cutoff = rng.uniform(math.pi / 3 if size < 13 else math.pi / 5, math.pi)
        return "sinc", _pad_to(sinc_kernel(size, cutoff), st.kernel_size)
    p = np.asarray(st.kernel_prob, dtype=np.float64)
    kind = KERNEL_TYPES[int(rng.choice(len(KERNEL_TYPES), p=p / p.sum()))]
    sigma_x, sigma_y = rng.uniform(*st.blur_sigma), rng.uniform(*st.blur_sigma)
    theta = rng.uniform(-math.pi, math.pi)
    beta_range = st.betag_range if kind.startswith("generalized") else st.betap_range
    # Half the draws below 1, half above, so both tail shapes are equally likely.
    beta = rng.uniform(beta_range[0], 1) if rng.uniform() < 0.5 else rng.uniform(1, beta_range[1])
    return kind, _pad_to(blur_kernel(kind, size, sigma_x, sigma_y, theta, beta), st.kernel_size)


# ----------------------------------------------------------------------------- the plan of a batch

@dataclass(frozen=True)
class StagePlan:
    blur: bool
    kernels: torch.Tensor  # (B, K, K) float32
    kernel_types: tuple[str, ...]
    resize: float  # factor for the whole batch (stage 2: relative to HR/scale)
    resize_mode: str
    gaussian: bool  # Gaussian noise for the whole batch, else Poisson
    noise: tuple[float, ...]  # per image: sigma (0-255) or Poisson scale
    gray: tuple[bool, ...]
    noise_seeds: tuple[int, ...]
    jpeg_quality: tuple[int, ...]


@dataclass(frozen=True)
class DegradationPlan:
    """Every random choice of one batch; `apply_plan` turns it into LR deterministically."""

    first: StagePlan
    second: StagePlan
    jpeg_last: bool  # [resize + sinc] then JPEG; else JPEG then [resize + sinc]
    final_mode: str
    sinc: torch.Tensor  # (B, K, K); a centred impulse where no final sinc was drawn
    sinc_applied: tuple[bool, ...]

    def describe(self, i: int) -> dict[str, Any]:
        """Image i's degradations in words and numbers (for `srgan data degrade`)."""
        def stage(st: StagePlan) -> dict[str, Any]:
            return {"blur": st.kernel_types[i] if st.blur else None, "resize": round(st.resize, 3),
                    "resize_mode": st.resize_mode, "noise": "gaussian" if st.gaussian else "poisson",
                    "noise_level": round(st.noise[i], 3), "gray_noise": st.gray[i], "jpeg_quality": st.jpeg_quality[i]}
        return {"first": stage(self.first), "second": stage(self.second),
                "final": {"order": "resize+sinc, jpeg" if self.jpeg_last else "jpeg, resize+sinc",
                          "resize_mode": self.final_mode, "sinc": self.sinc_applied[i]}}


def _per_batch_stage(rng: np.random.Generator, st: _Stage) -> tuple[bool, float, str, bool]:
    blur = bool(rng.uniform() < st.blur_prob)
    p = np.asarray(st.resize_prob, dtype=np.float64)
    updown = int(rng.choice(3, p=p / p.sum()))
    factor = rng.uniform(1, st.resize_range[1]) if updown == _UP else (
        rng.uniform(st.resize_range[0], 1) if updown == _DOWN else 1.0)
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    gaussian = bool(rng.uniform() < st.gaussian_noise_prob)
    return blur, float(factor), mode, gaussian


def _per_image_stage(rng: np.random.Generator, st: _Stage,
                     gaussian: bool) -> tuple[str, np.ndarray, float, bool, int, int]:
    kind, kernel = _random_kernel(rng, st)
    level = rng.uniform(*(st.noise_range if gaussian else st.poisson_scale_range))
    gray = bool(rng.uniform() < st.gray_noise_prob)
    quality = int(rng.integers(st.jpeg_range[0], st.jpeg_range[1] + 1))
    return kind, kernel, float(level), gray, quality, int(rng.integers(2**63))


def sample_plan(cfg: DegradationConfig, batch: int, seed: int, step: int, offset: int = 0) -> DegradationPlan:
    """All random choices for `batch` images of iteration `step`, a pure function of the arguments.

    Image j is drawn from (seed, step, offset + j): `offset` is the position of this batch's
    first image in the global batch, so DDP ranks draw the images a single process would.
    """
    batch_rng = np.random.default_rng((seed, step, 2))
    stages = [cfg.stage(1), cfg.stage(2)]
    per_batch = [_per_batch_stage(batch_rng, st) for st in stages]
    jpeg_last = bool(batch_rng.uniform() < 0.5)
    final_mode = RESIZE_MODES[int(batch_rng.integers(len(RESIZE_MODES)))]

    images, sincs, sinc_applied = [], [], []
    impulse = _pad_to(np.ones((1, 1)), cfg.blur_kernel_size)
    for j in range(batch):
        rng = np.random.default_rng((seed, step, 2, offset + j))
        images.append([_per_image_stage(rng, st, pb[3]) for st, pb in zip(stages, per_batch)])
        size = int(rng.choice(np.arange(7, cfg.blur_kernel_size + 1, 2)))
        cutoff = rng.uniform(math.pi / 3, math.pi)
        applied = bool(rng.uniform() < cfg.final_sinc_prob)
        sincs.append(_pad_to(sinc_kernel(size, cutoff), cfg.blur_kernel_size) if applied else impulse)
        sinc_applied.append(applied)

    def stage_plan(n: int) -> StagePlan:
        blur, factor, mode, gaussian = per_batch[n]
        kinds, kernels, levels, grays, qualities, seeds = zip(*(img[n] for img in images)) if batch else ((),) * 6
        return StagePlan(blur, _stack(kernels, cfg.blur_kernel_size), tuple(kinds), factor, mode, gaussian,
                         tuple(levels), tuple(grays), tuple(seeds), tuple(qualities))

    return DegradationPlan(stage_plan(0), stage_plan(1), jpeg_last, final_mode,
                           _stack(sincs, cfg.blur_kernel_size), tuple(sinc_applied))


def _stack(kernels: Sequence[np.ndarray], size: int) -> torch.Tensor:
    if not kernels:
        return torch.zeros(0, size, size)
    return torch.from_numpy(np.stack(kernels)).float()


# ----------------------------------------------------------------------------- applying it (torch)

def _pad(x: torch.Tensor, p: int) -> torch.Tensor:
    # Reflection needs the pad to be smaller than the image; tiny LR crops fall back to replication.
    return F.pad(x, (p, p, p, p), mode="reflect" if p < min(x.shape[-2:]) else "replicate")


def filter2d(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve image i of x (B, C, H, W) with kernels[i] (B, K, K), K odd, borders reflected.

    One grouped convolution for the whole batch (the kernels are point-symmetric, so correlation
    and convolution agree).
    """
    b, c, h, w = x.shape
    k = kernels.shape[-1]
    weight = kernels.to(x).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, K, K)
    out = F.conv2d(_pad(x, k // 2).reshape(1, b * c, h + k - 1, w + k - 1), weight, groups=b * c)
    return out.view(b, c, h, w)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    # No antialiasing, as in Real-ESRGAN: aliasing is one of the defects real images have.
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(-3)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(-3)


def add_noise(x: torch.Tensor, gaussian: bool, levels: Sequence[float], gray: Sequence[bool],
              seeds: Sequence[int]) -> torch.Tensor:
    """Per-image Gaussian (sigma in 0-255 units) or Poisson noise (times a scale), clipped to [0, 1].

    Poisson noise is shot noise: its variance grows with brightness, as a sensor's does.
    Gray noise is drawn once and added to all three channels.
    """
    out = []
    for img, level, g, seed in zip(x, levels, gray, seeds):
        gen = torch.Generator(device=img.device).manual_seed(seed)
        base = _gray(img) if g else img
        if gaussian:
            noise = torch.randn(base.shape, generator=gen, device=img.device, dtype=img.dtype) * (level / 255.0)
        else:
            levels_8bit = torch.clamp((base * 255.0).round(), 0, 255)
            q = levels_8bit / 255.0
            # Photon count scale: the number of grey levels the image uses, rounded up to 2^n
            # (a histogram: torch.unique sorts, and costs 100x more on a CPU).
            used = int(torch.bincount(levels_8bit.flatten().long(), minlength=256).count_nonzero())
            vals = 2.0 ** math.ceil(math.log2(max(2, used)))
            noise = (torch.poisson(q * vals, generator=gen) / vals - q) * level
        out.append(img + noise)
    return torch.stack(out).clamp_(0, 1) if out else x


def jpeg(x: torch.Tensor, qualities: Sequence[int]) -> torch.Tensor:
    """JPEG-compress image i of x (B, 3, H, W) in [0, 1] at qualities[i] with Pillow (4:2:0), and decode."""
    pixels = (x.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img, quality in zip(pixels, qualities):
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=int(quality))
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("RGB")))
    if not out:
        return x
    return torch.from_numpy(np.stack(out)).to(x.device).permute(0, 3, 1, 2).to(x.dtype).div_(255.0)


def apply_plan(hr: torch.Tensor, plan: DegradationPlan, scale: int) -> torch.Tensor:
    """LR (B, 3, H/scale, W/scale) in [0, 1], rounded to 8 bits, from HR (B, 3, H, W) in [0, 1]."""
    h, w = hr.shape[-2:]
    out = hr.float()

    first = plan.first
    out = filter2d(out, first.kernels)
    out = _resize(out, (int(h * first.resize), int(w * first.resize)), first.resize_mode)
    out = add_noise(out, first.gaussian, first.noise, first.gray, first.noise_seeds)
    out = jpeg(out, first.jpeg_quality)

    second = plan.second
    if second.blur:
        out = filter2d(out, second.kernels)
    out = _resize(out, (int(h / scale * second.resize), int(w / scale * second.resize)), second.resize_mode)
    out = add_noise(out, second.gaussian, second.noise, second.gray, second.noise_seeds)

    # Real-ESRGAN found that other orders of these three (e.g. sinc, JPEG, resize) twist lines.
    if plan.jpeg_last:
        out = filter2d(_resize(out, (h // scale, w // scale), plan.final_mode), plan.sinc)
        out = jpeg(out, second.jpeg_quality)
    else:
        out = jpeg(out, second.jpeg_quality)
        out = filter2d(_resize(out, (h // scale, w // scale), plan.final_mode), plan.sinc)
    return _to_8bit(out)


def _to_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] values to the 256 levels an 8-bit LR image holds (kept in [0, 1])."""
    return torch.clamp((x * 255.0).round(), 0, 255) / 255.0


def degrade_batch(hr: torch.Tensor, cfg: DegradationConfig, scale: int, seed: int, step: int,
                  offset: int = 0) -> torch.Tensor:
    """The LR of HR batch `hr` (B, 3, H, W) at iteration `step`; H and W multiples of `scale`."""
    with torch.no_grad():
        return apply_plan(hr, sample_plan(cfg, hr.shape[0], seed, step, offset), scale)


# ----------------------------------------------------------------------------- the HR target

def _gaussian_1d(size: int) -> torch.Tensor:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a size-only Gaussian, as USMSharp
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _band(g: torch.Tensor, n: int) -> torch.Tensor:
    """(n + k - 1, n) matrix whose column j is g at rows j..j+k-1: x_padded @ band = 1-D correlation."""
    k = g.numel()
    offset = torch.arange(n + k - 1, device=g.device)[:, None] - torch.arange(n, device=g.device)[None, :]
    return torch.where((offset >= 0) & (offset < k), g[offset.clamp(0, k - 1)], g.new_zeros(()))


def _separable_blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Two banded matrix products: ~5x faster on CPU than grouped 1-D convolutions with 51 taps.
    g = g.to(x)
    h, w = x.shape[-2:]
    y = _pad(x, g.numel() // 2) @ _band(g, w)
    return _band(g, h).T @ y


def usm_sharpen(img: torch.Tensor, weight: float = 0.5, size: int = 51, threshold: float = 10) -> torch.Tensor:
    """Unsharp mask (B, 3, H, W) in [0, 1], where the detail exceeds `threshold` (0-255), softly masked.

    Real-ESRGAN's USMSharp: residual = img - Gaussian blur; sharpen by weight * residual where
    |residual| is above the threshold, blended by the blurred mask so flat areas and noise stay.
    """
    g = _gaussian_1d(size)
    residual = img - _separable_blur(img, g)
    mask = (residual.abs() * 255 > threshold).to(img.dtype)
    soft = _separable_blur(mask, g)
    sharp = torch.clamp(img + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * img


def clean_mask(cfg: DegradationConfig, batch: int, seed: int, step: int, offset: int = 0) -> torch.Tensor:
    """(B,) bool: the images of iteration `step` that get clean bicubic LR (`clean_prob`). Image j
    draws from (seed, step, 3, offset + j), a stream of its own, so DDP ranks agree with one process."""
    return torch.tensor([bool(np.random.default_rng((seed, step, 3, offset + j)).uniform() < cfg.clean_prob)
                         for j in range(batch)], dtype=torch.bool)


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscale of (B, 3, H, W) in [0, 1], rounded to 8 bits (torch's
    antialiased kernel is Pillow's, which makes the benchmarks' and bicubic training's LR)."""
    h, w = hr.shape[-2:]
    return _to_8bit(F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False))


def training_pair(hr: torch.Tensor, step: int, cfg: DegradationConfig, scale: int, seed: int,
                  offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR input, HR target) of iteration `step` from the HR crops: sharpened (usm_sharpen), then
    degraded; the `clean_prob` share gets bicubic LR of the unsharpened crop, which is its target."""
    with torch.no_grad():
        hr = hr.float().contiguous()
        target = usm_sharpen(hr) if cfg.usm_sharpen else hr
        lr = degrade_batch(target, cfg, scale, seed, step, offset)
        if cfg.clean_prob > 0:
            clean = clean_mask(cfg, hr.shape[0], seed, step, offset).to(hr.device)
            if bool(clean.any()):
                lr[clean] = bicubic_lr(hr[clean], scale)  # lr is fresh; target may be the caller's hr
                target = torch.where(clean[:, None, None, None], hr, target)
        return lr, target


# ----------------------------------------------------------------------------- single images

def image_key(name: str) -> int:
    """The 'step' an image named `name` is degraded at outside training: its degradation then
    depends on (seed, name) only, not on which other images are processed with it."""
    return zlib.crc32(name.encode())


def degrade_image(hr: np.ndarray, cfg: DegradationConfig, scale: int, seed: int, key: int,
                  sharpen: bool | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(HR as degraded, LR, what was done) for an (H, W, 3) uint8 image, H and W multiples of `scale`.

    The HR is unsharp-masked first when `sharpen` (default: cfg.usm_sharpen), as in training.
    """
    x = torch.from_numpy(np.array(hr, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
    if cfg.usm_sharpen if sharpen is None else sharpen:
        x = usm_sharpen(x)
    plan = sample_plan(cfg, 1, seed, key)
    with torch.no_grad():
        lr = apply_plan(x, plan, scale)

    def to_uint8(t: torch.Tensor) -> np.ndarray:
        return (t[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()

    return to_uint8(x), to_uint8(lr), plan.describe(0)
