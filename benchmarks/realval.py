"""Y-PSNR / Y-SSIM of models on the committed degraded validation sets (data/realval), and on clean bicubic LR.

    python benchmarks/realval.py --hr datasets                      # after: srgan data download set5 set14
    python benchmarks/realval.py --hr ../shared/data/benchmark -m bicubic srresnet_x4 runs/x/generator.safetensors

`srgan eval` degrades HR by bicubic itself and has no option for given LR yet; this scores each
model on data/realval/<Set>_x4_realesrgan (LR made by `srgan data degrade --seed 0 --no-sharpen`,
see the README) against <HR>/<Set>, with the protocol of `srgan eval` (BT.601 Y, scale px
shaved), and on the clean bicubic LR of the same HR for comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from srgan.data.dataset import load_pairs
    from srgan.inference.api import load_model
    from srgan.inference.engine import upscale_array
    from srgan.metrics import psnr_y, ssim_y
    from srgan.metrics.evaluate import bicubic_upscale

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hr", type=Path, required=True, metavar="DIR", help="folder holding Set5/ and Set14/ (HR)")
    ap.add_argument("-m", "--models", nargs="+", default=["bicubic", "srresnet_x4", "srgan_x4"],
                    metavar="NAME|PATH", help="bicubic, bundled model names or weights files")
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    args = ap.parse_args()

    print(f"{'set':6s} {'LR':10s} {'model':24s} {'Y-PSNR':>7s} {'Y-SSIM':>7s}")
    for name in args.sets:
        degraded = ROOT / "data" / "realval" / f"{name}_x4_realesrgan"
        for kind, lr_dirs in (("bicubic", None), ("realesrgan", [degraded])):
            pairs = load_pairs([args.hr / name], 4, 16, lr_dirs)
            for spec in args.models:
                model = None if spec == "bicubic" else load_model(spec, "cpu")
                outputs = [bicubic_upscale(p.lr, 4) if model is None else upscale_array(model, p.lr, precision="fp32")
                           for p in pairs]
                psnr = np.mean([psnr_y(o, p.hr, 4) for o, p in zip(outputs, pairs)])
                ssim = np.mean([ssim_y(o, p.hr, 4) for o, p in zip(outputs, pairs)])
                print(f"{name:6s} {kind:10s} {Path(spec).name:24s} {psnr:7.2f} {ssim:7.4f}", flush=True)


if __name__ == "__main__":
    main()
