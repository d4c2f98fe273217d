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
    CONTENT_LAYER_FOR, VGGFeatures, artifact_loss, discriminator_losses, generator_adversarial_loss,
    load_vgg19_features, pattern_loss, ragan_discriminator_losses, ragan_generator_loss,
)
from ..metrics import psnr_y, ssim_y
from ..metrics.lpips_model import LPIPS, load_lpips, lpips
from ..metrics.weights import MetricWeightsError
from ..models import (
    Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, UNetDiscriminator, UNetDiscriminatorConfig,
    load_generator, save_generator,
)
from .checkpoint import compact_state, expand_state, load_latest, refill_moments, save_checkpoint, trim_log
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


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training as configured; returns the path of generator.safetensors."""
    rank, world, device = _setup_distributed(cfg.device)
    main = rank == 0
    dtype = resolve_precision(cfg.precision, device)
    run_dir = Path(cfg.out)
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
    d_losses = ragan_discriminator_losses if cfg.gan_loss == "ragan" else discriminator_losses
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

    step, best = 0, -math.inf
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / "checkpoint.pt").exists() or (run_dir / "checkpoint.prev.pt").exists():
        state = expand_state(load_latest(run_dir))
        gen.load_state_dict(state["generator"])
        g_opt.load_state_dict(state["g_opt"])
        refill_moments(g_opt)
        if disc is not None and "discriminator" in state:
            disc.load_state_dict(state["discriminator"])
            d_opt.load_state_dict(state["d_opt"])
            refill_moments(d_opt)
        if ema is not None:
            ema.load_state_dict(state.get("ema", state["generator"]))
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        step, best = int(state["step"]), float(state.get("best", state.get("best_psnr", -math.inf)))
        log.info("resumed from %s at iteration %d", run_dir, step)
        if main and (dropped := trim_log(run_dir / "metrics.jsonl", step)):
            log.info("metrics.jsonl: dropped %d records after iteration %d (they are replayed)", dropped, step)
    if main:
        cfg.save(run_dir / "config.json")

    g_model, d_model = gen, disc
    g_first = cfg.gan_order == "g_first"
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        g_model = torch.nn.parallel.DistributedDataParallel(gen, device_ids=ids)
        if disc is not None:
            d_model = torch.nn.parallel.DistributedDataParallel(disc, device_ids=ids)

    # Tensor pairs for the EMA update, gathered once rather than rebuilding two state dicts per step.
    ema_pairs = list(zip(ema.state_dict().values(), gen.state_dict().values())) if ema is not None else []

    dataset = RandomCrops(pairs, cfg.patch_size, cfg.scale, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatches(step, cfg.batch_size, rank, world), num_workers=cfg.workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
    )
    batches = iter(loader)

    def d_step(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        d_opt.zero_grad(set_to_none=True)
        d_real, d_fake = d_losses(real_logits, fake_logits)
        scaler.scale(d_real + d_fake).backward()
        scaler.step(d_opt)
        return {"d_loss": (d_real + d_fake).detach(), "d_real_loss": d_real.detach(), "d_fake_loss": d_fake.detach(),
                "d_hr": torch.sigmoid(real_logits).mean().detach(), "d_sr": torch.sigmoid(fake_logits).mean().detach()}

    def adversarial(real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        # RaGAN's reference D(HR) is a constant for G.
        return (ragan_generator_loss(real_logits.detach(), fake_logits) if cfg.gan_loss == "ragan"
                else generator_adversarial_loss(fake_logits))

    def save_all(reason: str) -> None:
        if not main:
            return
        state = {"step": step, "best": best, "config": cfg.to_dict(), "rng": torch.get_rng_state(),
                 "generator": gen.state_dict(), "g_opt": g_opt.state_dict(), "scaler": scaler.state_dict()}
        if disc is not None:
            state |= {"discriminator": disc.state_dict(), "d_opt": d_opt.state_dict()}
        if ema is not None:
            state["ema"] = ema.state_dict()
        save_checkpoint(run_dir, compact_state(state, cfg.checkpoint_moments))
        recipe = _recipe(cfg, step)
        save_generator(ema if ema is not None else gen, run_dir / "generator.safetensors", recipe=recipe)
        if ema is not None:  # the raw weights too: in a GAN phase they often score better than the EMA
            save_generator(gen, run_dir / "generator_raw.safetensors", recipe=recipe | {"weights": "raw generator (no EMA)"})
        log.info("saved checkpoint at iteration %d (%s)", step, reason)

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
            for opt in (g_opt, d_opt):
                for group in opt.param_groups if opt is not None else ():
                    group["lr"] = lr_now

            losses: dict[str, torch.Tensor] = {}
            with autocast(device, dtype):
                sr = g_model(lr_img)
            if d_model is not None and not g_first:
                with autocast(device, dtype):
                    real_logits, fake_logits = d_model(hr_img).float(), d_model(sr.detach()).float()
                losses |= d_step(real_logits, fake_logits)

            g_opt.zero_grad(set_to_none=True)
            if cfg.content_loss == "l1":
                content = F.l1_loss(sr.float(), hr_img)
            elif vgg is not None:
                # HR features without a graph: backpropagating through a joint SR+HR batch would
                # cost a third more VGG work for gradients nobody uses.
                with autocast(device, dtype):
                    with torch.no_grad():
                        real_f = vgg(hr_img).float()
                    fake_f = vgg(sr).float()
                content = F.mse_loss(fake_f, real_f)
            else:
                content = F.mse_loss(sr.float(), hr_img)
            g_loss = content
            losses["content_loss"] = content.detach()
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
                with torch.no_grad(), autocast(device, dtype):
                    ema_sr = ema(lr_img)
                artifacts = artifact_loss(sr, hr_img, ema_sr)
                g_loss = g_loss + cfg.ldl_weight * artifacts
                losses["ldl_loss"] = artifacts.detach()

            if disc is not None and g_first:
                # G first (BasicSR's order): D is still at its weights of this step when it takes its
                # own step, so one forward of D on HR and one on SR serve both steps. SR enters D as a
                # leaf: G's adversarial gradient is read off D's input (backward to that input only,
                # so no D weight gradients), then the same graph gives D its weight gradients, and
                # nothing of D's loss reaches G.
                sr_leaf = sr.detach().requires_grad_(True)
                with autocast(device, dtype):
                    real_logits, fake_logits = d_model(hr_img).float(), d_model(sr_leaf).float()
                adv = adversarial(real_logits, fake_logits)
                scaler.scale(cfg.adv_weight * adv).backward(inputs=[sr_leaf], retain_graph=True)
                losses |= {"adv_loss": adv.detach(), "g_loss": (g_loss + cfg.adv_weight * adv).detach()}
                torch.autograd.backward([scaler.scale(g_loss), sr], [None, sr_leaf.grad])
                losses |= d_step(real_logits, fake_logits)
            elif disc is not None:
                # D frozen: G needs gradients through D, not D's own, which the next D step would
                # discard anyway; skipping them saves a third of D's backward. The bare module, not
                # the DDP wrapper: this backward must not all-reduce D's (absent) gradients.
                disc.requires_grad_(False)
                with autocast(device, dtype):
                    # D after its update (the paper's alternation); RaGAN's reference D(HR) needs no graph.
                    with torch.no_grad():
                        real_g = disc(hr_img).float() if cfg.gan_loss == "ragan" else None
                    adv = adversarial(real_g, disc(sr).float())
                g_loss = g_loss + cfg.adv_weight * adv
                losses |= {"adv_loss": adv.detach(), "g_loss": g_loss.detach()}
                scaler.scale(g_loss).backward()
                disc.requires_grad_(True)
            else:
                losses["g_loss"] = g_loss.detach()
                scaler.scale(g_loss).backward()
            scaler.step(g_opt)
            scaler.update()
            if ema is not None:
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
            validating_now = main and bool(val_images) and (step % cfg.val_every == 0 or step == cfg.iterations)
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
            epoch = (step - 1) * cfg.batch_size // len(pairs)
            if main and logging_now:
                means = {k: v / count for k, v in totals.items()}
                record = {"iteration": step, "epoch": epoch, "lr": lr_now, **means,
                          "it_per_s": count / step_time, "sec_per_it": step_time / count,
                          "data_time": data_time / count, "data_frac": data_time / max(step_time, 1e-9)}
                bar.set_postfix({k: f"{means[k]:.4g}" for k in ("g_loss", "d_loss") if k in means})
                log.debug("it %d %s", step, means)
                sums, count, data_time, step_time = {}, 0, 0.0, 0.0
            if validating_now:
                scored = ema if ema is not None else gen
                scores, outputs = validate(scored, val_images, cfg.precision, cfg.scale, lpips_net)
                metric, value = selection_metric(scores, cfg.phase)
                if value > best:
                    best = value
                    save_generator(scored, run_dir / "best.safetensors", recipe=_recipe(cfg, step) | {"selected_by": metric})
                record |= {"iteration": step, "epoch": epoch, **scores}
                shown = ", ".join(f"{k.removeprefix('val_')} {v:.4f}" for k, v in scores.items())
                bar.write(f"iteration {step}: validation {shown} (best {metric.removeprefix('val_')} {abs(best):.4f})")
                save_samples(run_dir / "samples" / f"step_{step:07d}.png", val_images, outputs)
            if record and metrics_file:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                if writer is not None:
                    for k, v in record.items():
                        if k != "iteration":
                            writer.add_scalar(k, v, step)
            if saving_now:
                save_all("scheduled")
            if stop_signal:
                save_all(f"signal {stop_signal[0]}")
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
