"""`srgan upscale INPUT... -o OUT`: batch super-resolution of files, folders and globs."""

from __future__ import annotations

import argparse
import glob
import os
import signal
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from ..images import IMAGE_SUFFIXES, VIDEO_CONTAINERS, VIDEO_SUFFIXES
from . import upscale_ray, upscale_video
from .options import add_device_and_precision, error

HELP = "upscale images and videos with a bundled or custom model"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..images import DEFAULT_MAX_PIXELS, OUTPUT_EXTS
    from ..registry import DEFAULT_MODEL, bundled

    p = sub.add_parser(
        "upscale", help=HELP,
        description=HELP + ". Exit codes: 0 all done, 1 some inputs failed (each named on stderr), "
                           "2 usage error, 130 interrupted.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder (created if missing), or a file name when there is one input")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"bundled model ({', '.join(bundled())}; default {DEFAULT_MODEL}), a downloaded catalogue "
                        "name (srgan models), or a file: .safetensors/.pth (SRResNet, or any SR model spandrel "
                        "detects with srgan[interop]) or .onnx (with --backend onnxruntime)")
    p.add_argument("--detail", type=float, metavar="A",
                   help="with srgan_x4: 0 = srresnet_x4 (faithful, smooth), 1 = srgan_x4 (detailed, the default), "
                        "in between the two outputs blended (about twice the compute); likewise srgan_x4_real with srresnet_x4_real")
    p.add_argument("--backend", choices=("auto", "torch", "onnxruntime"), default="auto",
                   help="torch for weights files, onnxruntime (CPU, srgan[onnx]) for .onnx files; auto picks by "
                        "the file (default)")
    p.add_argument("-s", "--outscale", type=float, metavar="S", help="final scale factor, any float (default: the model's scale)")
    p.add_argument("-t", "--tile", type=int, default=0, metavar="N", help="LR tile size in pixels; 0 = automatic from free memory (default)")
    p.add_argument("--tile-pad", type=int, metavar="N", help="tile overlap in LR pixels (default: the model's receptive radius, seamless)")
    add_device_and_precision(p)
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders of folder inputs")
    p.add_argument("--suffix", default=None, metavar="TEXT", help="added to output file names (default _x<scale>)")
    p.add_argument("--ext", choices=("auto",) + OUTPUT_EXTS, default="auto",
                   help="output format; auto keeps the input's (PNG for formats that cannot be written)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist alone (resume a batch)")
    mode.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse inputs with more pixels (default {DEFAULT_MAX_PIXELS:,} = 4096x4096, "
                        "whose 4x output is 0.8 GB in 8-bit RGB)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes; errors only")
    upscale_video.add_arguments(p)
    upscale_ray.add_arguments(p)
    p.set_defaults(func=run)


def collect_inputs(items: list[str], recursive: bool) -> tuple[list[Path], list[str]]:
    """Expand files, folders and globs into image and video paths (stable order, no duplicates), plus errors."""
    files: list[Path] = []
    errors: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.glob("*")
            files.extend(sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        elif path.exists() or os.path.lexists(path):
            files.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=recursive) if Path(m).is_file())
            if not matches:
                errors.append(f"{item}: no files match")
            files.extend(matches)
        else:
            errors.append(f"{item}: no such file or folder")
    unique = list(dict.fromkeys(files))
    return unique, errors


def _check_writable(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".srgan-probe-"):
            pass
    except OSError as exc:
        return f"{folder}: output folder is not writable ({exc.strerror or exc})"
    return None


def run(args: argparse.Namespace) -> int:
    from ..images import WRITE_FORMATS
    from ..inference.api import load_model
    from ..inference.batch import FileJob, upscale_file
    from ..models import WeightsError

    def err(msg: str) -> None:
        error("upscale", msg)

    if args.tile < 0 or (args.tile_pad is not None and args.tile_pad < 0):
        err("--tile and --tile-pad must be >= 0")
        return 2
    if args.outscale is not None and not 0 < args.outscale <= 16:
        err(f"--outscale must be in (0, 16], got {args.outscale}")
        return 2
    files, missing = collect_inputs(args.inputs, args.recursive)
    videos = [f for f in files if upscale_video.is_video_input(f)]
    files = [f for f in files if f not in videos]
    out = Path(args.output)
    single_file = out.suffix.lower() in (*WRITE_FORMATS, *VIDEO_CONTAINERS) and not out.is_dir()
    if videos and args.ray is not None:
        err("--ray takes images only so far; run videos without --ray")
        return 2
    if single_file and (out.suffix.lower() in VIDEO_CONTAINERS) != bool(videos):
        err(f"-o {out}: an image needs an image file name and a video a video file name (or give a folder)")
        return 2
    if single_file and len(files) + len(videos) + len(missing) > 1:
        err(f"-o {out} is a file name but there are {len(files) + len(videos) + len(missing)} inputs; give a folder")
        return 2
    if not single_file and not out.is_dir() and out.suffix.lower() in IMAGE_SUFFIXES:  # e.g. -o x.gif
        err(f"-o {out}: cannot write {out.suffix} files")
        return 2
    if not files and not videos and not missing:
        err("no input images or videos found" + ("" if args.recursive else " (use -r to search sub-folders)"))
        return 2
    problem = _check_writable(out.parent if single_file else out)
    if problem:
        err(problem)
        return 1
    is_onnx = str(args.model).lower().endswith(".onnx")
    if args.backend != "auto" and (args.backend == "onnxruntime") != is_onnx:
        err(f"--backend {args.backend} cannot run {args.model}: onnxruntime runs .onnx files (make one with "
            "srgan export), torch runs weights files")
        return 2
    try:
        # With --ray the model runs on the workers; here it is only checked and its scale read.
        model = load_model(args.model, "cpu" if args.ray is not None else args.device, args.detail)
    except (WeightsError, ValueError) as exc:
        err(str(exc))
        return 2

    failed = len(missing)
    for msg in missing:
        err(msg)
    suffix = args.suffix if args.suffix is not None else f"_x{args.outscale or model.scale:g}"
    job = FileJob(out, single_file, suffix, args.ext, args.outscale, args.tile, args.tile_pad,
                  args.precision, args.max_pixels, args.skip_existing, args.overwrite)

    def on_sigterm(_sig, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    written = skipped = 0
    try:
        if args.ray is not None:
            return upscale_ray.run_on_ray(args, files, missing, job)
        v_written, v_skipped, v_failed = upscale_video.upscale_videos(args, videos, model, out, single_file, suffix)
        written, skipped, failed = written + v_written, skipped + v_skipped, failed + v_failed
        for src in tqdm(files, desc="images", unit="img", disable=args.quiet or len(files) < 2):
            result = upscale_file(src, model, job, progress=not args.quiet)
            if result.status == "failed":
                failed += 1
                err(result.error)
            elif result.status == "skipped":
                skipped += 1
            else:
                written += 1
                if not args.quiet:
                    for note in result.notes:
                        tqdm.write(f"{src}: note: {note}", file=sys.stderr)
    except KeyboardInterrupt:
        err(f"interrupted; {written} finished output(s) kept, none partial, and a video's finished segments "
            "(rerun with --skip-existing to resume)")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        where = out if not single_file else out.parent
        print(f"{written} file(s) written to {where}" + (f", {skipped} skipped" if skipped else "")
              + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0
