"""`srgan demo`: upscale the bundled sample photo and write a side-by-side comparison."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .options import add_device_and_precision

HELP = "upscale the bundled sample photo with both bundled models and write a comparison image"
SAMPLE = "astronaut_lr.png"  # scikit-image's astronaut (NASA, public domain), 512 px reduced to 128 px


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ": nearest | bicubic | srresnet_x4 | srgan_x4.")
    p.add_argument("-o", "--output", default="demo", type=Path, metavar="DIR", help="output folder (default: demo)")
    add_device_and_precision(p)
    p.set_defaults(func=run)


def labelled(panel: Image.Image, label: str) -> Image.Image:
    """The panel with a caption strip underneath."""
    strip = 22
    canvas = Image.new("RGB", (panel.width, panel.height + strip), "white")
    canvas.paste(panel, (0, 0))
    ImageDraw.Draw(canvas).text((6, panel.height + 5), label, fill="black")
    return canvas


def side_by_side(panels: list[tuple[str, Image.Image]], gap: int = 6) -> Image.Image:
    tiles = [labelled(im, name) for name, im in panels]
    width = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    out = Image.new("RGB", (width, max(t.height for t in tiles)), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + gap
    return out


def run(args: argparse.Namespace) -> int:
    from ..images import Picture, write_image
    from ..inference.api import load_model, upscale

    with Image.open(str(resources.files("srgan") / "assets" / SAMPLE)) as im:
        lr = im.convert("RGB")
    outputs = {}
    for name in ("srresnet_x4", "srgan_x4"):
        model = load_model(name, args.device)
        outputs[name] = upscale(lr, model, precision=args.precision)
    size = outputs["srgan_x4"].size
    panels = [("nearest", lr.resize(size, Image.Resampling.NEAREST)),
              ("bicubic", lr.resize(size, Image.Resampling.BICUBIC))] + list(outputs.items())
    args.output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, im in outputs.items():
        written.append(write_image(Picture(np.asarray(im)), args.output / f"astronaut_{name}.png"))
    written.append(write_image(Picture(np.asarray(side_by_side(panels))), args.output / "comparison.png"))
    print(f"input  {resources.files('srgan') / 'assets' / SAMPLE} ({lr.width}x{lr.height})")
    for path in written:
        print(f"wrote  {path}")
    return 0
