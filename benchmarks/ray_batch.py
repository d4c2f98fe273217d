"""Throughput of `srgan upscale --ray` (1 and 2 actors) against the plain CLI on the same folder.

    python benchmarks/ray_batch.py                       # table on stdout
    python benchmarks/ray_batch.py --json docs/ray_batch.json

Each configuration is one `srgan upscale FOLDER -o OUT` process, as a user runs it. When each
output was renamed into place (its mtime) gives

    start-up    = first output's time - launch   (Python, model load, Ray and its actors,
                                                   and the first image)
    steady rate = (files - 1) / (last output - first output)
    total       = the process's wall time

Two workloads: `--lr` px LR crops of scikit-image photos with the bundled srresnet_x4 (real
work), and 8x8 crops with a 2-block, 8-channel random-weight model, whose per-image time is
almost all overhead (scheduling, reading, writing, reporting). The load average before and after
each configuration is recorded: on a shared machine, compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from srgan.models import Generator, GeneratorConfig, save_generator

# (label, extra flags, extra environment)
CONFIGS = (
    ("plain CLI (torch threads: 2)", [], {}),
    ("plain CLI, OMP_NUM_THREADS=1", [], {"OMP_NUM_THREADS": "1"}),
    ("--ray, 1 actor x 2 CPUs", ["--ray", "--workers", "1", "--worker-cpus", "2"], {}),
    ("--ray, 1 actor x 1 CPU", ["--ray", "--workers", "1", "--worker-cpus", "1"], {}),
    ("--ray, 2 actors x 1 CPU", ["--ray", "--workers", "2", "--worker-cpus", "1"], {}),
)


def make_folder(root: Path, count: int, size: int) -> Path:
    """`count` different size x size crops of scikit-image's photos."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    folder = root / f"in_{size}"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        Image.fromarray(img[y:y + size, x:x + size]).save(folder / f"{i:04d}.png")
    return folder


def run(folder: Path, out: Path, model: str, flags: list[str], env: dict) -> dict:
    cmd = [sys.executable, "-m", "srgan", "upscale", str(folder), "-o", str(out), "-m", model, "-q", *flags]
    load = os.getloadavg()[0]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | env)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    done = sorted(p.stat().st_mtime_ns / 1e9 for p in out.iterdir() if p.suffix == ".png")
    shutil.rmtree(out)
    rate = (len(done) - 1) / (done[-1] - done[0])
    return {"startup_s": round(done[0] - t0, 2), "total_s": round(wall, 2), "steady_images_per_s": round(rate, 3),
            "steady_ms_per_image": round(1000 / rate, 1), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=24, help="srresnet_x4 images")
    ap.add_argument("--tiny-files", type=int, default=64, help="8x8 images for the overhead")
    ap.add_argument("--lr", type=int, default=128, help="side of the srresnet_x4 LR images in pixels")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                     "files": args.files, "tiny_files": args.tiny_files, "lr": args.lr, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = root / "tiny_x4.safetensors"
        save_generator(Generator(GeneratorConfig(num_blocks=2, channels=8)).eval(), tiny)
        (root / "real").mkdir()
        (root / "tiny").mkdir()
        workloads = (("srresnet_x4", "srresnet_x4", make_folder(root / "real", args.files, args.lr)),
                     ("overhead: 8x8, tiny model", str(tiny), make_folder(root / "tiny", args.tiny_files, 8)))
        for work, model, folder in workloads:
            for label, flags, env in CONFIGS:
                row = {"work": work, "config": label} | run(folder, root / "out", model, flags, env)
                results["rows"].append(row)
                print(f"{work:26s} {label:30s} start-up {row['startup_s']:6.2f} s  total {row['total_s']:7.2f} s  "
                      f"steady {row['steady_images_per_s']:7.2f} img/s = {row['steady_ms_per_image']:8.1f} ms/img  "
                      f"(load {row['load_before']} -> {row['load_after']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
