"""onnxruntime against the torch engine: the same models, the same images, the same tiling code.

    .venv-interop/bin/python benchmarks/interop.py IMAGE... [-m MODEL ...] [--rounds 3] [--json out.json]

Each model (bundled name, catalogue name or weights file; default: srresnet_x4) is exported to a
temporary ONNX file with `srgan export`'s code (fp32, and fp16 where it verifies), then every
image goes through `upscale_array` with: torch fp32, torch auto precision (bf16 on CPUs with
native bf16), onnxruntime fp32 and onnxruntime fp16 (both onnxruntime's CPU provider). Times are
the best of --rounds interleaved rounds per image, summed over the images; PSNR is of each uint8
output against torch fp32's. Needs the interop and onnx extras (run it from .venv-interop).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import srgan
from srgan.inference.engine import upscale_array
from srgan.images import read_image
from srgan.inference.onnx_backend import export_onnx
from srgan.metrics import psnr
from srgan.models import WeightsError


def bench(spec: str, images: list[np.ndarray], rounds: int, tmp: Path) -> list[dict]:
    torch_model = srgan.load_model(spec, device="cpu")
    variants = {"torch fp32": (torch_model, "fp32"), "torch auto": (torch_model, "auto")}
    for fp16 in (False, True):
        try:
            report = export_onnx(torch_model, tmp / f"{torch_model.name}_{fp16}.onnx", fp16=fp16)
            variants[f"onnxruntime {report.precision}"] = (srgan.load_model(report.path), "fp32")
        except WeightsError as exc:
            print(f"{spec}: {'fp16' if fp16 else 'fp32'} export skipped: {exc}", file=sys.stderr)
    totals = {k: 0.0 for k in variants}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in variants}
    for img in images:
        best = {k: math.inf for k in variants}
        for r in range(rounds + 1):  # round 0 warms up (first-call allocations, oneDNN primitives)
            for name, (model, precision) in variants.items():
                t0 = time.perf_counter()
                out = upscale_array(model, img, precision=precision)
                if r:
                    best[name] = min(best[name], time.perf_counter() - t0)
                else:
                    outputs[name].append(out)
        for k in variants:
            totals[k] += best[k]
    lr_px = sum(i.shape[0] * i.shape[1] for i in images)
    ref = outputs["torch fp32"]
    return [{"model": torch_model.name, "arch": torch_model.arch, "variant": k, "seconds": round(totals[k], 3),
             "out_mp_per_s": round(lr_px * torch_model.scale**2 / totals[k] / 1e6, 3),
             "psnr_vs_torch_fp32": round(min(psnr(o, r) for o, r in zip(outputs[k], ref)), 2),
             "vs_torch_fp32": round(totals["torch fp32"] / totals[k], 2)} for k in variants]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("images", nargs="+", type=Path, help="input images (RGB is used)")
    p.add_argument("-m", "--model", dest="models", nargs="+", default=["srresnet_x4"], help="models to compare")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per image (best is kept)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (onnxruntime uses its default)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images = []
    for path in args.images:
        pic = read_image(path)
        px = pic.pixels
        images.append(np.repeat(px, 3, axis=2) if px.shape[2] == 1 else px)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models:
            rows += bench(spec, images, args.rounds, Path(tmp))
    lr_mp = sum(i.shape[0] * i.shape[1] for i in images) / 1e6
    print(f"{len(images)} images, {lr_mp:.3f} LR megapixels, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':24} {'variant':18} {'seconds':>8} {'out MP/s':>9} {'speed':>6} {'PSNR vs fp32':>12}")
    for r in rows:
        print(f"{r['model']:24} {r['variant']:18} {r['seconds']:8.2f} {r['out_mp_per_s']:9.3f} "
              f"{r['vs_torch_fp32']:5.2f}x {r['psnr_vs_torch_fp32']:10.2f} dB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
