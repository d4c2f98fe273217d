"""`srgan upscale clip.mp4 ...`: the video inputs of an upscale batch (srgan.video), with a frame bar."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from tqdm import tqdm

from ..images import IMAGE_SUFFIXES, VIDEO_CONTAINERS, VIDEO_SUFFIXES
from .options import error


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video inputs (needs the srgan[video] extra)")
    g.add_argument("--codec", metavar="NAME",
                   help="video encoder: libx264 (default; libvpx-vp9 for .webm), libx265, libsvtav1, libvpx-vp9, "
                        "ffv1 (lossless)")
    g.add_argument("--crf", type=int, metavar="Q", help="constant quality (default 18 for x264, 22 x265, 28 AV1/VP9)")
    g.add_argument("--preset", metavar="NAME", help="encoder speed preset (x264/x265: ultrafast ... veryslow)")
    g.add_argument("--pix-fmt", metavar="FMT",
                   help="output pixel format (default: the source's chroma layout and bit depth)")
    g.add_argument("--stable", type=float, metavar="T",
                   help="keep the output still where the scene is: hold it where the frame is within T grey levels "
                        "of the one shown (2 and 3 both held x264 CRF 28 noise; against the GAN's shimmer on still "
                        "backgrounds; default off)")
    g.add_argument("--no-deinterlace", dest="deinterlace", action="store_false",
                   help="upscale interlaced frames as they are (default: bwdif, one frame per frame, with a note)")
    g.add_argument("--start", type=float, metavar="S", help="begin at S seconds (a quick look; the output starts at 0)")
    g.add_argument("--end", type=float, metavar="S", help="stop before S seconds")
    g.add_argument("--frames", type=int, metavar="N", help="at most N frames; with --start/--end the audio and "
                                                            "subtitles of the same span are kept")


def is_video_input(path: Path) -> bool:
    """An input to send to srgan.video: a video suffix, or no image suffix (then the file decides)."""
    return path.suffix.lower() in VIDEO_SUFFIXES or path.suffix.lower() not in IMAGE_SUFFIXES


def video_output(src: Path, out: Path, single_file: bool, suffix: str) -> Path:
    """Where a video's output goes: `out` itself, or OUT/<stem><suffix> in the input's container (mkv
    where the input's cannot be written)."""
    if single_file:
        return out
    ext = src.suffix.lower() if src.suffix.lower() in VIDEO_CONTAINERS else ".mkv"
    return out / f"{src.stem}{suffix}{ext}"


def upscale_videos(args: argparse.Namespace, videos: list[Path], model, out: Path, single_file: bool,
                   suffix: str) -> tuple[int, int, int]:
    """Upscale each video; returns (written, skipped, failed). Errors are printed, one line each."""
    if importlib.util.find_spec("av") is None:
        for src in videos:
            error("upscale", f"{src}: videos need PyAV: pip install 'srgan[video]'")
        return 0, 0, len(videos)
    from ..video import VideoError, VideoOptions, is_video, upscale_video

    options = VideoOptions(args.codec, args.crf, args.preset, args.pix_fmt)
    written = skipped = failed = 0
    for src in videos:
        dst = video_output(src, out, single_file, suffix)
        if not is_video(src):
            error("upscale", f"{src}: not an image or a video this FFmpeg can read")
            failed += 1
            continue
        if dst.exists() and not args.overwrite:
            if args.skip_existing:
                skipped += 1
            else:
                error("upscale", f"{dst}: exists (use --skip-existing or --overwrite)")
                failed += 1
            continue
        with tqdm(desc=src.name, unit="frame", disable=args.quiet, leave=False) as bar:
            def progress(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                summary = upscale_video(src, dst, model, outscale=args.outscale, tile=args.tile,
                                        precision=args.precision, options=options, progress=progress,
                                        max_pixels=args.max_pixels, frames=args.frames, start=args.start,
                                        end=args.end, stable=args.stable, resume=args.skip_existing,
                                        deinterlace=args.deinterlace)
            except VideoError as exc:
                error("upscale", exc)
                failed += 1
                continue
        written += 1
        if not args.quiet:
            for note in summary.notes:
                tqdm.write(f"note: {note}")
            tqdm.write(f"{dst}: {summary.frames} frames, {summary.size[0]}x{summary.size[1]} {summary.codec} "
                       f"{summary.pix_fmt}, {summary.colour}, {summary.seconds:.1f} s")
    return written, skipped, failed
