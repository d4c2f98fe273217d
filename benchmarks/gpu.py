"""GPU numbers in one lease: inference MP/s and % of the bf16 peak, training it/s of both phases,
each against plain fp32 eager in the same run.

    PYTHONPATH=src PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out $OUT/gpu.json   # a lent GPU (not run on one yet)
    python benchmarks/gpu.py --device cpu --quick --out /tmp/gpu.json   # smoke test of this script

Peak: the bf16 (and fp32) 8192^2 matmul rate measured here, beside the card's datasheet figure
when it is known. Inference: the bundled srgan_x4 on 512^2 and 2048^2 random LR inputs, as the
bare network (fp32 NCHW eager, and fp16 / bf16 autocast in channels_last: what the engine runs on
CUDA) and end to end through `srgan.upscale_array` (tiles sized from free memory, uint8 in and
out). FLOPs are counted by torch's FlopCounterMode on a small input and scaled by pixels (every
layer is a convolution, linear in pixels). Training: `srgan.training.loop.train` itself, phase 1
(MSE) and phase 2 (VGG54 + adversarial, the paper's D; and the long run's U-Net recipe), batch 16
of 96 px crops of a test photo, precision auto against fp32; s/it is the loop's own median
after warm-up (metrics.jsonl), so data loading and the optimiser are in it. VGG19 has random
weights of the right shapes: speed does not depend on them, and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import srgan
from perf import photo, random_vgg19_state  # benchmarks/ is on sys.path when this script runs
from srgan.device import autocast
from srgan.training.config import TrainConfig
from srgan.training.loop import train

# Dense bf16 tensor-core peak from the vendor's datasheet (no sparsity), TFLOP/s.
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, rounds: int) -> float:
    """Best wall time of `rounds` calls after one warm-up call (s)."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bench_peak(device: torch.device, n: int, rounds: int) -> dict:
    out = {}
    for dtype in (torch.bfloat16, torch.float32):
        a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
        t = timed(lambda: a @ b, device, rounds)
        out[str(dtype).removeprefix("torch.")] = 2 * n**3 / t / 1e12
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    sheet = next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)
    return {"device_name": name, "matmul_n": n, "tflops": out, "datasheet_bf16_tflops": sheet}


def network_flops(module: torch.nn.Module, device: torch.device, side: int = 64) -> float:
    """FLOPs of one forward on a side x side LR image, per LR pixel."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.rand(1, 3, side, side, device=device))
    return counter.get_total_flops() / side**2


def bench_inference(device: torch.device, sizes: list[int], rounds: int, peak_bf16: float) -> list[dict]:
    model = srgan.load_model("srgan_x4", device=str(device))
    module = model.module.eval()
    per_px = network_flops(module, device)
    rows = []
    for side in sizes:
        x = torch.rand(1, 3, side, side, device=device)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        image = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)

        def bare(dtype, fmt):
            # A copy per variant: Module.to(memory_format=...) converts in place, so one shared
            # module would run every variant in the layout of the last one built.
            net = copy.deepcopy(module).to(memory_format=fmt)
            inp = x_cl if fmt == torch.channels_last else x

            def run():
                with torch.no_grad(), autocast(device, dtype):
                    net(inp)
            return run

        variants = {"fp32 eager NCHW (baseline)": bare(torch.float32, torch.contiguous_format),
                    "bf16 autocast channels_last": bare(torch.bfloat16, torch.channels_last)}
        if device.type == "cuda":
            variants["fp16 autocast channels_last"] = bare(torch.float16, torch.channels_last)
        variants["upscale_array end to end (default precision)"] = lambda: srgan.upscale_array(model, image)
        base = None
        for name, fn in variants.items():
            try:
                t = timed(fn, device, rounds)
            except torch.OutOfMemoryError as exc:
                rows.append({"lr_side": side, "variant": name, "error": f"out of memory: {exc}"[:200]})
                torch.cuda.empty_cache()
                continue
            base = base or t
            tflops = per_px * side**2 / t / 1e12
            rows.append({"lr_side": side, "variant": name, "seconds": t, "out_mp_per_s": 16 * side**2 / t / 1e6,
                         "tflops": tflops, "pct_of_measured_bf16_peak": 100 * tflops / peak_bf16, "speedup": base / t})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def photo_folder(folder: Path, count: int = 24, side: int = 256) -> Path:
    """`count` different side x side crops of perf.py's test photo: training data, no data set needed."""
    folder.mkdir(parents=True, exist_ok=True)
    big = photo(2 * side, 2 * side)
    for i in range(count):
        y, x = (i * 37) % side, (i * 53) % side
        Image.fromarray(big[y : y + side, x : x + side]).save(folder / f"p{i:02d}.png")
    return folder


def random_vgg_file(path: Path) -> Path:
    """VGG19 weights for --vgg-weights, random (timing only): perf.py's He-initialised state."""
    torch.save(random_vgg19_state(), path)
    return path


def bench_training(device: torch.device, iterations: int, work: Path, batch: int = 16) -> list[dict]:
    photos = photo_folder(work / "photos")
    vgg = str(random_vgg_file(work / "vgg.pth"))
    cases = [("phase 1: SRResNet, MSE", dict(phase="srresnet", content_loss="mse")),
             ("phase 2: SRGAN, VGG54 + 1e-3 adversarial (paper D)", dict(phase="srgan", content_loss="vgg54",
                                                                       adv_weight=1e-3, vgg_weights=vgg)),
             ("phase 2, long-run recipe (U-Net D, RaGAN, L1, LDL, EMA, g_first)",
              dict(phase="srgan", content_loss="vgg54", adv_weight=5e-3, vgg_weights=vgg, discriminator="unet",
                   d_channels=32, gan_loss="ragan", gan_order="g_first", pixel_weight=1e-2, ldl_weight=1.0,
                   ema_decay=0.999))]
    rows = []
    for label, recipe in cases:
        base = None
        for precision in ("fp32", "auto"):
            out = work / f"run_{len(rows)}"
            cfg = TrainConfig(train_dirs=(str(photos),), out=str(out), iterations=iterations, batch_size=batch,
                              patch_size=96, device=str(device), precision=precision, log_every=5,
                              save_every=10**9, val_every=10**9, **recipe)
            start = time.perf_counter()
            train(cfg)
            wall = time.perf_counter() - start
            logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            steady = [r["sec_per_it"] for r in logged if "sec_per_it" in r][1:]  # the first window has warm-up
            s_it = statistics.median(steady)
            base = base or s_it
            rows.append({"case": label, "precision": precision, "sec_per_it": s_it, "it_per_s": 1 / s_it,
                         "speedup_vs_fp32": base / s_it, "wall_s": wall, "iterations": iterations, "batch": batch})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes and few iterations (a smoke test)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu.py: error: --device {args.device}: CUDA is not available", file=sys.stderr)
        return 2
    quick = args.quick
    result: dict = {"torch": torch.__version__, "device": str(device)}
    result["peak"] = bench_peak(device, 512 if quick else 8192, 2 if quick else 10)
    print(json.dumps(result["peak"]), flush=True)
    peak_bf16 = result["peak"]["tflops"]["bfloat16"]
    result["inference"] = bench_inference(device, [32, 64] if quick else [512, 2048], 1 if quick else 5, peak_bf16)
    with tempfile.TemporaryDirectory() as work:
        result["training"] = bench_training(device, 10 if quick else 150, Path(work), 2 if quick else 16)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
