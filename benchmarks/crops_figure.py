"""Crops at 100% zoom (one output pixel = one screen pixel): HR | bicubic | each model.

    python benchmarks/crops_figure.py -m bicubic srresnet_x4 srgan_x4 runs/gan/best.safetensors \
        --crop ../shared/data/benchmark/Set14/baboon.png:180,40,160 \
               ../shared/data/benchmark/Set14/zebra.png:200,120,160 \
        -o docs/figures/crops_x4.png

Each --crop is IMAGE:X,Y,SIZE in HR pixels (X, Y: top-left corner). The LR input is made by the
evaluation protocol (modcrop, antialiased bicubic / 4) and every model runs through
`srgan.upscale_array`, the code path of `srgan upscale` and `srgan eval`. Nothing is resampled
for display, so what a grid, checkerboard or halo looks like here is what a user sees.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from srgan.evaluation.benchmark import load_image, load_upscaler, model_label
from srgan.files import atomic_write

LABEL = 14  # px of caption under each crop
GAP = 4


def parse_crop(spec: str) -> tuple[Path, int, int, int]:
    path, _, box = spec.rpartition(":")
    try:
        x, y, size = (int(v) for v in box.split(","))
    except ValueError:
        raise SystemExit(f"--crop {spec}: expected IMAGE:X,Y,SIZE") from None
    if not Path(path).is_file():
        raise SystemExit(f"--crop {spec}: {path} is not a file")
    return Path(path), x, y, size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--models", nargs="+", required=True, help="bicubic, bundled names or weights files")
    p.add_argument("--crop", nargs="+", required=True, metavar="IMAGE:X,Y,SIZE", help="HR crop boxes")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--precision", default="fp32", help="fp32 (default, as srgan eval) | auto | bf16")
    p.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)

    crops = [parse_crop(c) for c in args.crop]
    upscalers = [load_upscaler(m, args.scale, device="cpu", precision=args.precision) for m in args.models]
    size = max(c[3] for c in crops)
    cols = 1 + len(upscalers)
    sheet = Image.new("RGB", (cols * (size + GAP), len(crops) * (size + LABEL + GAP)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (path, x, y, side) in enumerate(crops):
        img = load_image(path.parent.name, path.stem, path, args.scale)
        panels = [("HR", img.hr)] + [(model_label(m), up(img.lr)) for m, up in zip(args.models, upscalers)]
        top = r * (size + LABEL + GAP)
        for c, (label, full) in enumerate(panels):
            crop = np.ascontiguousarray(full[y : y + side, x : x + side])
            left = c * (size + GAP)
            sheet.paste(Image.fromarray(crop), (left, top))
            draw.text((left + 2, top + side + 1), f"{path.stem}: {label}"[: size // 6], fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda tmp: sheet.save(tmp, format="PNG"))
    print(f"wrote {args.out} ({sheet.size[0]}x{sheet.size[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
