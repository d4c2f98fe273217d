"""`srgan upscale clip.mp4` against the frames-to-disk way the popular scripts take (decode every
frame to PNG, upscale the folder, encode the upscaled PNGs): wall time and peak disk use.

    python benchmarks/video_frames_to_disk.py ../shared/data/video/chaplin.mp4 --frames 8 -m srresnet_x4

Both ways use the same model, engine and encoder settings (x264 CRF 18), so the difference is the
pipeline: PNG encoding and decoding of every frame twice, and the disk it fills.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

import srgan
from srgan.inference import upscale_array
from srgan.video import upscale_video


def disk_use(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def frames_to_disk(clip: Path, out: Path, model, frames: int, tmp: Path) -> tuple[float, int]:
    """(seconds, peak bytes on disk) of decode -> PNGs -> upscaled PNGs -> encode."""
    t0 = time.perf_counter()
    lr_dir, sr_dir = tmp / "lr", tmp / "sr"
    lr_dir.mkdir()
    sr_dir.mkdir()
    with av.open(str(clip)) as c:
        rate = c.streams.video[0].average_rate or Fraction(25)
        for k, frame in zip(range(frames), c.decode(video=0)):
            frame.to_image().save(lr_dir / f"{k:06d}.png")
    for path in sorted(lr_dir.iterdir()):
        with Image.open(path) as im:
            Image.fromarray(upscale_array(model, np.asarray(im.convert("RGB")))).save(sr_dir / path.name)
    peak = disk_use(tmp)
    with av.open(str(out), "w") as c:
        v = c.add_stream("libx264", rate=rate)
        v.options = {"crf": "18"}
        for k, path in enumerate(sorted(sr_dir.iterdir())):
            with Image.open(path) as im:
                if k == 0:
                    v.width, v.height, v.pix_fmt = im.width, im.height, "yuv420p"
                frame = av.VideoFrame.from_image(im.convert("RGB"))
            frame.pts = k
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    return time.perf_counter() - t0, peak


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", type=Path)
    p.add_argument("-m", "--model", default="srresnet_x4")
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args(argv)
    model = srgan.load_model(args.model, "cpu")
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.clip.name}, {args.frames} frames, {args.model}")
    print("| way | wall | peak disk |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "a").mkdir()
        seconds, peak = frames_to_disk(args.clip, tmp / "frames.mp4", model, args.frames, tmp / "a")
        print(f"| frames to disk (PNG) | {seconds:.1f} s | {peak / 2**20:.1f} MB |", flush=True)
        t0 = time.perf_counter()
        upscale_video(args.clip, tmp / "srgan.mp4", model, frames=args.frames)
        ours = time.perf_counter() - t0
        size = (tmp / "srgan.mp4").stat().st_size
        print(f"| srgan upscale (streamed) | {ours:.1f} s | {size / 2**20:.1f} MB (segments, then the output) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
