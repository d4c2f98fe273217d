"""`srgan eval --model NAME|PATH|bicubic ... --data DIR ... --scale 4`: the benchmark protocol.

`srgan eval --sr-dir OUT --hr-dir HR` scores another tool's outputs against ground truth the
same way; `srgan eval --sr-dir OUT` alone gives NIQE (no reference), for real photos, and
`srgan eval -m ... --real DIR` runs models on real photos and scores their outputs so.

Exit codes: 0 done, 1 some inputs failed (weights file unreadable, images unreadable or too
small, empty folder; each named on stderr), 2 usage error (unknown model, missing folder,
wrong scale for a model, unknown --figure-images name, matplotlib missing for --figure).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .options import add_device_and_precision, error

HELP = "score models on benchmark folders (Y-PSNR / Y-SSIM, LPIPS, NIQE; border shaved) and draw comparisons"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..registry import bundled

    p = sub.add_parser(
        "eval", help=HELP,
        description=HELP + ". Each HR image is modcropped to the scale, downscaled with the antialiased "
                           "bicubic used in training, super-resolved, and compared with the HR image on the "
                           "BT.601 Y channel after shaving SCALE pixels from every border. "
                           "Exit codes: 0 done, 1 some inputs failed, 2 usage error.",
    )
    p.add_argument("-m", "--model", dest="models", nargs="+", metavar="NAME|PATH",
                   help=f"bicubic, a bundled model ({', '.join(bundled())}), a downloaded catalogue name "
                        "(srgan models) or a weights file (SRResNet; any spandrel SR model with srgan[interop]; "
                        ".onnx with srgan[onnx]); several allowed")
    p.add_argument("-d", "--data", nargs="+", metavar="DIR", default=[],
                   help="folders of HR images, one dataset each (named by the folder, e.g. Set5)")
    p.add_argument("--lr-dir", nargs="+", metavar="DIR",
                   help="with -d: LR inputs to use instead of bicubic downscaling, one folder per -d folder, "
                        "matched by stem (e.g. data/realval/Set5_x4_realesrgan); datasets are named by these folders")
    p.add_argument("--real", nargs="+", metavar="DIR", default=[],
                   help="folders of real low-resolution photos (no ground truth, e.g. RealSRSet): each model "
                        "upscales every file as it is, and NIQE and grid score the outputs; with or without -d")
    p.add_argument("--detail", nargs="+", type=float, metavar="A",
                   help="score bundled GAN models (srgan_x4, srgan_x4_real) at these detail settings, 0 = their PSNR base ... 1 = "
                        "themselves, one row each (srgan_x4@0.5): the perception-distortion curve")
    p.add_argument("--sr-dir", type=Path, metavar="DIR",
                   help="instead of -m/-d: score the images in DIR, made by any tool (NIQE alone without --hr-dir)")
    p.add_argument("--hr-dir", type=Path, metavar="DIR",
                   help="ground truth for --sr-dir, matched by relative path and file stem")
    p.add_argument("--sr-suffix", default="", metavar="TEXT",
                   help="strip TEXT from --sr-dir file stems before matching (e.g. _x4 for baby_x4.png -> baby.png)")
    p.add_argument("-s", "--scale", type=int, default=4, choices=(2, 3, 4, 8), help="upscaling factor (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object {\"results\": [...]} to stdout")
    p.add_argument("--per-image", action="store_true", help="also report every image (JSON key per_image)")
    p.add_argument("--rgb", action="store_true", help="also report PSNR over the RGB channels (psnr_rgb)")
    p.add_argument("--metric-weights", metavar="DIR", type=Path,
                   help="folder with the LPIPS/NIQE weight files (official names or alexnet_imagenet_features.pth, "
                        "lpips_v0.1_alex.pth, niqe_pris_params.npz); default: $SRGAN_METRIC_WEIGHTS, then the torch "
                        "hub cache, then a download (SRGAN_OFFLINE=1 forbids it)")
    p.add_argument("--no-lpips", action="store_true", help="do not compute LPIPS")
    p.add_argument("--no-niqe", action="store_true", help="do not compute NIQE")
    p.add_argument("--save-images", metavar="DIR", type=Path,
                   help="write every output to DIR/<dataset>/<model>/<image>.png")
    p.add_argument("--figure", metavar="FILE.png", type=Path,
                   help="draw zoomed crops HR | bicubic | each model with Y-PSNR (needs matplotlib)")
    p.add_argument("--figure-images", nargs="+", metavar="NAME",
                   help="images for --figure, as NAME or DATASET/NAME (default: the first image of each dataset)")
    add_device_and_precision(p, "fp32", ", for reproducible scores")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes; errors only")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    error("eval", message)


def figure_selector(names: list[str] | None, listings: dict[str, list[str]]):
    """(dataset, image, index) -> bool for the images a figure shows, plus names matching nothing.

    `names` entries are IMAGE or DATASET/IMAGE; None selects the first image of each dataset.
    """
    from ..evaluation.benchmark import image_selector

    wanted = set(names or ())
    found = {n for n in wanted for ds, images in listings.items() for im in images if n in (im, f"{ds}/{im}")}
    return image_selector(names), sorted(wanted - found)


def format_table(rows: list[dict[str, object]], columns: list[tuple[str, str, str]]) -> str:
    """Plain-text table; `columns` are (key, header, format spec)."""
    cells = [[h for _, h, _ in columns]]
    cells += [[format(r[k], f) if k in r else "-" for k, _, f in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    left = [f == "" for _, _, f in columns]  # text left, numbers right
    lines = ["  ".join(c.ljust(w) if lf else c.rjust(w) for c, w, lf in zip(row, widths, left)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


COLUMNS = [("dataset", "dataset", ""), ("model", "model", ""), ("psnr_y", "PSNR-Y", ".2f"), ("ssim_y", "SSIM-Y", ".4f"),
           ("lpips", "LPIPS", ".4f"), ("niqe", "NIQE", ".2f"), ("texture", "texture", ".2f"), ("grid", "grid", ".2f"),
           ("edge", "edge", ".1f"), ("flat", "flat", ".2f"), ("psnr_rgb", "PSNR-RGB", ".2f")]


def check_mode(args: argparse.Namespace) -> None:
    """Exactly one of: -m with -d (run models), or --sr-dir (score finished outputs)."""
    from ..evaluation.benchmark import EvalInputError

    if args.metric_weights is not None and not args.metric_weights.is_dir():
        raise EvalInputError(f"--metric-weights {args.metric_weights}: no such folder")
    if args.lr_dir and (not args.data or len(args.lr_dir) != len(args.data)):
        raise EvalInputError("--lr-dir needs one folder per -d/--data folder")
    if args.sr_dir is not None:
        if args.models or args.data or args.real:
            raise EvalInputError("--sr-dir scores finished outputs: leave out -m/--model, -d/--data and --real")
        if args.figure:
            raise EvalInputError("--figure needs -m/-d (it shows bicubic next to each model)")
    elif args.hr_dir is not None:
        raise EvalInputError("--hr-dir needs --sr-dir (the outputs to compare with it)")
    elif not args.models or not (args.data or args.real):
        raise EvalInputError("give -m/--model and -d/--data (or --real), or --sr-dir (with --hr-dir for ground truth)")


def _strict_json(value, notes: list[str], key: str = ""):
    """`value` with every infinite or NaN float replaced by null and a note naming the field: strict
    JSON has no Infinity (the PSNR of identical images), and parsers that follow it reject one."""
    if isinstance(value, dict):
        return {k: _strict_json(v, notes, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict_json(v, notes, key) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{key} is null where it is {value} (identical images have an infinite PSNR)")
        return None
    return value


def print_report(args: argparse.Namespace, report) -> None:
    results = [r.to_dict() for r in report.results]
    per_image = [r.to_dict() for r in report.rows]
    if args.json:
        out: dict[str, object] = {"results": results}
        if args.per_image:
            out["per_image"] = per_image
        notes: list[str] = []
        out = _strict_json(out, notes)
        if notes:
            out["notes"] = sorted(set(notes))
        print(json.dumps(out, allow_nan=False))
        return
    # Only the columns some row has: NIQE alone for real photos, PSNR-RGB only with --rgb.
    columns = [c for c in COLUMNS if c[2] == "" or any(c[0] in r for r in results)]
    if args.per_image:
        image_cols = columns[:2] + [("image", "image", "")] + columns[2:] + [("seconds", "seconds", ".2f")]
        print(format_table(per_image, image_cols))
        print()
    print(format_table(results, columns + [("images", "images", "d"), ("seconds", "seconds", ".2f")]))


def run(args: argparse.Namespace) -> int:
    from ..evaluation.benchmark import (
        EvalInputError,
        WeightsNotFoundError,
        check_model_spec,
        dataset_name,
        evaluate_outputs,
        list_dataset,
        load_perceptual,
        load_upscaler,
        run_benchmark,
    )
    from ..evaluation.figure import (
        MissingDependencyError,
        comparison_figure,
        require_matplotlib,
    )
    from ..models import WeightsError

    try:
        check_mode(args)
    except EvalInputError as exc:
        _error(str(exc))
        return 2
    if args.sr_dir is not None:
        try:
            list_dataset(args.sr_dir)
            if args.hr_dir is not None:
                list_dataset(args.hr_dir)
        except EvalInputError as exc:
            _error(str(exc))
            return 2
        perceptual = _perceptual(args, load_perceptual)
        report = evaluate_outputs(args.sr_dir, args.hr_dir, args.scale, sr_suffix=args.sr_suffix, rgb=args.rgb,
                                  perceptual=perceptual, progress=not args.quiet)
        return _finish(args, report)

    # Usage errors first, before anything is loaded or run.
    try:
        if args.figure_images and not args.figure:
            raise EvalInputError("--figure-images needs --figure FILE.png")
        if args.figure:
            require_matplotlib()
        folders = [*args.data, *args.real]
        listings = {dataset_name(d): [name for name, _ in list_dataset(d)] for d in folders}
        for d in args.lr_dir or ():
            list_dataset(d)
        if len(listings) != len(folders):
            raise EvalInputError("two --data/--real folders have the same name; datasets are named by their folder")
        for spec in args.models:
            check_model_spec(spec)
        select, unknown = figure_selector(args.figure_images, listings)
        if unknown:
            raise EvalInputError(f"--figure-images: no image named {', '.join(unknown)} in the given --data folders")
    except (EvalInputError, MissingDependencyError) as exc:
        _error(str(exc))
        return 2
    except WeightsNotFoundError as exc:
        _error(str(exc))
        return 1

    from ..registry import dialable

    upscalers = []
    # --detail expands each bundled GAN model into one row per dial setting (the
    # perception-distortion curve); other models are scored once.
    jobs = [(spec, a) for spec in args.models
            for a in (args.detail if args.detail and dialable(spec) else [None])]
    if args.detail and all(a is None for _, a in jobs):
        _error("--detail needs a bundled GAN model among -m (e.g. srgan_x4)")
        return 2
    for spec, detail in jobs:
        try:
            upscalers.append(load_upscaler(spec, args.scale, args.device, args.precision, detail))
        except EvalInputError as exc:
            _error(str(exc))
            return 2
        except (WeightsError, OSError) as exc:
            _error(str(exc))
            return 1
    names = [u.name for u in upscalers]
    if len(set(names)) != len(names):
        _error(f"two --model values have the same name ({', '.join(names)}); rename a weights file")
        return 2

    perceptual = _perceptual(args, load_perceptual)
    report = run_benchmark(
        args.data, upscalers, args.scale, rgb=args.rgb, perceptual=perceptual,
        figure_images=select if args.figure else None, save_dir=args.save_images, progress=not args.quiet,
        lr_folders=args.lr_dir, real_folders=args.real,
    )
    status = _finish(args, report)
    if args.figure:
        if report.figure_rows:
            path = comparison_figure(report.figure_rows, args.figure, border=args.scale)
            if not args.quiet:
                print(f"figure: {path}", file=sys.stderr)
        else:
            _error(f"no images to draw for {args.figure}")
            return 1
    return status


def _perceptual(args: argparse.Namespace, load_perceptual):
    """LPIPS/NIQE as the flags ask; a metric whose weights are missing is a note, not an error."""
    perceptual, notes = load_perceptual(args.metric_weights, args.device, use_lpips=not args.no_lpips,
                                        use_niqe=not args.no_niqe)
    if not args.quiet:
        for note in notes:
            print(note, file=sys.stderr)
    return perceptual


def _finish(args: argparse.Namespace, report) -> int:
    """Print failures, notes and the results; 1 if any input failed."""
    for failure in report.failures:
        _error(failure)
    if not args.quiet:
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    print_report(args, report)
    return 1 if report.failures else 0
