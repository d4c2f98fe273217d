"""Time of the realesrgan training degradation per batch (data/realistic.py), on the CPU or a GPU.

    nice python benchmarks/degradation.py                              # 16 x 256 px, CPU
    nice python benchmarks/degradation.py --batch 16 --size 96 --rounds 20
    python benchmarks/degradation.py --device cuda --json degradation.json

Crops are cut at random from scikit-image's photos (or --images DIR), so the content is real;
every round is a different iteration, so each sees different random draws (resize factors
change the work), and the report gives the median and the spread over rounds. Parts:
  plan     drawing every random choice and the kernels (numpy, CPU)
  usm      the unsharp mask of the HR target (usm_sharpen)
  degrade  blur, resize, noise, JPEG twice, final resize + sinc + JPEG (torch; JPEG via Pillow)
  total    training_pair: what one training iteration spends on it
On a shared machine the absolute numbers move with the load; run it nice'd and say so.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def crops(batch: int, size: int, images: Path | None, seed: int = 0) -> torch.Tensor:
    from skimage import data

    if images:
        from srgan.data.pairs import decode_rgb
        from srgan.images import find_images

        pictures = [decode_rgb(p) for p in find_images([images])]
    else:
        pictures = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    pictures = [p for p in pictures if min(p.shape[:2]) >= size]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(batch):
        p = pictures[i % len(pictures)]
        y, x = rng.integers(0, p.shape[0] - size + 1), rng.integers(0, p.shape[1] - size + 1)
        out.append(p[y : y + size, x : x + size])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def main() -> None:
    from srgan.data.realistic import DegradationConfig, apply_plan, sample_plan, training_pair, usm_sharpen

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16, help="HR crops per batch (default 16)")
    ap.add_argument("--size", type=int, default=256, help="HR crop size in px (default 256)")
    ap.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    ap.add_argument("--rounds", type=int, default=10, help="timed batches (default 10, after 2 warm-up)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--images", type=Path, metavar="DIR", help="take crops from these images instead")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = DegradationConfig()
    hr = crops(args.batch, args.size, args.images).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    times: dict[str, list[float]] = {"plan": [], "usm": [], "degrade": [], "total": []}
    for step in range(args.rounds + 2):
        sync()
        t0 = time.perf_counter()
        plan = sample_plan(cfg, args.batch, seed=0, step=step)
        t1 = time.perf_counter()
        sharp = usm_sharpen(hr)
        sync()
        t2 = time.perf_counter()
        apply_plan(sharp, plan, args.scale)
        sync()
        t3 = time.perf_counter()
        training_pair(hr, step, cfg, args.scale, seed=0)
        sync()
        t4 = time.perf_counter()
        if step >= 2:
            for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k].append(dt)
    result = {
        "batch": args.batch, "size": args.size, "scale": args.scale, "device": str(device),
        "threads": torch.get_num_threads(), "rounds": args.rounds, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "seconds": {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in times.items()},
    }
    print(f"{args.batch} x {args.size} px HR crops, x{args.scale}, {device}, {result['threads']} threads, "
          f"{args.rounds} rounds")
    for k, v in result["seconds"].items():
        print(f"  {k:8s} median {v['median'] * 1000:7.1f} ms   (min {v['min'] * 1000:.1f}, max {v['max'] * 1000:.1f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
