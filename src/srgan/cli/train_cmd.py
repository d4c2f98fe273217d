"""`srgan train`: both phases of the paper from a config file plus flag overrides."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_device_and_precision, error

HELP = "train SRResNet (phase srresnet) or SRGAN (phase srgan) on folders of HR images"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + ". Flags override the config file.")
    p.add_argument("-c", "--config", type=Path, help="TOML or YAML file of training options (see configs/)")
    p.add_argument("--train-dir", dest="train_dirs", nargs="+", metavar="DIR", help="folders of HR training images (recursive)")
    p.add_argument("--val-dir", metavar="DIR", help="folder of HR validation images (Y-PSNR logged)")
    p.add_argument("--val-lr-dir", metavar="DIR",
                   help="LR images for --val-dir, matched by file stem (e.g. a set made by 'srgan data degrade'); "
                        "default: bicubic downscaling")
    p.add_argument("--degradation", choices=("bicubic", "realesrgan"),
                   help="how LR inputs are made: bicubic (default) or realesrgan (blur, resize, noise and JPEG, "
                        "twice, on the fly; options in the config's [realesrgan] table)")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder: config, metrics.jsonl, checkpoints, samples, generator.safetensors")
    p.add_argument("--phase", choices=("srresnet", "srgan"), help="srresnet: pixel loss; srgan: content + adversarial")
    p.add_argument("--train-lr-dir", dest="train_lr_dirs", nargs="+", metavar="DIR",
                   help="paired LR folders, one per --train-dir, matched by file stem (e.g. DIV2K's 0001x4.png); "
                        "default: LR made by antialiased bicubic downscaling")
    p.add_argument("--iterations", type=int, metavar="N", help="total optimizer steps of the run")
    p.add_argument("--epochs", type=int, metavar="N", help="train for N passes over the images (sets --iterations)")
    p.add_argument("--batch-size", type=int, metavar="N", help="HR crops per step (default 16)")
    p.add_argument("--patch-size", type=int, metavar="N", help="HR crop size in pixels (default 96)")
    p.add_argument("--scale", type=int, choices=(2, 4, 8), help="upscaling factor (default 4)")
    p.add_argument("--num-blocks", type=int, metavar="B", help="generator residual blocks (default 16)")
    p.add_argument("--channels", type=int, metavar="C", help="generator feature channels (default 64)")
    p.add_argument("--content-loss", choices=("mse", "l1", "vgg22", "vgg54"), help="srresnet: mse|l1; srgan: vgg54 (default) | vgg22 | mse")
    p.add_argument("--adv-weight", type=float, help="weight of the adversarial loss (default 1e-3)")
    p.add_argument("--discriminator", choices=("paper", "unet"),
                   help="paper (one logit per crop, default) | unet (per-pixel logits, spectral norm, Real-ESRGAN style)")
    p.add_argument("--d-channels", type=int, metavar="N", help="discriminator base width (default 64; 32 suits a CPU unet)")
    p.add_argument("--gan-loss", choices=("vanilla", "ragan"), help="vanilla (the paper's, default) | ragan (relativistic average)")
    p.add_argument("--gan-order", choices=("d_first", "g_first"),
                   help="d_first: D steps, then G against the updated D (the paper's, default) | "
                        "g_first: both against D before its step (BasicSR's order; shares D's forwards, faster)")
    p.add_argument("--pixel-weight", type=float, metavar="W", help="add W x L1(SR, HR) in the GAN phase (ESRGAN: 1e-2)")
    p.add_argument("--ldl-weight", type=float, metavar="W",
                   help="add W x the LDL artifact term (needs --ema-decay; the paper: 1)")
    p.add_argument("--lowfreq-weight", type=float, metavar="W",
                   help="add W x MSE of SR and HR average-pooled by the scale (pins colour; 0 = the paper's loss)")
    p.add_argument("--pattern-weight", type=float, metavar="W",
                   help="add W x MSE of the mean sub-pixel patterns of SR and HR (removes the GAN grid; 0 = the paper's loss)")
    p.add_argument("--vgg-weights", metavar="FILE", help="local VGG19 ImageNet weights (torchvision layout); default: download")
    p.add_argument("--metric-weights", metavar="DIR",
                   help="folder with the LPIPS weights, for val_lpips (default: $SRGAN_METRIC_WEIGHTS, the torch hub "
                        "cache, or a download); GAN runs keep best.safetensors by it")
    p.add_argument("--init", metavar="WEIGHTS", help="generator weights to start from (e.g. a trained SRResNet)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    p.add_argument("--lr-schedule", choices=("constant", "step", "cosine"), help="constant | step (x0.1 at --lr-drop) | cosine")
    p.add_argument("--warmup", type=int, metavar="N", help="linear learning-rate warm-up iterations (default 0)")
    p.add_argument("--lr-drop", type=float, metavar="FRAC", help="fraction of the run where 'step' divides the lr by 10 (0.5)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    add_device_and_precision(p, None)
    p.add_argument("--ema-decay", type=float, metavar="D", help="keep an EMA of the generator (e.g. 0.999); 0 = off")
    p.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm across torchrun processes")
    p.add_argument("--workers", type=int, metavar="N", help="DataLoader worker processes (default 0)")
    p.add_argument("--val-every", type=int, metavar="N", help="validate every N iterations")
    p.add_argument("--checkpoint-moments", choices=("fp32", "bf16", "compact", "tiny"),
                   help="Adam's moments in checkpoints: fp32 (exact resume, default) | bf16 (a third smaller) | "
                        "compact (half: no first moments, EMA in bf16) | "
                        "tiny (under a third: compact with 8-bit second moments, G and D in fp16, the EMA as int8 from G)")
    p.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N iterations")
    p.add_argument("--log-every", type=int, metavar="N", help="log losses every N iterations")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfig

    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("config", "resume", "func", "command") and v is not None}
    try:
        cfg = TrainConfig.from_file(args.config, resume=args.resume, **overrides)
        if not cfg.train_dirs:
            raise ValueError("no training data: give --train-dir DIR or train_dirs in the config")
    except (OSError, ValueError, TypeError) as exc:
        error("train", exc)
        return 2
    run_dir = Path(cfg.out)
    if not args.resume and (run_dir / "checkpoint.pt").exists():
        error("train", f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        return 2

    from ..losses import VGGWeightsError
    from ..training.loop import TrainingStopped, train

    try:
        out = train(cfg)
    except (VGGWeightsError, FileNotFoundError, ValueError) as exc:
        error("train", exc)
        return 1
    except TrainingStopped as exc:
        print(f"srgan train: {exc}", file=sys.stderr)
        return 130 if exc.interrupted else 1
    print(f"done: {out}")
    return 0
