"""Shimmer on a still background: the mean frame-to-frame change of the output where the scene
does not move, with and without `--stable`, against bicubic's, and the option's cost.

    python benchmarks/video_flicker.py -m srgan_x4 --stable 3

The clip is made here: a photo (scikit-image's astronaut) as a still background, a dark square
crossing it, 24 frames x264-encoded at CRF 28 so the background carries real compression noise.
The still region is every output pixel farther than 16 LR px from the square in both frames.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

import srgan
from srgan.models import SRModel
from srgan.video import upscale_video

W, H, FRAMES, SIDE, STEP = 160, 120, 24, 20, 4


def square_at(k: int) -> tuple[int, int]:
    return 10 + STEP * k, 50  # (x, y) of the square's top-left corner in frame k


def make_clip(path: Path) -> None:
    background = np.ascontiguousarray(data.astronaut()[::4, ::4][:H, :W])
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.options = {"crf": "28"}
        for k in range(FRAMES):
            img = background.copy()
            x, y = square_at(k)
            img[y : y + SIDE, x : x + SIDE] = (30, 30, 60)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = k
            c.mux(v.encode(frame))
        c.mux(v.encode(None))


def bicubic_x4() -> SRModel:
    return SRModel("bicubic", "bicubic", 4, 3, 3, 2, 3.0, torch.device("cpu"),
                   lambda: lambda x: F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1))


def still_change(path: Path) -> float:
    """Mean |frame t - frame t-1| (8-bit RGB) over the output's still region, all frame pairs."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    total, count = 0.0, 0
    for k in range(1, len(frames)):
        mask = np.ones((H, W), bool)
        for j in (k - 1, k):
            x, y = square_at(j)
            mask[max(0, y - 16) : y + SIDE + 16, max(0, x - 16) : x + SIDE + 16] = False
        big = np.repeat(np.repeat(mask, 4, 0), 4, 1)
        d = np.abs(frames[k] - frames[k - 1])[big]
        total, count = total + d.sum(), count + d.size
    return total / count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", default="srgan_x4")
    p.add_argument("--stable", type=float, default=3.0)
    args = p.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| output | still-region change (grey levels per frame) | s per frame |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "still.mp4"
        make_clip(clip)
        model = srgan.load_model(args.model, "cpu")
        runs = [("bicubic", bicubic_x4(), None), (args.model, model, None),
                (f"{args.model} --stable {args.stable:g}", model, args.stable)]
        for label, m, stable in runs:
            out = Path(tmp) / f"{len(label)}.mkv"
            t0 = time.perf_counter()
            upscale_video(clip, out, m, stable=stable, options=srgan.video.VideoOptions(codec="ffv1"))
            seconds = (time.perf_counter() - t0) / FRAMES
            print(f"| {label} | {still_change(out):.2f} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
