"""Performance benchmark: inference, training and memory, each beside a plain baseline in-process.

    python benchmarks/perf.py                      # full run, table on stdout
    python benchmarks/perf.py --quick --json perf.json
    python benchmarks/perf.py --sections inference tail --threads 1
    python benchmarks/perf.py --sections memory --large   # adds a 4000x3000 -> 16000x12000 run
    python benchmarks/perf.py --json perf.json --markdown perf.md   # tables for docs/performance.md

Sections (all on the CPU; the bundled srresnet_x4 weights, nothing downloaded):
  matmul     fp32 and bf16 4096^2 matmul GFLOP/s: the machine's attainable rate.
  inference  `upscale_array` (default precision, several tile settings) against the plain
             baseline: fp32, NCHW, eager, whole image, torch.no_grad() -- what BasicSR and the
             popular SRGAN repositories run. MP/s counts output pixels; GFLOP/s counts the
             network's useful FLOPs (GeneratorConfig.flops_per_lr_pixel x LR pixels, tile overlap
             not credited); PSNR is of the engine's uint8 output against the baseline's.
  tail       what was tried for the 9x9 full-resolution tail conv and for the whole forward.
  training   iterations/s of a phase-1 step (SRResNet, MSE) and a phase-2 step (SRGAN: D step,
             then G with VGG54 content + adversarial loss; VGG19 with random weights) at batch 16,
             96 px HR crops: today's loop, the loop of 2026-11-25 (channels_last + bf16 autocast)
             and a plain fp32 NCHW loop, with each step's FLOPs counted and the % of the roof.
  curves     the 2026-11-25 training loop and today's from the same weights on the same batches
             of real photo crops (scikit-image's samples): losses step by step, which the
             speed-ups must leave unchanged within bf16 noise.
  memory     peak RSS and time of whole `upscale_array` calls in child processes (default tile),
             at several sizes to show time linear in pixels: s per LR megapixel, and per
             megapixel the network actually ran on (tiles overlap by the receptive radius).

Timings take the best of several interleaved rounds, so that the variants of one comparison
see the same background load; on a shared machine compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import srgan
from srgan.data.degradation import bicubic_downscale
from srgan.device import autocast, cpu_has_native_bf16, resolve_precision
from srgan.inference.engine import tile_plan, upscale_array
from srgan.inference.fastpath import InferenceGenerator
from srgan.inference.streaming import _strips
from srgan.models.srresnet import polyphase_weight
from srgan.losses import (
    VGGFeatures, artifact_loss, discriminator_losses, generator_adversarial_loss, ragan_discriminator_losses,
    ragan_generator_loss,
)
from srgan.losses.perceptual import VGG_LAYERS, _build_features
from srgan.metrics import psnr
from srgan.models import (
    Discriminator, DiscriminatorConfig, Generator, UNetDiscriminator, UNetDiscriminatorConfig,
)

SECTIONS = ("matmul", "inference", "tail", "training", "curves", "memory")
MODEL = "srresnet_x4"
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- helpers

def best_times(fns: dict[str, Callable[[], object]], rounds: int, warmup: bool = True) -> dict[str, float]:
    """Best wall time (s) of each function over `rounds` rounds, the functions interleaved."""
    if warmup:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def photo(h: int, w: int) -> np.ndarray:
    """An (h, w, 3) uint8 photo: scikit-image's astronaut (or the bundled crop), mirror-tiled."""
    try:
        from skimage import data

        base = data.astronaut()
    except ImportError:
        with Image.open(str(resources.files("srgan") / "assets" / "astronaut_lr.png")) as im:
            base = np.asarray(im.convert("RGB"))
    reps = (math.ceil(h / base.shape[0]), math.ceil(w / base.shape[1]))
    tiled = np.pad(base, ((0, (reps[0] - 1) * base.shape[0]), (0, (reps[1] - 1) * base.shape[1]), (0, 0)),
                   mode="symmetric")
    return np.ascontiguousarray(tiled[:h, :w])


def to_uint8(y: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded as the engine rounds."""
    return y[0].permute(1, 2, 0).float().clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def classic_forward(gen: Generator, x: torch.Tensor) -> torch.Tensor:
    """SRResNet as the paper draws it and BasicSR runs it: the 9x9 tail after the last shuffle.

    `Generator.forward` computes the same sums polyphase (srresnet.polyphase_weight); baselines
    use this form so that they stay what other code runs.
    """
    feat = gen.head(x)
    feat = feat + gen.body_tail(gen.body(feat))
    out = gen.tail(gen.upsample(feat))
    return out if gen.training else out.clamp(0.0, 1.0)


class Nov25Generator(Generator):
    """The generator of the 2026-11-25 training loop: classic forward, PyTorch's own PReLU."""

    def __init__(self) -> None:
        super().__init__()
        for module in list(self.modules()):
            for name, child in module.named_children():
                if isinstance(child, nn.PReLU):
                    setattr(module, name, nn.PReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return classic_forward(self, x)


class Nov25Discriminator(Discriminator):
    """The discriminator of 2026-11-25: its dense layer under autocast (weights cast every call)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def plain_forward(model: Generator, image: np.ndarray) -> np.ndarray:
    """The baseline: fp32, NCHW, eager, the whole image in one forward, under torch.no_grad()."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).contiguous()
    with torch.no_grad():
        return to_uint8(classic_forward(model, x))


def fmt_table(title: str, rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    """Rows as an aligned text table; cols are (key, header, format spec)."""
    head = [h for _, h, _ in cols]
    body = [[("–" if r.get(k) is None else format(r[k], f)) for k, _, f in cols] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    lines = [f"\n## {title}", "  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def markdown_tables(results: dict) -> str:
    """All sections of a results dict (as --json writes it) as Markdown tables, for docs/performance.md."""
    m = results["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['torch_threads']} thread(s), "
           f"native bf16: {m['native_bf16']}; load average at start {m['loadavg_start'][0]:.2f}, "
           f"at end {m.get('loadavg_end', [float('nan')])[0]:.2f}."]
    if results.get("matmul_gflop_per_s"):
        mm = results["matmul_gflop_per_s"]
        out.append("\n" + matmul_line(mm))
    for key, title, cols in (("inference", "Inference", INFER_COLS), ("tail", "Tail conv and forward ablations", TAIL_COLS),
                             ("training", "Training (batch 16, 96 px HR)", TRAIN_COLS),
                             ("memory", "Memory and scaling (default tile, child processes)", MEM_COLS)):
        rows = results.get(key)
        if not rows:
            continue
        out += [f"\n**{title}**\n", "| " + " | ".join(h for _, h, _ in cols) + " |",
                "|" + "---|" * len(cols)]
        for r in rows:
            out.append("| " + " | ".join("–" if r.get(k) is None else format(r[k], f) for k, _, f in cols) + " |")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- sections

def machine() -> dict:
    """What the numbers were measured on, with the load average (a loaded machine inflates times)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    def field(name: str) -> str:
        return next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                     if line.split(":")[0].strip() == name), "")

    cpu = field("model name") or platform.processor()
    if field("cpu family"):  # e.g. AMD family 25 = Zen 3/4, 26 = Zen 5; Intel 6
        cpu += f" (family {field('cpu family')}, model {field('model')})"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "avx512": "avx512f" in cpuinfo, "avx512_bf16": "avx512_bf16" in cpuinfo, "amx": "amx_bf16" in cpuinfo,
        "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__, "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def bench_matmul(rounds: int, n: int = 4096) -> dict:
    """fp32/bf16 n^2 matmul GFLOP/s, a 3x3 64->64 conv on a 256^2 map, and the roof.

    The conv runs in the dtype the engine picks here (bf16 where native, else fp32), and
    roof = the higher of that conv and the matmul in the same dtype: the rate the targets of
    docs/performance.md are fractions of. Without native bf16 both are fp32, since an emulated
    bf16 rate is no ceiling for an engine that runs fp32 there.
    """
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if dtype == torch.bfloat16 and not cpu_has_native_bf16():
            out[name] = None
            continue
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        t = best_times({name: lambda: a @ b}, rounds)[name]
        out[name] = 2 * n**3 / t / 1e9
    dtype = torch.bfloat16 if out["bf16"] else torch.float32
    x = torch.randn(1, 64, 256, 256, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        t = best_times({"conv": lambda: F.conv2d(x, w, padding=1)}, rounds)["conv"]
    out["conv256"], out["conv256_dtype"] = 2 * 9 * 64 * 64 * 256 * 256 / t / 1e9, _name(dtype)
    out["roof"] = max(out["conv256"], out["bf16"] or out["fp32"])
    return out


def matmul_line(mm: dict) -> str:
    """One line for the matmul section (stdout and Markdown)."""
    bf16 = f"{mm['bf16']:.0f} GFLOP/s" if mm.get("bf16") else "not native"
    return (f"Matmul 4096^2: fp32 {mm['fp32']:.0f} GFLOP/s, bf16 {bf16}; "
            f"{mm.get('conv256_dtype', 'bf16')} conv 3x3 64->64 on 256^2: {mm['conv256']:.0f} GFLOP/s; "
            f"roof {mm['roof']:.0f} GFLOP/s.")


def bench_inference(model: Generator, sizes: list[int], rounds: int, matmul: dict) -> list[dict]:
    """One baseline row per size, then the engine at whole-image, automatic and small tiles."""
    flops_px = model.config.flops_per_lr_pixel
    auto = resolve_precision("auto", CPU)
    rows = []
    for n in sizes:
        img = photo(n, n)
        variants: dict[str, tuple[str, int]] = {
            "engine auto-precision, default (row streaming)": ("auto", 0),
            "engine auto-precision, whole image in one tile": ("auto", max(n, 1)),
            "engine auto-precision, tile 96": ("auto", 96),
            "engine fp32, whole image": ("fp32", max(n, 1)),
        }
        fns: dict[str, Callable[[], np.ndarray]] = {"plain fp32 NCHW baseline": lambda: plain_forward(model, img)}
        for name, (prec, tile) in variants.items():
            fns[name] = lambda prec=prec, tile=tile: upscale_array(model, img, tile=tile, precision=prec)
        outputs = {k: fn() for k, fn in fns.items()}
        times = best_times(fns, rounds, warmup=False)  # the outputs above were the warm-up
        base_t, base_out = times["plain fp32 NCHW baseline"], outputs["plain fp32 NCHW baseline"]
        for name, t in times.items():
            prec = variants.get(name, ("fp32", 0))[0]
            dtype = auto if prec == "auto" else torch.float32
            # Every row against the one roof: the fp32 matmul is no ceiling for fp32 convs (oneDNN's
            # 3x3 convs beat it, 178-188% of it on Zen 5), and the targets are fractions of the roof.
            peak = matmul.get("roof")
            gflops = flops_px * n * n / t / 1e9
            rows.append({
                "size": f"{n}x{n}", "variant": name, "precision": str(dtype).removeprefix("torch."),
                "seconds": t, "mp_per_s": (n * model.scale) ** 2 / t / 1e6, "gflop_per_s": gflops,
                "pct_matmul": 100 * gflops / peak if peak else None, "speedup": base_t / t,
                "psnr_db": psnr(outputs[name], base_out),
                "max_abs_diff": int(np.abs(outputs[name].astype(int) - base_out.astype(int)).max()),
            })
        print(fmt_table(f"inference {n}x{n} (partial)", rows[-len(times):], INFER_COLS), flush=True)
    return rows


def bench_tail(model: Generator, n: int, rounds: int) -> list[dict]:
    """Alternatives for the 9x9 C->3 tail at full resolution, then for the whole forward."""
    bf16 = torch.bfloat16 if cpu_has_native_bf16() else None
    x = torch.from_numpy(photo(n, n)).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        feat = model.head(x)
        feat = feat + model.body_tail(model.body(feat))
        for up in model.upsample[:-1]:
            feat = up(feat)
        last = model.upsample[-1]
        z = last.act(last.conv(feat))                  # (1, 4C, 2n', 2n') pre-shuffle, PReLU applied
        full = F.pixel_shuffle(z, last.shuffle.upscale_factor)  # (1, C, sn, sn): the tail's input
    w, b = model.tail.weight.detach(), model.tail.bias.detach()
    w2, b2, p2 = polyphase_weight(w, b, 2)
    w4, b4, p4 = polyphase_weight(w, b, 4)
    cl, nchw = torch.channels_last, torch.contiguous_format
    tail_flops = 2 * w.numel() * full.shape[-1] * full.shape[-2]

    def conv(inp, wt, bias, pad, fmt, dtype):
        # Operands converted up front: in the network the tail's input is already in `dtype`.
        dtype = dtype or torch.float32
        inp, wt = inp.to(dtype).contiguous(memory_format=fmt), wt.to(dtype).contiguous(memory_format=fmt)
        bias = bias.to(dtype)
        return lambda: F.conv2d(inp, wt, bias, padding=pad)

    share = 16

    def unfold_matmul(dtype, band: int = 8):
        # im2col in row bands (a full im2col of 64x81 rows would need GBs), then one matmul each.
        # It is ~20x slower than the conv, so only 1/share of the rows run; the time is scaled up.
        padded, wm = F.pad(full, (4, 4, 4, 4)), w.reshape(w.shape[0], -1)

        def run():
            for y0 in range(0, full.shape[-2] // share, band):
                strip = padded[:, :, y0 : y0 + band + 8]
                cols = F.unfold(strip, 9)  # (1, C*81, band*W)
                _under(dtype, lambda: wm @ cols[0])
        return run

    fns: dict[str, Callable[[], object]] = {
        "tail 9x9, NCHW fp32 (baseline layer)": conv(full, w, b, 4, nchw, None),
        "tail 9x9, channels_last fp32": conv(full, w, b, 4, cl, None),
        "tail 9x9, unfold + matmul fp32 (row bands)": unfold_matmul(None),
        "tail polyphase r=2 on pre-shuffle tensor, channels_last fp32": conv(z, w2, b2, p2, cl, None),
    }
    if bf16 is not None:
        z4 = F.pixel_unshuffle(full, 4).contiguous(memory_format=cl)
        fns |= {
            "tail 9x9, NCHW bf16": conv(full, w, b, 4, nchw, bf16),
            "tail 9x9, channels_last bf16 (previous engine)": conv(full, w, b, 4, cl, bf16),
            "tail polyphase r=2 on pre-shuffle tensor, channels_last bf16 (engine)": conv(z, w2, b2, p2, cl, bf16),
            "tail polyphase r=4 (needs pixel_unshuffle, not timed), channels_last bf16": conv(z4, w4, b4, p4, cl, bf16),
            "  cost of that pixel_unshuffle(4) alone, bf16": lambda: F.pixel_unshuffle(full.to(bf16), 4).contiguous(memory_format=cl),
        }
    with torch.no_grad():
        times = best_times(fns, rounds)
    times["tail 9x9, unfold + matmul fp32 (row bands)"] *= share
    base = times["tail 9x9, NCHW fp32 (baseline layer)"]
    rows = [{"what": k, "seconds": t, "gflop_per_s": None if "alone" in k else tail_flops / t / 1e9,
             "speedup": None if "alone" in k else base / t} for k, t in times.items()]

    # Whole forward passes on the same input: what each step contributes.
    dtype = bf16 or torch.float32
    gen_cl = copy.deepcopy(model).to(memory_format=cl)
    fast = InferenceGenerator.from_generator(model)
    xcl = x.contiguous(memory_format=cl)
    fwd = {
        "forward: Generator, NCHW fp32 (baseline)": lambda: classic_forward(model, x),
        "forward: Generator, channels_last fp32": lambda: gen_cl(xcl),
        "forward: InferenceGenerator, channels_last fp32": lambda: fast(xcl),
        f"forward: Generator, NCHW {_name(dtype)}": lambda: _under(dtype, lambda: model(x)),
        f"forward: Generator, channels_last {_name(dtype)} (previous engine)": lambda: _under(dtype, lambda: gen_cl(xcl)),
        f"forward: InferenceGenerator, {_name(dtype)} (engine)": lambda: _under(dtype, lambda: fast(xcl)),
    }

    def fast_inference_mode():
        with torch.inference_mode():
            return _under(dtype, lambda: fast(xcl))

    with torch.no_grad():
        ref = to_uint8(model(x))
        outs = {k: to_uint8(f()) for k, f in fwd.items()}
    fwd = {k: (lambda f=f: _no_grad(f)) for k, f in fwd.items()}
    fwd[f"forward: InferenceGenerator, {_name(dtype)}, torch.inference_mode instead of no_grad"] = fast_inference_mode
    times = best_times(fwd, rounds)
    base = times["forward: Generator, NCHW fp32 (baseline)"]
    flops = model.config.flops_per_lr_pixel * n * n
    rows += [{"what": k, "seconds": t, "gflop_per_s": flops / t / 1e9, "speedup": base / t,
              "psnr_db": psnr(outs[k], ref) if k in outs else None} for k, t in times.items()]
    return rows


def _no_grad(fn: Callable[[], object]) -> object:
    with torch.no_grad():
        return fn()


def _under(dtype: torch.dtype | None, fn: Callable[[], object]) -> object:
    with autocast(CPU, dtype or torch.float32):
        return fn()


def _name(dtype: torch.dtype) -> str:
    return {torch.bfloat16: "bf16", torch.float32: "fp32", torch.float16: "fp16"}[dtype]


def random_vgg19_state() -> dict[str, torch.Tensor]:
    """VGG19 `features` up to relu5_4 in torchvision's key layout, He-initialised (same FLOPs as
    ImageNet's weights; no download). He init keeps activations O(1) through the 16 convs, so no
    denormals distort the timing."""
    torch.manual_seed(0)
    feats = _build_features(VGG_LAYERS["relu5_4"])
    for m in feats.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return {f"features.{k}": v for k, v in feats.state_dict().items()}


def random_vgg54() -> VGGFeatures:
    """The VGG54 content network with random weights (`random_vgg19_state`)."""
    return VGGFeatures(random_vgg19_state(), "relu5_4")


TRAIN_VARIANTS = ("plain fp32 NCHW", "loop of 2026-11-25", "loop now")
G_FIRST = "loop now, g_first"  # gan_order = "g_first": G, then D, sharing D's forwards


def training_step(phase: str, variant: str, batch: int = 16, hr_size: int = 96,
                  discriminator: str = "paper") -> Callable[..., float]:
    """One optimiser step of src/srgan/training/loop.py's recipe (same ops, same order).

    variant: "plain fp32 NCHW" (the 2026-11-25 step in fp32 NCHW: what other SRGAN code runs),
    "loop of 2026-11-25" (channels_last + bf16 autocast where native; HR through VGG in the
    same graph as SR, D's weight gradients also in G's backward, the classic generator and
    discriminator above), "loop now" (today's loop: HR features without a graph, D frozen
    for G's backward, the polyphase generator, the fp32 dense layer), G_FIRST (today's loop
    with gan_order = "g_first"). discriminator "unet": the long run's recipe (U-Net D, RaGAN,
    L1 and LDL terms against an EMA copy).
    """
    torch.manual_seed(0)
    now = variant in ("loop now", G_FIRST)
    dtype = torch.float32 if variant == "plain fp32 NCHW" else resolve_precision("auto", CPU)
    fmt = torch.contiguous_format if variant == "plain fp32 NCHW" else torch.channels_last
    gen = (Generator() if now else Nov25Generator()).to(memory_format=fmt).train()
    g_opt = torch.optim.Adam(gen.parameters(), lr=1e-4)
    lr_img = torch.rand(batch, 3, hr_size // 4, hr_size // 4).contiguous(memory_format=fmt)
    hr_img = torch.rand(batch, 3, hr_size, hr_size).contiguous(memory_format=fmt)
    if phase == "srresnet":
        def step(batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
            lr_b, hr_b = batch or (lr_img, hr_img)
            with autocast(CPU, dtype):
                sr = gen(lr_b.contiguous(memory_format=fmt))
            loss = F.mse_loss(sr.float(), hr_b.contiguous(memory_format=fmt))
            g_opt.zero_grad(set_to_none=True)
            loss.backward()
            g_opt.step()
            return float(loss.detach())
        return step
    unet = discriminator == "unet"
    if unet:
        disc = UNetDiscriminator(UNetDiscriminatorConfig(channels=32))
    else:
        disc = (Discriminator if now else Nov25Discriminator)(DiscriminatorConfig(input_size=hr_size))
    disc = disc.to(memory_format=fmt).train()
    d_losses = ragan_discriminator_losses if unet else discriminator_losses
    d_opt = torch.optim.Adam(disc.parameters(), lr=1e-4)
    vgg = random_vgg54().to(memory_format=fmt)
    ema = copy.deepcopy(gen).eval().requires_grad_(False)

    def g_losses(sr: torch.Tensor, lr_b: torch.Tensor, hr_b: torch.Tensor) -> torch.Tensor:
        with autocast(CPU, dtype):
            with torch.no_grad():
                real_f = vgg(hr_b).float()
            fake_f = vgg(sr).float()
        loss = F.mse_loss(fake_f, real_f)
        if unet:
            with torch.no_grad(), autocast(CPU, dtype):
                ema_sr = ema(lr_b)
            loss = loss + 1e-2 * F.l1_loss(sr.float(), hr_b) + artifact_loss(sr, hr_b, ema_sr)
        return loss

    def ema_update() -> None:
        if unet:
            with torch.no_grad():
                for e, p in zip(ema.parameters(), gen.parameters()):
                    e.lerp_(p, 0.01)

    def generate(batch: tuple[torch.Tensor, torch.Tensor] | None):
        lr_b, hr_b = batch or (lr_img, hr_img)
        lr_b, hr_b = lr_b.contiguous(memory_format=fmt), hr_b.contiguous(memory_format=fmt)
        with autocast(CPU, dtype):
            return lr_b, hr_b, gen(lr_b)

    def d_update(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        d_opt.zero_grad(set_to_none=True)
        d_real, d_fake = d_losses(real_logits, fake_logits)
        (d_real + d_fake).backward()
        d_opt.step()

    def step_g_first(batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
        lr_b, hr_b, sr = generate(batch)
        g_opt.zero_grad(set_to_none=True)
        g_loss = g_losses(sr, lr_b, hr_b)
        sr_leaf = sr.detach().requires_grad_(True)
        with autocast(CPU, dtype):
            real_logits, fake_logits = disc(hr_b).float(), disc(sr_leaf).float()
        adv = (ragan_generator_loss(real_logits.detach(), fake_logits) if unet
               else generator_adversarial_loss(fake_logits))
        (1e-3 * adv).backward(inputs=[sr_leaf], retain_graph=True)
        torch.autograd.backward([g_loss, sr], [None, sr_leaf.grad])
        d_update(real_logits, fake_logits)
        g_opt.step()
        ema_update()
        return float((g_loss + 1e-3 * adv).detach())

    def step(batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
        lr_b, hr_b, sr = generate(batch)
        with autocast(CPU, dtype):
            real_logits, fake_logits = disc(hr_b).float(), disc(sr.detach()).float()
        d_update(real_logits, fake_logits)
        g_opt.zero_grad(set_to_none=True)
        if now:
            g_loss = g_losses(sr, lr_b, hr_b)
        else:
            with autocast(CPU, dtype):
                fake_f, real_f = vgg(torch.cat([sr, hr_b.to(sr.dtype)])).float().chunk(2)
            g_loss = F.mse_loss(fake_f, real_f.detach())
        disc.requires_grad_(not now)
        with autocast(CPU, dtype):
            fake_g = disc(sr).float()
            if unet:
                with torch.no_grad():
                    real_g = disc(hr_b).float()
                adv = ragan_generator_loss(real_g, fake_g)
            else:
                adv = generator_adversarial_loss(fake_g)
        total = g_loss + 1e-3 * adv
        total.backward()
        g_opt.step()
        disc.requires_grad_(True)
        ema_update()
        return float(total.detach())
    return step_g_first if variant == G_FIRST else step


def step_flops(step: Callable[[], object]) -> float:
    """FLOPs of one call of `step`, counted by torch's FlopCounterMode (convs and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def bench_training(rounds: int, matmul: dict) -> list[dict]:
    """Each phase's step in the three variants (and the long run's U-Net recipe, today's loop only).

    GFLOP/s counts the FLOPs of each variant's own step, so the variants that skip work show
    their saving in s/it, not in GFLOP/s; "% roof" is against the roof of `bench_matmul`.
    """
    rows = []
    roof = matmul.get("roof")
    cases = [("srresnet", "phase 1: SRResNet, MSE", "paper", TRAIN_VARIANTS),
             ("srgan", "phase 2: SRGAN, VGG54 + adversarial", "paper", (*TRAIN_VARIANTS, G_FIRST)),
             ("srgan", "phase 2, long-run recipe (U-Net D, RaGAN, L1, LDL)", "unet", ("loop now", G_FIRST))]
    for phase, label, disc, variants in cases:
        steps = {v: training_step(phase, v, discriminator=disc) for v in variants}
        flops = {v: step_flops(fn) for v, fn in steps.items()}
        times = best_times(steps, rounds)
        base = times.get("loop of 2026-11-25")
        for name, t in times.items():
            gf = flops[name] / t / 1e9
            rows.append({"phase": label, "variant": name, "sec_per_it": t, "it_per_s": 1 / t,
                         "speedup": base / t if base else None, "gflop": flops[name] / 1e9, "gflops": gf,
                         "roof_pct": 100 * gf / roof if roof else None})
        print(fmt_table("training (partial)", rows[-len(variants):], TRAIN_COLS), flush=True)
    return rows


def crops_of_photos(steps: int, batch: int = 16, hr_size: int = 96) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`steps` batches of random HR crops of scikit-image's sample photos and their bicubic LR."""
    from skimage import data as samples

    photos = [samples.astronaut(), samples.coffee(), samples.chelsea(), samples.rocket()]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        hrs, lrs = [], []
        for _ in range(batch):
            img = photos[rng.integers(len(photos))]
            y, x = rng.integers(img.shape[0] - hr_size), rng.integers(img.shape[1] - hr_size)
            hr = img[y : y + hr_size, x : x + hr_size]
            hrs.append(hr)
            lrs.append(bicubic_downscale(hr, 4))  # the LR the training data loader makes
        to_t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float().div(255)  # noqa: E731
        out.append((to_t(lrs), to_t(hrs)))
    return out


def bench_curves(steps1: int = 40, steps2: int = 20) -> list[dict]:
    """The 2026-11-25 loop and today's, from the same weights on the same batches of real photo
    crops: their losses step by step (the speed-ups must not change what is learnt)."""
    rows = []
    for phase, steps, label in (("srresnet", steps1, "phase 1 (MSE)"), ("srgan", steps2, "phase 2 (VGG54 + 1e-3 adv)")):
        batches = crops_of_photos(steps)
        old, new = ([step(b) for b in batches] for step in (training_step(phase, v) for v in TRAIN_VARIANTS[1:]))
        for i, (a, b) in enumerate(zip(old, new)):
            rows.append({"phase": label, "step": i + 1, "loss_11_25": a, "loss_now": b, "rel_diff": abs(b - a) / abs(a)})
        drift = [r["rel_diff"] for r in rows[-steps:]]
        print(f"{label}: loss {old[0]:.4g} -> {old[-1]:.4g} (11-25 loop) vs {new[0]:.4g} -> {new[-1]:.4g} (now); "
              f"relative difference per step: median {np.median(drift):.2%}, max {max(drift):.2%}", flush=True)
    return rows


def peak_rss_kb() -> int:
    """This process's peak RSS in KB from /proc (VmHWM).

    Not getrusage's ru_maxrss: Linux carries the forking parent's peak across fork+exec into it,
    so a child spawned by a large parent would report the parent's memory.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_upscale(size: str, threads: int | None) -> None:
    """In a fresh process: one default-tile upscale of a size=WxH photo; JSON on stdout."""
    if threads:
        torch.set_num_threads(threads)
    w, h = (int(v) for v in size.split("x"))
    model = srgan.load_model(MODEL, device="cpu")
    img = photo(h, w)
    rss_before = peak_rss_kb()
    t0 = time.perf_counter()
    out = upscale_array(model, img)
    seconds = time.perf_counter() - t0
    dtype = resolve_precision("auto", CPU)
    if model.stream is not None:  # the default CPU path: row streaming, in vertical strips if wide
        spans = [(0, h, px0, px1) for _, _, px0, px1 in _strips(w, model.tile_overlap)]
    else:
        spans = [(t.py0, t.py1, t.px0, t.px1) for t in tile_plan(model, h, w, 0, None, dtype, CPU)]
    processed = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in spans)  # LR px the network ran on
    json.dump({"input": size, "output": f"{out.shape[1]}x{out.shape[0]}", "seconds": seconds,
               "path": "stream" if model.stream is not None else "tiles",
               "peak_rss_mb": peak_rss_kb() / 1024,
               "rss_before_mb": rss_before / 1024, "tiles": len(spans),
               "tile": max(max(y1 - y0, x1 - x0) for y0, y1, x0, x1 in spans), "overlap_factor": processed / (w * h),
               "s_per_processed_lr_mp": seconds / (processed / 1e6),
               "gflop_per_s": model.module.config.flops_per_lr_pixel * w * h / seconds / 1e9}, sys.stdout)


def bench_memory(sizes: list[str], threads: int | None, timeout: float, roof: float | None) -> list[dict]:
    rows = []
    for size in sizes:
        cmd = [sys.executable, __file__, "--child-upscale", size] + (["--threads", str(threads)] if threads else [])
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            rows.append({"input": size, "note": f"timed out after {timeout:.0f} s"})
            continue
        except subprocess.CalledProcessError as exc:
            rows.append({"input": size, "note": f"failed: {exc.stderr.strip().splitlines()[-1:]}"})
            continue
        row = json.loads(done.stdout)
        w, h = (int(v) for v in size.split("x"))
        row["s_per_lr_mp"] = row["seconds"] / (w * h / 1e6)
        row["pct_roof"] = 100 * row["gflop_per_s"] / roof if roof else None
        rows.append(row)
        print(fmt_table("memory (partial)", rows[-1:], MEM_COLS), flush=True)
    return rows


INFER_COLS = [("size", "size", ""), ("variant", "variant", ""), ("precision", "prec", ""), ("seconds", "s", ".3f"),
              ("mp_per_s", "out MP/s", ".2f"), ("gflop_per_s", "GFLOP/s", ".0f"), ("pct_matmul", "% roof", ".0f"),
              ("speedup", "x baseline", ".2f"), ("psnr_db", "PSNR dB", ".1f"), ("max_abs_diff", "max diff", "d")]
TAIL_COLS = [("what", "what", ""), ("seconds", "s", ".3f"), ("gflop_per_s", "GFLOP/s", ".0f"),
             ("speedup", "x first", ".2f"), ("psnr_db", "PSNR dB", ".1f")]
TRAIN_COLS = [("phase", "phase", ""), ("variant", "variant", ""), ("sec_per_it", "s/it", ".3f"),
              ("it_per_s", "it/s", ".3f"), ("speedup", "x 11-25 loop", ".2f"), ("gflop", "GFLOP/step", ".0f"),
              ("gflops", "GFLOP/s", ".0f"), ("roof_pct", "% roof", ".0f")]
MEM_COLS = [("input", "input", ""), ("output", "output", ""), ("path", "path", ""), ("tiles", "tiles/strips", "d"), ("tile", "tile", "d"),
            ("overlap_factor", "overlap", ".2f"), ("seconds", "s", ".1f"), ("s_per_lr_mp", "s/LR MP", ".1f"),
            ("s_per_processed_lr_mp", "s/processed MP", ".1f"), ("gflop_per_s", "GFLOP/s", ".0f"),
            ("pct_roof", "% roof", ".0f"), ("peak_rss_mb", "peak RSS MB", ".0f"),
            ("note", "note", "")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes and rounds (about a minute or two)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write all results here")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the tables as Markdown here")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--rounds", type=int, help="timing rounds per comparison (default 3, quick 2)")
    p.add_argument("--large", action="store_true", help="memory: add a 4000x3000 -> 16000x12000 upscale")
    p.add_argument("--child-upscale", metavar="WxH", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_upscale:
        child_upscale(args.child_upscale, args.threads)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 3)
    model = srgan.load_model(MODEL, device="cpu").module.eval()  # the Generator behind the descriptor
    results: dict = {"machine": machine(), "quick": args.quick, "rounds": rounds,
                     "flops_per_lr_pixel": model.config.flops_per_lr_pixel}
    print("machine: " + json.dumps(results["machine"]), flush=True)
    matmul: dict = {}
    if "matmul" in args.sections:
        matmul = results["matmul_gflop_per_s"] = bench_matmul(rounds)
        print("\n## " + matmul_line(matmul), flush=True)
    if "inference" in args.sections:
        sizes = [128, 256] if args.quick else [128, 256, 512]
        results["inference"] = bench_inference(model, sizes, rounds, matmul)
        print(fmt_table("inference", results["inference"], INFER_COLS), flush=True)
    if "tail" in args.sections:
        results["tail"] = bench_tail(model, 128 if args.quick else 256, rounds)
        print(fmt_table(f"tail conv and forward ablations ({128 if args.quick else 256}^2 input)",
                        results["tail"], TAIL_COLS), flush=True)
    if "training" in args.sections:
        results["training"] = bench_training(2 if args.quick else rounds, matmul or bench_matmul(rounds))
        print(fmt_table("training (batch 16, 96 px HR)", results["training"], TRAIN_COLS), flush=True)
    if "curves" in args.sections:
        results["curves"] = bench_curves(*((10, 5) if args.quick else (40, 20)))
    if "memory" in args.sections:
        sizes = ["500x375", "1000x750"] if args.quick else ["500x375", "1000x750", "2000x1500"]
        if args.large:
            sizes.append("4000x3000")
        results["memory"] = bench_memory(sizes, args.threads, timeout=7200 if args.large else 1800,
                                         roof=(matmul or bench_matmul(rounds))["roof"])
        print(fmt_table("memory and scaling (child processes, default tile)", results["memory"], MEM_COLS), flush=True)
    results["machine"]["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown_tables(results))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
