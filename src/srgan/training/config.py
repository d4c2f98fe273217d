"""The training configuration: one frozen dataclass, stored in every checkpoint and run folder."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.realistic import DegradationConfig

PHASES = ("srresnet", "srgan")
CONTENT_LOSSES = ("mse", "l1", "vgg22", "vgg54")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SCHEDULES = ("constant", "step", "cosine")
DISCRIMINATORS = ("paper", "unet")
GAN_LOSSES = ("vanilla", "ragan")
GAN_ORDERS = ("d_first", "g_first")
DEGRADATIONS = ("bicubic", "realesrgan")
MOMENT_PRECISIONS = ("fp32", "bf16", "compact", "tiny")
# The paper's choices that differ by phase, taken wherever a config leaves the field at None.
PHASE_DEFAULTS = {"srresnet": {"content_loss": "mse", "lr_schedule": "constant"},
                  "srgan": {"content_loss": "vgg54", "lr_schedule": "step"}}


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a TOML or YAML file, as a flat dict of TrainConfig field names."""
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        data = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError:
            raise ValueError(f"{path}: YAML configs need PyYAML (pip install pyyaml); TOML works out of the box") from None
        data = yaml.safe_load(text) or {}
    else:
        raise ValueError(f"{path}: config must be .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of options at the top level")
    return {k.replace("-", "_"): v for k, v in data.items()}


@dataclass(frozen=True)
class TrainConfig:
    """Paper defaults: SRResNet on MSE at lr 1e-4; SRGAN with VGG54 + 1e-3 adversarial, lr drop halfway."""

    phase: str = "srresnet"
    train_dirs: tuple[str, ...] = ()
    train_lr_dirs: tuple[str, ...] = ()  # optional paired LR folders (matched by file stem)
    val_dir: str | None = None
    val_lr_dir: str | None = None  # optional LR for val_dir (e.g. a degraded set), matched by file stem
    out: str = "runs/srresnet_x4"
    scale: int = 4
    num_blocks: int = 16
    channels: int = 64
    iterations: int = 100_000
    epochs: int = 0  # when > 0, sets iterations to cover this many passes over the images
    batch_size: int = 16
    patch_size: int = 96
    lr: float = 1e-4
    lr_schedule: str | None = None  # constant (srresnet) | step (srgan; x0.1 at lr_drop) | cosine (to lr * 0.01)
    lr_drop: float = 0.5  # fraction of the run at which "step" divides the lr by 10
    warmup: int = 0  # linear warm-up iterations
    content_loss: str | None = None  # phase srresnet: mse (default) | l1; phase srgan: vgg54 (default) | vgg22 | mse
    adv_weight: float = 1e-3
    # MSE between SR and HR average-pooled by the scale (their low frequencies), times this weight.
    # 0 = the paper's loss. VGG54 features barely see a global colour cast, and a short GAN run
    # drifts in colour; this term pins colour and tone without penalising high-frequency texture.
    lowfreq_weight: float = 0.0
    # MSE between the mean sub-pixel (scale x scale) patterns of SR and HR, times this weight
    # (losses/pattern.py). 0 = the paper's loss. The adversarial term alone teaches a
    # pixel-shuffle generator a faint fixed grid; this term removes that grid and nothing else.
    pattern_weight: float = 0.0
    # GAN recipe beyond the paper (docs/models.md measures each). Defaults are the paper's.
    discriminator: str = "paper"  # paper (one logit per crop) | unet (per-pixel logits, spectral norm)
    d_channels: int = 64  # the discriminator's base width (paper: 64; unet on a CPU: 32)
    gan_loss: str = "vanilla"  # vanilla (the paper's BCE) | ragan (relativistic average, ESRGAN)
    # d_first: D steps, then G against the updated D (the paper's alternation; 4 D forwards per
    # step with ragan, 3 with vanilla). g_first: G, then D, both against D as it was at the start
    # of the step (BasicSR's order, as ESRGAN and Real-ESRGAN train), which lets the two steps
    # share one D forward on HR and one on SR (docs/performance.md measures the saving).
    gan_order: str = "d_first"
    pixel_weight: float = 0.0  # L1 between SR and HR, times this (ESRGAN: 1e-2)
    ldl_weight: float = 0.0  # LDL artifact term (losses/artifacts.py) against the EMA's output; needs ema_decay
    vgg_weights: str | None = None
    metric_weights: str | None = None  # folder with the LPIPS weights for val_lpips (see srgan.metrics.weights)
    init: str | None = None  # generator weights to start from (phase srgan: a trained SRResNet)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    log_every: int = 20
    val_every: int = 500
    save_every: int = 250
    # Adam's moments as stored in checkpoints: fp32 (a resumed run is bit-identical to one that
    # never stopped), bf16 (a third smaller; each resume rounds the moments once, relative
    # error 2^-9) or compact (half the size: second moments bf16, first moments rebuilt from zero
    # on resume, the EMA in bf16; G and D weights stay fp32) or tiny (under a third: second moments in
    # 8 bits on a log scale, no first moments; G and D in fp16, the EMA's difference from G in int8): for
    # resume files kept in git.
    checkpoint_moments: str = "fp32"
    ema_decay: float = 0.0  # > 0 keeps an exponential moving average of G (e.g. 0.999), used for eval/export
    sync_bn: bool = False  # SyncBatchNorm across DDP ranks
    workers: int = 0  # DataLoader worker processes (crops are cheap; 0 suits CPUs)
    # How the LR inputs are made: "bicubic" (antialiased, precomputed; the paper's and the
    # benchmarks') or "realesrgan" (Real-ESRGAN's second-order blur/resize/noise/JPEG, made on the
    # fly from each HR crop by data/realistic.py; its options are the [realesrgan] table).
    degradation: str = "bicubic"
    realesrgan: DegradationConfig = DegradationConfig()

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(self.phase in PHASES, f"phase must be one of {PHASES}, got {self.phase!r}")
        for name, value in PHASE_DEFAULTS[self.phase].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen, but still being built
        need(self.content_loss in CONTENT_LOSSES, f"content_loss must be one of {CONTENT_LOSSES}, got {self.content_loss!r}")
        need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        need(self.lr_schedule in SCHEDULES, f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        need(self.scale in (2, 4, 8), f"scale must be 2, 4 or 8, got {self.scale}")
        need(self.iterations > 0, f"iterations must be positive, got {self.iterations}")
        need(self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        need(self.patch_size % (self.scale * 4) == 0 and self.patch_size >= 16,
             f"patch_size must be a multiple of 4*scale, got {self.patch_size}")
        need(self.lr > 0, f"lr must be positive, got {self.lr}")
        need(0 < self.lr_drop <= 1, f"lr_drop must be in (0, 1], got {self.lr_drop}")
        need(self.lowfreq_weight >= 0, f"lowfreq_weight must be >= 0, got {self.lowfreq_weight}")
        need(self.pattern_weight >= 0, f"pattern_weight must be >= 0, got {self.pattern_weight}")
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        need(self.discriminator in DISCRIMINATORS, f"discriminator must be one of {DISCRIMINATORS}, got {self.discriminator!r}")
        need(self.gan_loss in GAN_LOSSES, f"gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        need(self.gan_order in GAN_ORDERS, f"gan_order must be one of {GAN_ORDERS}, got {self.gan_order!r}")
        need(self.d_channels >= 4, f"d_channels must be >= 4, got {self.d_channels}")
        need(self.pixel_weight >= 0, f"pixel_weight must be >= 0, got {self.pixel_weight}")
        need(self.ldl_weight >= 0, f"ldl_weight must be >= 0, got {self.ldl_weight}")
        need(not self.ldl_weight or self.ema_decay > 0, "ldl_weight needs ema_decay > 0 (the artifact map compares with the EMA model)")
        need(self.checkpoint_moments in MOMENT_PRECISIONS,
             f"checkpoint_moments must be one of {MOMENT_PRECISIONS}, got {self.checkpoint_moments!r}")
        need(self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}")
        need(not self.train_lr_dirs or len(self.train_lr_dirs) == len(self.train_dirs),
             "give one LR folder per HR training folder")
        need(isinstance(self.degradation, str) and self.degradation in DEGRADATIONS,
             f"degradation must be one of {DEGRADATIONS}, got {self.degradation!r}"
             + ("; put its options in a [realesrgan] table" if isinstance(self.degradation, dict) else ""))
        need(self.degradation == "realesrgan" or self.realesrgan == DegradationConfig(),
             f'the [realesrgan] options apply only with degradation = "realesrgan", got {self.degradation!r}')
        need(self.degradation == "bicubic" or not self.train_lr_dirs,
             f"train_lr_dirs gives the LR images, so degradation {self.degradation!r} would not be used")
        need(self.val_dir is not None or self.val_lr_dir is None, "val_lr_dir needs val_dir (the HR images)")
        need(self.phase == "srgan" or self.content_loss in ("mse", "l1"),
             f"phase srresnet trains on pixel loss (mse or l1), got content_loss {self.content_loss!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
        data = dict(data)
        if "realesrgan" in data and not isinstance(data["realesrgan"], DegradationConfig):
            try:
                data["realesrgan"] = DegradationConfig.from_dict(data["realesrgan"])
            except (ValueError, TypeError) as exc:
                raise ValueError(f"[realesrgan] {exc}") from None
        for key in ("train_dirs", "train_lr_dirs"):
            if key in data:
                dirs = data[key]
                data[key] = tuple([dirs] if isinstance(dirs, str) else dirs)
        return cls(**data)

    @classmethod
    def from_file(cls, path: Path | None = None, resume: bool = False, **overrides: Any) -> TrainConfig:
        """Options from a TOML or YAML file (none without `path`), with `overrides` on top.

        With `resume`, both go on top of the run's own config.json (in the `out` they name), so a
        resumed run keeps the options it was started with unless told otherwise.
        """
        options = (read_config_file(Path(path)) if path else {}) | overrides
        saved = Path(options.get("out") or cls.out) / "config.json"
        if resume and saved.is_file():
            options = json.loads(saved.read_text()) | options
        return cls.from_dict(options)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at `step` (0-based): a pure function of the step, as in nanoGPT."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.lr_schedule == "step":
        return cfg.lr if step < cfg.lr_drop * cfg.iterations else cfg.lr * 0.1
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.iterations - cfg.warmup)
        t = min(1.0, (step - cfg.warmup) / span)
        return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))
    return cfg.lr
