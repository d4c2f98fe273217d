"""The training loop for both phases of the paper, readable in one sitting.

Phase "srresnet": the generator alone on a pixel loss (MSE, the paper's SRResNet).
Phase "srgan": starting from a trained SRResNet, alternate
  D: BCE(D(HR), 1) + BCE(D(G(LR)), 0)
  G: content(G(LR), HR) + adv_weight * BCE(D(G(LR)), 1)
with content = VGG54 / VGG22 feature MSE (or pixel MSE for the paper's SRGAN-MSE).

Runs on one process or many under torchrun (DDP, one data shard per rank); only rank 0 writes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image

from ..data.dataset import RandomCrops, load_pairs
from ..device import autocast, resolve_precision, select_device
from ..losses import CONTENT_LAYER_FOR, VGGFeatures, discriminator_loss, generator_adversarial_loss, load_vgg19_features
from ..inference.engine import upscale_array
from ..metrics import psnr_y
from ..models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, load_generator, save_generator
from .checkpoint import load_latest, save_checkpoint
from .config import TrainConfig, lr_at

log = logging.getLogger(__name__)


class TrainingStopped(Exception):
    """Raised when a run stops early (signal or non-finite loss) after saving a checkpoint."""


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if torch.cuda.is_available() and device_name in ("auto", "cuda") else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if backend == "nccl":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return Dist(rank, world), torch.device("cuda", local)
        return Dist(rank, world), select_device("cpu" if device_name == "auto" else device_name)
    return Dist(), select_device(device_name)


def _load_val_images(folder: str | None, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not folder:
        return []
    pairs = load_pairs([folder], scale, min_size=scale * 4)
    return [(Path(p.name).stem, p.lr, p.hr) for p in pairs]


def validate(model: Generator, images, precision: str, scale: int) -> tuple[float, list[np.ndarray]]:
    """Mean Y-PSNR (scale px shaved) over whole validation images, and the SR outputs.

    Uses the same tiled inference engine as `srgan upscale`, so validation scores what users get.
    """
    was_training = model.training
    outputs = [upscale_array(model, lr, precision=precision) for _, lr, _ in images]
    model.train(was_training)
    scores = [psnr_y(sr, hr, scale) for sr, (_, _, hr) in zip(outputs, images)]
    return float(np.mean(scores)), outputs


def _save_samples(run_dir: Path, step: int, images, outputs, limit: int = 3) -> None:
    """A row per image: bicubic | SR | HR, saved as samples/step_XXXXXXX.png."""
    rows = []
    for (_, lr, hr), sr in list(zip(images, outputs))[:limit]:
        h, w = hr.shape[:2]
        bic = np.asarray(Image.fromarray(lr).resize((w, h), Image.Resampling.BICUBIC))
        rows.append(np.concatenate([bic, sr, hr], axis=1))
    if not rows:
        return
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
    out = run_dir / "samples" / f"step_{step:07d}.png"
    out.parent.mkdir(exist_ok=True)
    Image.fromarray(grid).save(out)


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training as configured; returns the path of generator.safetensors."""
    dinfo, device = _setup_distributed(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    run_dir = Path(cfg.out)
    torch.manual_seed(cfg.seed + dinfo.rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # Everything that can fail on bad input fails here, before any work.
    vgg = None
    if cfg.phase == "srgan" and cfg.content_loss in CONTENT_LAYER_FOR:
        vgg = VGGFeatures(load_vgg19_features(cfg.vgg_weights), CONTENT_LAYER_FOR[cfg.content_loss]).to(device)
        vgg = vgg.to(memory_format=torch.channels_last)
    pairs = load_pairs(list(cfg.train_dirs), cfg.scale, min_size=cfg.patch_size)
    val_images = _load_val_images(cfg.val_dir, cfg.scale) if dinfo.main else []
    log.info("training on %d images (%d MB decoded) with %s %s", len(pairs),
             sum(p.hr.nbytes + p.lr.nbytes for p in pairs) >> 20, device, str(dtype).removeprefix("torch."))

    gcfg = GeneratorConfig(scale=cfg.scale, num_blocks=cfg.num_blocks, channels=cfg.channels)
    gen = Generator(gcfg)
    if cfg.init:
        init = load_generator(cfg.init)
        if init.config != gcfg:
            raise ValueError(f"--init {cfg.init}: architecture {init.config} differs from the configured {gcfg}")
        gen.load_state_dict(init.state_dict())
    gen = gen.to(device, memory_format=torch.channels_last).train()
    g_opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    disc = d_opt = None
    if cfg.phase == "srgan":
        disc = Discriminator(DiscriminatorConfig(input_size=cfg.patch_size)).to(device, memory_format=torch.channels_last).train()
        d_opt = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))

    step, best = 0, -math.inf
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / "checkpoint.pt").exists() or (run_dir / "checkpoint.prev.pt").exists():
        state = load_latest(run_dir)
        gen.load_state_dict(state["generator"])
        g_opt.load_state_dict(state["g_opt"])
        if disc is not None and "discriminator" in state:
            disc.load_state_dict(state["discriminator"])
            d_opt.load_state_dict(state["d_opt"])
        step, best = int(state["step"]), float(state.get("best_psnr", -math.inf))
        log.info("resumed from %s at iteration %d", run_dir, step)
    if dinfo.main:
        cfg.save(run_dir / "config.json")

    g_model, d_model = gen, disc
    if dinfo.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        g_model = torch.nn.parallel.DistributedDataParallel(gen, device_ids=ids)
        if disc is not None:
            d_model = torch.nn.parallel.DistributedDataParallel(disc, device_ids=ids)

    per_rank_batch = max(1, cfg.batch_size // dinfo.world)
    dataset = RandomCrops(pairs, cfg.patch_size, cfg.scale, seed=cfg.seed * 1000 + dinfo.rank,
                          epoch_size=max(cfg.epoch_size or len(pairs), per_rank_batch))
    steps_per_epoch = len(dataset) // per_rank_batch

    def batches():
        epoch = step // steps_per_epoch
        skip = step % steps_per_epoch
        while True:
            dataset.epoch = epoch
            loader = torch.utils.data.DataLoader(dataset, batch_size=per_rank_batch, shuffle=False, drop_last=True,
                                                 pin_memory=device.type == "cuda")
            for i, batch in enumerate(loader):
                if i >= skip:
                    yield epoch, batch
            epoch, skip = epoch + 1, 0

    def checkpoint_state() -> dict:
        state = {"step": step, "best_psnr": best, "config": cfg.to_dict(),
                 "generator": gen.state_dict(), "g_opt": g_opt.state_dict()}
        if disc is not None:
            state |= {"discriminator": disc.state_dict(), "d_opt": d_opt.state_dict()}
        return state

    def save_all(reason: str) -> None:
        if dinfo.main:
            save_checkpoint(run_dir, checkpoint_state())
            save_generator(gen, run_dir / "generator.safetensors", recipe=_recipe(cfg, step))
            log.info("saved checkpoint at iteration %d (%s)", step, reason)

    stop_signal: list[int] = []
    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handlers[sig] = signal.signal(sig, lambda s, _f: stop_signal.append(s))
        except ValueError:  # not in the main thread
            pass

    metrics_file = open(run_dir / "metrics.jsonl", "a") if dinfo.main else None
    data_time = step_time = 0.0
    sums: dict[str, float] = {}
    count = 0
    it = batches()
    try:
        while step < cfg.iterations:
            t0 = time.perf_counter()
            epoch, (lr_img, hr_img) = next(it)
            lr_img = lr_img.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            hr_img = hr_img.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            lr_now = lr_at(step, cfg)
            for opt in (g_opt, d_opt):
                if opt is not None:
                    for group in opt.param_groups:
                        group["lr"] = lr_now

            losses: dict[str, torch.Tensor] = {}
            with autocast(device, dtype):
                sr = g_model(lr_img)
            if d_model is not None:
                d_opt.zero_grad(set_to_none=True)
                with autocast(device, dtype):
                    d_loss = discriminator_loss(d_model(hr_img).float(), d_model(sr.detach()).float())
                d_loss.backward()
                d_opt.step()
                losses["d_loss"] = d_loss.detach()
            g_opt.zero_grad(set_to_none=True)
            sr32 = sr.float()
            if cfg.content_loss == "l1":
                content = F.l1_loss(sr32, hr_img)
            elif vgg is not None:
                with autocast(device, dtype):
                    both = vgg(torch.cat([sr, hr_img.to(sr.dtype)]))
                fake_f, real_f = both.float().chunk(2)
                content = F.mse_loss(fake_f, real_f.detach())
            else:
                content = F.mse_loss(sr32, hr_img)
            g_loss = content
            losses["content_loss"] = content.detach()
            if d_model is not None:
                with autocast(device, dtype):
                    fake_logits = d_model(sr)
                adv = generator_adversarial_loss(fake_logits.float())
                g_loss = g_loss + cfg.adv_weight * adv
                losses["adv_loss"] = adv.detach()
            losses["g_loss"] = g_loss.detach()
            g_loss.backward()
            g_opt.step()
            t2 = time.perf_counter()
            step += 1

            values = {k: float(v) for k, v in losses.items()}
            if not all(math.isfinite(v) for v in values.values()):
                raise FloatingPointError(f"non-finite loss at iteration {step}: {values}")
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            data_time += t1 - t0
            step_time += t2 - t0

            record: dict[str, float | int] = {}
            if dinfo.main and (step % cfg.log_every == 0 or step == cfg.iterations):
                record = {"iteration": step, "epoch": epoch, "lr": lr_now,
                          **{k: v / count for k, v in sums.items()},
                          "sec_per_it": step_time / count, "data_frac": data_time / max(step_time, 1e-9)}
                log.info("it %d  epoch %d  %s  %.2fs/it  data %.1f%%", step, epoch,
                         "  ".join(f"{k} {v / count:.4g}" for k, v in sums.items()),
                         step_time / count, 100 * data_time / max(step_time, 1e-9))
                sums, count, data_time, step_time = {}, 0, 0.0, 0.0
            if dinfo.main and val_images and (step % cfg.val_every == 0 or step == cfg.iterations):
                score, outputs = validate(gen, val_images, cfg.precision, cfg.scale)
                best = max(best, score)
                record |= {"iteration": step, "epoch": epoch, "val_psnr_y": score}
                log.info("it %d  validation Y-PSNR %.3f dB (best %.3f)", step, score, best)
                _save_samples(run_dir, step, val_images, outputs)
            if record and metrics_file:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            if step % cfg.save_every == 0 or step == cfg.iterations:
                save_all("scheduled")
            if stop_signal:
                save_all(f"signal {stop_signal[0]}")
                raise TrainingStopped(f"stopped by signal {stop_signal[0]} at iteration {step}; resume with --resume")
    except FloatingPointError as exc:
        raise TrainingStopped(f"{exc}; the last good checkpoint is in {run_dir}") from None
    finally:
        if metrics_file:
            metrics_file.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if dinfo.world > 1:
            dist.destroy_process_group()
    return run_dir / "generator.safetensors"


def _recipe(cfg: TrainConfig, step: int) -> dict:
    return {
        "phase": cfg.phase, "iterations": step, "batch_size": cfg.batch_size, "patch_size": cfg.patch_size,
        "lr": cfg.lr, "lr_schedule": cfg.lr_schedule, "content_loss": cfg.content_loss,
        "adv_weight": cfg.adv_weight if cfg.phase == "srgan" else 0.0,
        "data": [Path(d).name for d in cfg.train_dirs], "degradation": "bicubic (Pillow, antialiased)",
    }
