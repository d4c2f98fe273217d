"""`srgan data prepare | download | degrade`: training data helpers."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import error

HELP = "prepare an on-disk training cache, download standard data sets, or show a degradation"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help=HELP, description=HELP + ".")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    prep = actions.add_parser(
        "prepare", help="decode HR folders once into memory-mappable sub-images (for sets larger than RAM)",
        description="Decode every image once, make its LR with the training degradation, cut both into "
                    "overlapping sub-images and store them as .npy; train with --train-dir CACHE.",
    )
    prep.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="HR image folders (recursive)")
    prep.add_argument("-o", "--output", type=Path, required=True, metavar="CACHE", help="cache folder to write")
    prep.add_argument("--scale", type=int, default=4, choices=(2, 4, 8), help="upscaling factor (default 4)")
    prep.add_argument("--crop", type=int, default=480, help="sub-image size in HR pixels (default 480)")
    prep.add_argument("--step", type=int, default=240, help="stride between sub-images (default 240)")
    prep.set_defaults(func=run_prepare)
    _add_download(actions)
    _add_degrade(actions)


def _add_download(actions) -> None:
    from ..data.download import DATASETS

    dl = actions.add_parser(
        "download", help=f"fetch {', '.join(DATASETS)} with checksum verification (resumable)",
        description="Download official archives or files, resuming partial downloads, verifying SHA-256 "
                    "checksums, and unpacking them under --root.",
    )
    dl.add_argument("names", nargs="+", choices=sorted(DATASETS), metavar="NAME", help=", ".join(sorted(DATASETS)))
    dl.add_argument("--root", type=Path, default=Path("datasets"), help="where to put them (default ./datasets)")
    dl.set_defaults(func=run_download)


def _add_degrade(actions) -> None:
    deg = actions.add_parser(
        "degrade", help="write LR images made by the realesrgan training degradation (see what a config does)",
        description="Degrade HR images with Real-ESRGAN's second-order pipeline (blur, resize, noise, JPEG, "
                    "twice, then resize to HR/scale, sinc and JPEG) exactly as 'srgan train' with "
                    "degradation = \"realesrgan\" does, and write OUT/<name>.png (the LR, H/scale x W/scale) "
                    "plus OUT/degradations.json (what was drawn for each image). Each image's draws depend "
                    "only on --seed and its file name, so a rerun writes identical files.",
    )
    deg.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="HR images, or folders of them (recursive)")
    deg.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="folder to write the LR images to")
    deg.add_argument("-c", "--config", type=Path, metavar="CONFIG",
                     help="training config (TOML/YAML) whose [realesrgan] table, scale and seed are used "
                          "(default: Real-ESRGAN's published values)")
    deg.add_argument("--seed", type=int, help="random seed (default: the config's, else 0)")
    deg.add_argument("--scale", type=int, choices=(2, 4, 8), help="downscaling factor (default: the config's, else 4)")
    deg.add_argument("--no-sharpen", action="store_true",
                     help="degrade the images as given, without the unsharp mask training applies to the HR "
                          "(usm_sharpen); use it for validation sets scored against the original HR")
    deg.add_argument("--sheet", type=Path, metavar="FILE.png",
                     help="also draw a contact sheet: per image a centre crop HR | bicubic LR | degraded LR, "
                          "LR enlarged by nearest neighbour so every LR pixel shows")
    deg.add_argument("--crop", type=int, default=192, metavar="N", help="HR size of the sheet's crops (default 192)")
    deg.set_defaults(func=run_degrade)


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare

    try:
        count = prepare(args.folders, args.output, args.scale, args.crop, args.step)
    except (OSError, ValueError) as exc:
        error("data prepare", exc)
        return 2 if isinstance(exc, FileNotFoundError) else 1
    print(f"wrote {count} sub-images to {args.output}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import DownloadError, fetch_dataset

    for name in args.names:
        try:
            folder = fetch_dataset(name, args.root)
        except DownloadError as exc:
            error("data download", exc)
            return 1
        print(f"{name}: {folder}")
    return 0


def run_degrade(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from ..data.degradation import bicubic_downscale, modcrop
    from ..data.pairs import decode_rgb
    from ..data.realistic import DegradationConfig, degrade_image, image_key
    from ..evaluation.benchmark import save_image
    from ..files import atomic_write
    from ..images import IMAGE_SUFFIXES, find_images
    from ..training.config import read_config_file

    def usage(message: str) -> int:
        error("data degrade", message)
        return 2

    options: dict = {}
    try:
        if args.config:
            options = read_config_file(args.config)
        cfg = DegradationConfig.from_dict(options.get("realesrgan", {}))
    except (OSError, ValueError, TypeError) as exc:
        where = f"{args.config}: [realesrgan] " if args.config and not isinstance(exc, OSError) else ""
        return usage(f"{where}{exc}")
    seed = args.seed if args.seed is not None else options.get("seed", 0)
    scale = args.scale or options.get("scale", 4)
    if scale not in (2, 4, 8) or not isinstance(seed, int):
        return usage(f"{args.config}: scale must be 2, 4 or 8 and seed an integer")
    if args.crop < scale:
        return usage(f"--crop must be at least the scale ({scale}), got {args.crop}")

    files: list[Path] = []
    for item in args.inputs:
        if item.is_dir():
            files.extend(find_images([item]))
        elif item.is_file() and item.suffix.lower() in IMAGE_SUFFIXES:
            files.append(item)
        else:
            return usage(f"{item}: not an image file or folder")
    stems = [f.stem for f in files]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        return usage(f"several inputs are named {', '.join(duplicates)}: their outputs would overwrite each other")
    inputs = {f.resolve() for f in files}
    if any((args.output / f"{s}.png").resolve() in inputs for s in stems):
        return usage(f"{args.output}: writing there would overwrite an input image; choose another -o")

    failed, report, rows = 0, {}, []
    for path in files:
        try:
            hr = np.ascontiguousarray(modcrop(decode_rgb(path), scale))
            if min(hr.shape[:2]) < scale:
                raise ValueError(f"{hr.shape[1]}x{hr.shape[0]} is smaller than the scale")
        except Exception as exc:  # one bad file must not stop the others
            error("data degrade", f"{path}: unreadable image ({exc})")
            failed += 1
            continue
        sharpen = False if args.no_sharpen else None  # None: as the config says
        sharp, lr, info = degrade_image(hr, cfg, scale, seed, image_key(path.stem), sharpen=sharpen)
        save_image(args.output / f"{path.stem}.png", lr)
        report[path.stem] = info
        if args.sheet:
            rows.append((path.stem, info, _sheet_row(sharp, bicubic_downscale(hr, scale), lr, scale, args.crop)))
        print(f"{path} -> {args.output / (path.stem + '.png')} ({lr.shape[1]}x{lr.shape[0]})")
    if report:
        meta = {"seed": seed, "scale": scale, "sharpen": cfg.usm_sharpen and not args.no_sharpen,
                "config": cfg.summary(), "images": report}
        text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
        atomic_write(args.output / "degradations.json", lambda tmp: Path(tmp).write_text(text))
    if rows:
        save_image(args.sheet, _sheet(rows, scale))
        print(f"contact sheet: {args.sheet}")
    return 1 if failed else 0


def _sheet_row(hr: np.ndarray, bicubic: np.ndarray, lr: np.ndarray, scale: int, crop: int) -> np.ndarray:
    """Centre crop HR | bicubic LR | degraded LR, the LR crops enlarged x scale by nearest neighbour."""
    import numpy as np

    crop -= crop % scale
    h, w = hr.shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    y, x = (h - ch) // 2 // scale * scale, (w - cw) // 2 // scale * scale

    def enlarge(a: np.ndarray) -> np.ndarray:
        a = a[y // scale : (y + ch) // scale, x // scale : (x + cw) // scale]
        return a.repeat(scale, axis=0).repeat(scale, axis=1)

    gap = np.full((ch, 4, 3), 255, np.uint8)
    return np.concatenate([hr[y : y + ch, x : x + cw], gap, enlarge(bicubic), gap, enlarge(lr)], axis=1)


def _caption(name: str, info: dict) -> list[str]:
    """Two short lines saying what was drawn for one image."""
    def stage(n: int, st: dict) -> str:
        blur = st["blur"] or "no blur"
        gray = " gray" if st["gray_noise"] else ""
        return (f"{n}: {blur}, x{st['resize']:g} {st['resize_mode']}, {st['noise']}{gray} {st['noise_level']:g}, "
                f"JPEG q{st['jpeg_quality']}")
    final = info["final"]
    sinc = "sinc" if final["sinc"] else "no sinc"
    return [f"{name}   {stage(1, info['first'])}",
            f"{stage(2, info['second'])};  final: {final['order'].replace('sinc', sinc)} ({final['resize_mode']})"]


def _sheet(rows: list[tuple[str, dict, np.ndarray]], scale: int) -> np.ndarray:
    """Rows of crops, each under a caption of its draws; a header names the columns."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    width = max(r.shape[1] for _, _, r in rows)
    line = 12

    def strip(lines: list[str], height: int) -> np.ndarray:
        im = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(im)
        for i, text in enumerate(lines):
            draw.text((2, 1 + i * line), text, fill="black", font=font)
        return np.asarray(im)

    crop = rows[0][2].shape[0]
    header = Image.new("RGB", (width, line + 2), "white")
    draw = ImageDraw.Draw(header)
    for i, text in enumerate(("HR", f"bicubic LR (x{scale} nearest)", f"realesrgan LR (x{scale} nearest)")):
        draw.text((2 + i * (crop + 4), 1), text, fill="black", font=font)
    parts = [np.asarray(header)]
    for name, info, row in rows:
        parts.append(strip(_caption(name, info), 2 * line + 3))
        parts.append(np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(parts, axis=0)
