"""Throughput of `srgan upscale --ray` (1 and 2 actors) against the plain CLI loop on the same folder.

    python benchmarks/ray_batch.py                       # table on stdout
    python benchmarks/ray_batch.py --json docs/ray_batch.json

Each configuration runs the code `srgan upscale` runs, in this process, over the same folder and
notes when each file's result arrives:

    plain CLI loop   load_model, then batch.upscale_file per file (torch threads as given)
    --ray            a fresh local Ray instance (ray_batch.connect), plan, upscale_on_ray:
                     Ray start-up, actors that each load the model, Ray Data streaming

    start-up    = time until the first result (includes the first image)
    steady rate = (files - 1) / (last result - first result)

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
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from srgan.inference.api import load_model
from srgan.inference.batch import FileJob, upscale_file
from srgan.inference.ray_batch import RayOptions, connect, plan, upscale_on_ray
from srgan.models import Generator, GeneratorConfig, save_generator

# (label, None for the plain loop with this many torch threads | (actors, CPUs per actor))
CONFIGS = (
    ("plain CLI loop, 2 threads", 2, None),
    ("plain CLI loop, 1 thread", 1, None),
    ("--ray, 1 actor x 2 CPUs", None, (1, 2)),
    ("--ray, 1 actor x 1 CPU", None, (1, 1)),
    ("--ray, 2 actors x 1 CPU", None, (2, 1)),
)


def make_folder(root: Path, count: int, size: int) -> list[Path]:
    """`count` different size x size crops of scikit-image's photos."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    folder = root / f"in_{size}"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        Image.fromarray(img[y:y + size, x:x + size]).save(folder / f"{i:04d}.png")
    return sorted(folder.iterdir())


def plain(files: list[Path], job: FileJob, model: str, threads: int) -> list[float]:
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    net = load_model(model, "cpu")
    times = []
    for src in files:
        assert upscale_file(src, net, job).status == "written"
        times.append(time.perf_counter() - t0)
    return times


def on_ray(files: list[Path], job: FileJob, model: str, workers: int, cpus: int) -> list[float]:
    t0 = time.perf_counter()
    times = []
    with connect(None):
        rows, known = plan(files, job)
        assert not known
        for result in upscale_on_ray(rows, job, model, RayOptions(None, workers, cpus, "cpu")):
            assert result.status == "written", result.error
            times.append(time.perf_counter() - t0)
    return times


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
        for work, model, files in workloads:
            plain(files[:2], FileJob(root / "warm", False, "_x4"), model, 1)  # imports, oneDNN kernels
            for label, threads, ray_shape in CONFIGS:
                out = root / "out"
                job = FileJob(out, False, "_x4")
                load = os.getloadavg()[0]
                times = plain(files, job, model, threads) if ray_shape is None else on_ray(files, job, model, *ray_shape)
                shutil.rmtree(out)
                rate = (len(times) - 1) / (times[-1] - times[0])
                row = {"work": work, "config": label, "startup_s": round(times[0], 2),
                       "total_s": round(times[-1], 2), "steady_images_per_s": round(rate, 3),
                       "steady_ms_per_image": round(1000 / rate, 1),
                       "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}
                results["rows"].append(row)
                print(f"{work:26s} {label:28s} start-up {row['startup_s']:6.2f} s  total {row['total_s']:7.2f} s  "
                      f"steady {rate:7.2f} img/s = {1000 / rate:8.1f} ms/img  "
                      f"(load {row['load_before']} -> {row['load_after']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
