"""The training loop for both phases of the paper, readable in one sitting.

Phase "srresnet": the generator alone on a pixel loss (MSE, the paper's SRResNet).
Phase "srgan": starting from a trained SRResNet, alternate
  D: BCE(D(HR), 1) + BCE(D(G(LR)), 0)
  G: content(G(LR), HR) + adv_weight * BCE(D(G(LR)), 1)
with content = VGG54 / VGG22 feature MSE (or pixel MSE for the paper's SRGAN-MSE), D's step
first (the paper's order) or, with gan_order = "g_first", both steps against D as it was at
the start of the step, sharing D's forwards (BasicSR's order).
Recipe options beyond the paper, each off by default (config.py): a per-pixel U-Net
discriminator, the relativistic average GAN loss, an L1 pixel term, the LDL artifact term
against the EMA model, and the low-frequency and sub-pixel pattern terms.

The batch of iteration s is a pure function of s (see data.dataset.RandomCrops), the learning
rate too (config.lr_at), and checkpoints hold every other piece of state, so a resumed run ends
with the same weights as one that never stopped. Under torchrun each rank takes its slice of the
same global batch (DDP; gloo on CPU, nccl on CUDA); only rank 0 logs and writes.

train() builds the run, restores it, and then each iteration takes one step function
(srresnet_step, srgan_step_d_first or srgan_step_g_first), validates, logs and saves.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ..data.dataset import RandomCrops, StepBatches, load_pairs
from ..data.realistic import training_pair
from ..device import autocast, keep_freed_memory, resolve_precision, select_device
from ..inference.engine import upscale_array
from ..losses import (
    CONTENT_LAYER_FOR,
    VGGFeatures,
    artifact_loss,
    discriminator_losses,
    generator_adversarial_loss,
    load_vgg19_features,
    pattern_loss,
    ragan_discriminator_losses,
    ragan_generator_loss,
)
from ..metrics import psnr_y, ssim_y
from ..metrics.lpips_model import LPIPS, load_lpips, lpips
from ..metrics.weights import MetricWeightsError
from ..models import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    UNetDiscriminator,
    UNetDiscriminatorConfig,
    load_generator,
    save_generator,
)
from .checkpoint import (
    compact_state,
    expand_state,
    load_latest,
    refill_moments,
    save_checkpoint,
    trim_log,
)
from .config import TrainConfig, lr_at

log = logging.getLogger(__name__)


class TrainingStopped(Exception):
    """A run stopped early (signal or non-finite loss) after saving what it had."""

    def __init__(self, message: str, interrupted: bool) -> None:
        super().__init__(message)
        self.interrupted = interrupted


def _setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group under torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, select_device(device_name)
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local)
    return dist.get_rank(), dist.get_world_size(), select_device("cpu" if device_name == "auto" else device_name)


def validate(model: Generator, images, precision: str, scale: int,
             lpips_net: LPIPS | None = None) -> tuple[dict[str, float], list[np.ndarray]]:
    """Mean Y-PSNR, Y-SSIM and (with `lpips_net`) LPIPS, scale px shaved, over whole validation images.

    Uses the tiled engine of `srgan upscale` and the metrics of `srgan eval`, so validation
    scores exactly what users get. Returns ({"val_psnr_y", "val_ssim_y"[, "val_lpips"]}, outputs).
    """
    was_training = model.training
    outputs = [upscale_array(model, lr, precision=precision) for _, lr, _ in images]
    model.train(was_training)
    pairs = list(zip(outputs, (hr for _, _, hr in images)))
    scores = {"val_psnr_y": float(np.mean([psnr_y(sr, hr, scale) for sr, hr in pairs])),
              "val_ssim_y": float(np.mean([ssim_y(sr, hr, scale) for sr, hr in pairs]))}
    if lpips_net is not None:
        scores["val_lpips"] = float(np.mean([lpips(sr, hr, shave=scale, weights=lpips_net) for sr, hr in pairs]))
    return scores, outputs


def selection_metric(scores: dict[str, float], phase: str) -> tuple[str, float]:
    """(name, value to maximise) that picks the best checkpoint: a GAN run by -LPIPS when measured,
    everything else by PSNR.

    PSNR prefers the blurriest output, so it cannot judge a GAN run; LPIPS is a judge here, never a loss.
    """
    if phase == "srgan" and "val_lpips" in scores:
        return "val_lpips", -scores["val_lpips"]
    return "val_psnr_y", scores["val_psnr_y"]


def save_samples(path: Path, images, outputs, limit: int = 3) -> None:
    """A row per image: LR (nearest, enlarged) | SR | HR."""
    rows = []
    for (_, lr, hr), sr in list(zip(images, outputs))[:limit]:
        h, w = hr.shape[:2]
        big_lr = np.asarray(Image.fromarray(lr).resize((w, h), Image.Resampling.NEAREST))
        rows.append(np.concatenate([big_lr, sr, hr], axis=1))
    if rows:
        width = max(r.shape[1] for r in rows)
        grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(grid).save(path)


def _recipe(cfg: TrainConfig, step: int) -> dict:
    return {
        "phase": cfg.phase, "iterations": step, "batch_size": cfg.batch_size, "patch_size": cfg.patch_size,
        "lr": cfg.lr, "lr_schedule": cfg.lr_schedule, "content_loss": cfg.content_loss,
        "adv_weight": cfg.adv_weight if cfg.phase == "srgan" else 0.0, "ema_decay": cfg.ema_decay,
        "lowfreq_weight": cfg.lowfreq_weight, "pattern_weight": cfg.pattern_weight,
        **({"discriminator": cfg.discriminator, "d_channels": cfg.d_channels, "gan_loss": cfg.gan_loss,
            "gan_order": cfg.gan_order, "pixel_weight": cfg.pixel_weight, "ldl_weight": cfg.ldl_weight}
           if cfg.phase == "srgan" else {}),
        "data": [Path(d).name for d in cfg.train_dirs],
        "degradation": ("bicubic x1/scale (Pillow, antialiased)" if cfg.degradation == "bicubic"
                        else cfg.realesrgan.summary()),
        "init": Path(cfg.init).name if cfg.init else None, "precision": cfg.precision,
    }


@dataclass
class Run:
    """What the training steps work with, as `build` makes it: data, networks, optimisers, loss networks."""

    cfg: TrainConfig
    device: torch.device
    dtype: torch.dtype
    pairs: list
    val_images: list
    gen: Generator
    g_opt: torch.optim.Adam
    scaler: torch.amp.GradScaler
    disc: torch.nn.Module | None
    d_opt: torch.optim.Adam | None
    ema: Generator | None
    vgg: VGGFeatures | None
    lpips_net: LPIPS | None
    # gen and disc as the steps call them: DDP-wrapped under torchrun, else the modules themselves.
    g_model: torch.nn.Module
    d_model: torch.nn.Module | None


def build(cfg: TrainConfig, device: torch.device, main: bool, world: int) -> Run:
    """Seed, then make everything in a fixed order, which fixes each network's initial weights."""
    dtype = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        keep_freed_memory()  # the step's activations are reused, not page-faulted in again

    # Everything that can fail on bad input fails here, before any work.
    vgg = None
    if cfg.phase == "srgan" and cfg.content_loss in CONTENT_LAYER_FOR:
        vgg = VGGFeatures(load_vgg19_features(cfg.vgg_weights), CONTENT_LAYER_FOR[cfg.content_loss])
        vgg = vgg.to(device, memory_format=torch.channels_last)
    pairs = load_pairs(list(cfg.train_dirs), cfg.scale, cfg.patch_size, list(cfg.train_lr_dirs) or None)
    val_images = []
    if main and cfg.val_dir:
        val_lr = [cfg.val_lr_dir] if cfg.val_lr_dir else None
        val_images = [(Path(p.name).stem, p.lr, p.hr) for p in load_pairs([cfg.val_dir], cfg.scale, cfg.scale * 4, val_lr)]
    if cfg.epochs:
        cfg = dataclasses.replace(cfg, iterations=math.ceil(cfg.epochs * len(pairs) / cfg.batch_size))
    log.info("training on %d images (%d MB decoded), %d iterations, %s %s, %d process(es)", len(pairs),
             sum(p.hr.nbytes + p.lr.nbytes for p in pairs) >> 20, cfg.iterations, device,
             str(dtype).removeprefix("torch."), world)

    gcfg = GeneratorConfig(scale=cfg.scale, num_blocks=cfg.num_blocks, channels=cfg.channels)
    gen = Generator(gcfg)
    if cfg.init:
        init = load_generator(cfg.init)
        if init.config != gcfg:
            raise ValueError(f"--init {cfg.init}: architecture {init.config} differs from the configured {gcfg}")
        gen.load_state_dict(init.state_dict())
    disc = None
    if cfg.phase == "srgan":
        disc = (UNetDiscriminator(UNetDiscriminatorConfig(channels=cfg.d_channels)) if cfg.discriminator == "unet"
                else Discriminator(DiscriminatorConfig(input_size=cfg.patch_size, base_channels=cfg.d_channels)))
    if cfg.sync_bn and device.type != "cuda":
        raise ValueError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only)")
    if world > 1 and cfg.sync_bn:
        gen = torch.nn.SyncBatchNorm.convert_sync_batchnorm(gen)
        disc = torch.nn.SyncBatchNorm.convert_sync_batchnorm(disc) if disc is not None else None
    gen = gen.to(device, memory_format=torch.channels_last).train()
    ema = copy.deepcopy(gen).eval().requires_grad_(False) if cfg.ema_decay else None
    g_opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    d_opt = None
    if disc is not None:
        disc = disc.to(device, memory_format=torch.channels_last).train()
        d_opt = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    # fp16 needs loss scaling; bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    # LPIPS for validation, when its weights can be found: missing weights are a note, not an error.
    lpips_net = None
    if main and val_images:
        try:
            lpips_net = load_lpips(cfg.metric_weights).to(device)
        except MetricWeightsError as exc:
            log.warning("validation without LPIPS: %s", exc)
    return Run(cfg, device, dtype, pairs, val_images, gen, g_opt, scaler, disc, d_opt, ema, vgg, lpips_net,
               g_model=gen, d_model=disc)


def restore(run: Run, run_dir: Path, main: bool) -> tuple[int, float]:
    """Load the last checkpoint's networks, optimisers and RNG; (step, best score), or (0, -inf) if none."""
    if not ((run_dir / "checkpoint.pt").exists() or (run_dir / "checkpoint.prev.pt").exists()):
        return 0, -math.inf
    state = expand_state(load_latest(run_dir))
    run.gen.load_state_dict(state["generator"])
    run.g_opt.load_state_dict(state["g_opt"])
    refill_moments(run.g_opt)
    if run.disc is not None and "discriminator" in state:
        run.disc.load_state_dict(state["discriminator"])
        run.d_opt.load_state_dict(state["d_opt"])
        refill_moments(run.d_opt)
    if run.ema is not None:
        run.ema.load_state_dict(state.get("ema", state["generator"]))
    if "scaler" in state:
        run.scaler.load_state_dict(state["scaler"])
    if "rng" in state:
        torch.set_rng_state(state["rng"])
    step, best = int(state["step"]), float(state.get("best", state.get("best_psnr", -math.inf)))
    log.info("resumed from %s at iteration %d", run_dir, step)
    if main and (dropped := trim_log(run_dir / "metrics.jsonl", step)):
        log.info("metrics.jsonl: dropped %d records after iteration %d (they are replayed)", dropped, step)
    return step, best


def generator_loss(run: Run, sr: torch.Tensor, lr_img: torch.Tensor,
                   hr_img: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss short of the adversarial term: content + the weighted extra terms; and each term."""
    cfg = run.cfg
    if cfg.content_loss == "l1":
        content = F.l1_loss(sr.float(), hr_img)
    elif run.vgg is not None:
        # HR features without a graph: backpropagating through a joint SR+HR batch would
        # cost a third more VGG work for gradients nobody uses.
        with autocast(run.device, run.dtype):
            with torch.no_grad():
                real_f = run.vgg(hr_img).float()
            fake_f = run.vgg(sr).float()
        content = F.mse_loss(fake_f, real_f)
    else:
        content = F.mse_loss(sr.float(), hr_img)
    g_loss, losses = content, {"content_loss": content.detach()}
    if cfg.lowfreq_weight:
        lowfreq = F.mse_loss(F.avg_pool2d(sr.float(), cfg.scale), F.avg_pool2d(hr_img, cfg.scale))
        g_loss = g_loss + cfg.lowfreq_weight * lowfreq
        losses["lowfreq_loss"] = lowfreq.detach()
    if cfg.pattern_weight:
        pattern = pattern_loss(sr, hr_img, cfg.scale)
        g_loss = g_loss + cfg.pattern_weight * pattern
        losses["pattern_loss"] = pattern.detach()
    if cfg.pixel_weight:
        pixel = F.l1_loss(sr.float(), hr_img)
        g_loss = g_loss + cfg.pixel_weight * pixel
        losses["pixel_loss"] = pixel.detach()
    if cfg.ldl_weight:
        with torch.no_grad(), autocast(run.device, run.dtype):
            ema_sr = run.ema(lr_img)
        artifacts = artifact_loss(sr, hr_img, ema_sr)
        g_loss = g_loss + cfg.ldl_weight * artifacts
        losses["ldl_loss"] = artifacts.detach()
    return g_loss, losses


def adversarial_loss(run: Run, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial loss; RaGAN's reference D(HR) is a constant for G."""
    return (ragan_generator_loss(real_logits.detach(), fake_logits) if run.cfg.gan_loss == "ragan"
            else generator_adversarial_loss(fake_logits))


def d_update(run: Run, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """D's step on its loss over these logits of HR and SR."""
    d_losses = ragan_discriminator_losses if run.cfg.gan_loss == "ragan" else discriminator_losses
    run.d_opt.zero_grad(set_to_none=True)
    d_real, d_fake = d_losses(real_logits, fake_logits)
    run.scaler.scale(d_real + d_fake).backward()
    run.scaler.step(run.d_opt)
    return {"d_loss": (d_real + d_fake).detach(), "d_real_loss": d_real.detach(), "d_fake_loss": d_fake.detach(),
            "d_hr": torch.sigmoid(real_logits).mean().detach(), "d_sr": torch.sigmoid(fake_logits).mean().detach()}


def srresnet_step(run: Run, lr_img: torch.Tensor, hr_img: torch.Tensor) -> dict[str, torch.Tensor]:
    """SRResNet: G steps on its content loss alone."""
    with autocast(run.device, run.dtype):
        sr = run.g_model(lr_img)
    run.g_opt.zero_grad(set_to_none=True)
    g_loss, losses = generator_loss(run, sr, lr_img, hr_img)
    losses["g_loss"] = g_loss.detach()
    run.scaler.scale(g_loss).backward()
    run.scaler.step(run.g_opt)
    run.scaler.update()
    return losses


def srgan_step_d_first(run: Run, lr_img: torch.Tensor, hr_img: torch.Tensor) -> dict[str, torch.Tensor]:
    """The paper's alternation: D steps on D(HR) vs D(G(LR)), then G against the updated D."""
    cfg, disc = run.cfg, run.disc
    with autocast(run.device, run.dtype):
        sr = run.g_model(lr_img)
    with autocast(run.device, run.dtype):
        real_logits, fake_logits = run.d_model(hr_img).float(), run.d_model(sr.detach()).float()
    losses = d_update(run, real_logits, fake_logits)

    run.g_opt.zero_grad(set_to_none=True)
    g_loss, g_losses = generator_loss(run, sr, lr_img, hr_img)
    losses |= g_losses
    # D frozen: G needs gradients through D, not D's own, which the next D step would
    # discard anyway; skipping them saves a third of D's backward. The bare module, not
    # the DDP wrapper: this backward must not all-reduce D's (absent) gradients.
    disc.requires_grad_(False)
    with autocast(run.device, run.dtype):
        # RaGAN's reference D(HR) needs no graph.
        with torch.no_grad():
            real_g = disc(hr_img).float() if cfg.gan_loss == "ragan" else None
        adv = adversarial_loss(run, real_g, disc(sr).float())
    g_loss = g_loss + cfg.adv_weight * adv
    losses |= {"adv_loss": adv.detach(), "g_loss": g_loss.detach()}
    run.scaler.scale(g_loss).backward()
    disc.requires_grad_(True)
    run.scaler.step(run.g_opt)
    run.scaler.update()
    return losses


def srgan_step_g_first(run: Run, lr_img: torch.Tensor, hr_img: torch.Tensor) -> dict[str, torch.Tensor]:
    """BasicSR's order: G, then D, both against D as it was at the start of the step.

    So one forward of D on HR and one on SR serve both steps. SR enters D as a leaf: G's
    adversarial gradient is read off D's input (backward to that input only, so no D weight
    gradients), then the same graph gives D its weight gradients, and nothing of D's loss reaches G.
    """
    cfg, scaler = run.cfg, run.scaler
    with autocast(run.device, run.dtype):
        sr = run.g_model(lr_img)
    run.g_opt.zero_grad(set_to_none=True)
    g_loss, losses = generator_loss(run, sr, lr_img, hr_img)
    sr_leaf = sr.detach().requires_grad_(True)
    with autocast(run.device, run.dtype):
        real_logits, fake_logits = run.d_model(hr_img).float(), run.d_model(sr_leaf).float()
    adv = adversarial_loss(run, real_logits, fake_logits)
    scaler.scale(cfg.adv_weight * adv).backward(inputs=[sr_leaf], retain_graph=True)
    losses |= {"adv_loss": adv.detach(), "g_loss": (g_loss + cfg.adv_weight * adv).detach()}
    torch.autograd.backward([scaler.scale(g_loss), sr], [None, sr_leaf.grad])
    losses |= d_update(run, real_logits, fake_logits)
    scaler.step(run.g_opt)
    scaler.update()
    return losses


def save(run: Run, run_dir: Path, step: int, best: float, reason: str) -> None:
    """The checkpoint, and the generator (the EMA's, when kept, and the raw one beside it)."""
    cfg, gen, ema = run.cfg, run.gen, run.ema
    state = {"step": step, "best": best, "config": cfg.to_dict(), "rng": torch.get_rng_state(),
             "generator": gen.state_dict(), "g_opt": run.g_opt.state_dict(), "scaler": run.scaler.state_dict()}
    if run.disc is not None:
        state |= {"discriminator": run.disc.state_dict(), "d_opt": run.d_opt.state_dict()}
    if ema is not None:
        state["ema"] = ema.state_dict()
    save_checkpoint(run_dir, compact_state(state, cfg.checkpoint_moments))
    recipe = _recipe(cfg, step)
    save_generator(ema if ema is not None else gen, run_dir / "generator.safetensors", recipe=recipe)
    if ema is not None:  # the raw weights too: in a GAN phase they often score better than the EMA
        save_generator(gen, run_dir / "generator_raw.safetensors", recipe=recipe | {"weights": "raw generator (no EMA)"})
    log.info("saved checkpoint at iteration %d (%s)", step, reason)


def validate_and_keep_best(run: Run, run_dir: Path, step: int, best: float,
                           bar: tqdm) -> tuple[dict[str, float], float]:
    """Validation scores, and the best score so far; a new best is saved as best.safetensors."""
    scored = run.ema if run.ema is not None else run.gen
    scores, outputs = validate(scored, run.val_images, run.cfg.precision, run.cfg.scale, run.lpips_net)
    metric, value = selection_metric(scores, run.cfg.phase)
    if value > best:
        best = value
        save_generator(scored, run_dir / "best.safetensors", recipe=_recipe(run.cfg, step) | {"selected_by": metric})
    shown = ", ".join(f"{k.removeprefix('val_')} {v:.4f}" for k, v in scores.items())
    bar.write(f"iteration {step}: validation {shown} (best {metric.removeprefix('val_')} {abs(best):.4f})")
    save_samples(run_dir / "samples" / f"step_{step:07d}.png", run.val_images, outputs)
    return scores, best


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training as configured; returns the path of generator.safetensors."""
    rank, world, device = _setup_distributed(cfg.device)
    main = rank == 0
    run = build(cfg, device, main, world)
    cfg = run.cfg  # iterations set by epochs
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    step, best = restore(run, run_dir, main)
    if main:
        cfg.save(run_dir / "config.json")
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        run.g_model = torch.nn.parallel.DistributedDataParallel(run.gen, device_ids=ids)
        if run.disc is not None:
            run.d_model = torch.nn.parallel.DistributedDataParallel(run.disc, device_ids=ids)
    train_step = (srresnet_step if cfg.phase == "srresnet" else
                  srgan_step_g_first if cfg.gan_order == "g_first" else srgan_step_d_first)
    # Tensor pairs for the EMA update, gathered once rather than rebuilding two state dicts per step.
    ema_pairs = list(zip(run.ema.state_dict().values(), run.gen.state_dict().values())) if run.ema is not None else []

    dataset = RandomCrops(run.pairs, cfg.patch_size, cfg.scale, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatches(step, cfg.batch_size, rank, world), num_workers=cfg.workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
    )
    batches = iter(loader)

    stop_signal: list[int] = []
    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handlers[sig] = signal.signal(sig, lambda s, _f: stop_signal.append(s))
        except ValueError:  # not in the main thread
            pass

    writer = _tensorboard(run_dir) if main else None
    metrics_file = open(run_dir / "metrics.jsonl", "a") if main else None
    # In a log file (not a terminal) refresh the bar rarely, so logs stay readable.
    interactive = sys.stderr.isatty()
    bar = tqdm(total=cfg.iterations, initial=step, desc=cfg.phase, unit="it", disable=not main,
               dynamic_ncols=True, mininterval=0.1 if interactive else 30)
    sums: dict[str, torch.Tensor] = {}
    count, data_time, step_time = 0, 0.0, 0.0
    try:
        while step < cfg.iterations:
            t0 = time.perf_counter()
            lr_img, hr_img = next(batches)
            if cfg.degradation == "realesrgan":  # LR (and sharpened HR) made on the fly from the HR crops
                lr_img, hr_img = training_pair(hr_img.to(device), step, cfg.realesrgan, cfg.scale, cfg.seed,
                                               offset=rank * (cfg.batch_size // world))
            lr_img = lr_img.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            hr_img = hr_img.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            lr_now = lr_at(step, cfg)
            for opt in (run.g_opt, run.d_opt):
                for group in opt.param_groups if opt is not None else ():
                    group["lr"] = lr_now
            losses = train_step(run, lr_img, hr_img)
            with torch.no_grad():
                for e, p in ema_pairs:
                    e.lerp_(p, 1 - cfg.ema_decay) if e.is_floating_point() else e.copy_(p)
            step += 1

            # Losses are summed on the device and read back only when they are logged, validated
            # or checkpointed: a read every step would stall a GPU until the CPU queues the next one.
            # The read comes before t2, so step times include the GPU work queued since the last one.
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v.float()
            logging_now = step % cfg.log_every == 0 or step == cfg.iterations
            validating_now = main and bool(run.val_images) and (step % cfg.val_every == 0 or step == cfg.iterations)
            saving_now = step % cfg.save_every == 0 or step == cfg.iterations
            if logging_now or validating_now or saving_now or stop_signal:
                totals = {k: float(v) for k, v in sums.items()}
                if not all(math.isfinite(v) for v in totals.values()):
                    # Checked before any save, so the last checkpoint on disk is always a finite one.
                    raise FloatingPointError(f"non-finite loss by iteration {step}: {totals}")
            t2 = time.perf_counter()
            count, data_time, step_time = count + 1, data_time + (t1 - t0), step_time + (t2 - t0)
            bar.update(1)

            record: dict[str, float | int] = {}
            epoch = (step - 1) * cfg.batch_size // len(run.pairs)
            if main and logging_now:
                means = {k: v / count for k, v in totals.items()}
                record = {"iteration": step, "epoch": epoch, "lr": lr_now, **means,
                          "it_per_s": count / step_time, "sec_per_it": step_time / count,
                          "data_time": data_time / count, "data_frac": data_time / max(step_time, 1e-9)}
                bar.set_postfix({k: f"{means[k]:.4g}" for k in ("g_loss", "d_loss") if k in means})
                log.debug("it %d %s", step, means)
                sums, count, data_time, step_time = {}, 0, 0.0, 0.0
            if validating_now:
                scores, best = validate_and_keep_best(run, run_dir, step, best, bar)
                record |= {"iteration": step, "epoch": epoch, **scores}
            if record and metrics_file:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                if writer is not None:
                    for k, v in record.items():
                        if k != "iteration":
                            writer.add_scalar(k, v, step)
            if main and saving_now:
                save(run, run_dir, step, best, "scheduled")
            if stop_signal:
                if main:
                    save(run, run_dir, step, best, f"signal {stop_signal[0]}")
                raise TrainingStopped(f"stopped by signal {stop_signal[0]} at iteration {step}; "
                                      f"continue with --resume --out {run_dir}", interrupted=True)
        if world > 1:
            dist.barrier()  # let rank 0 finish writing before any rank tears the group down
    except FloatingPointError as exc:
        raise TrainingStopped(f"{exc}; the last good checkpoint is in {run_dir}", interrupted=False) from None
    finally:
        bar.close()
        if metrics_file:
            metrics_file.close()
        if writer is not None:
            writer.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if world > 1:
            dist.destroy_process_group()
    return run_dir / "generator.safetensors"


def _tensorboard(run_dir: Path):
    """A SummaryWriter when tensorboard is installed, else None (metrics.jsonl always exists)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
