"""Video throughput: frames/s through `srgan.upscale_video` and the share of wall time spent outside
the network (colour conversion; decode, resize, encode and mux), CPU kind named.

    python benchmarks/video.py ../shared/data/video/chaplin.mp4 --frames 10 -m srresnet_x4

The network's time is every `upscale_array` call's, timed in the same run; the rest is overhead.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

import srgan
from srgan.video import VideoOptions, pipeline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", type=Path)
    p.add_argument("-m", "--model", default="srresnet_x4")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--precision", default="auto")
    p.add_argument("--codec", default=None)
    args = p.parse_args(argv)

    model = srgan.load_model(args.model, "cpu")
    spent = {"upscale_array": 0.0, "to_rgb": 0.0, "from_rgb": 0.0}

    def timed(name: str):
        fn = getattr(pipeline, name)

        def run(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            spent[name] += time.perf_counter() - t0
            return out

        return run

    for name in spent:  # the pipeline's own references, so every call is counted
        setattr(pipeline, name, timed(name))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = pipeline.upscale_video(args.clip, Path(tmp) / f"out{args.clip.suffix}", model,
                                         precision=args.precision, frames=args.frames,
                                         options=VideoOptions(codec=args.codec))
        wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.clip.name} -> {summary.size[0]}x{summary.size[1]} {summary.codec} {summary.pix_fmt}, "
          f"{summary.frames} frames, {args.model} ({args.precision})")
    network = spent["upscale_array"]
    colour = spent["to_rgb"] + spent["from_rgb"]
    print(f"wall {wall:.2f} s = {summary.frames / wall:.3f} frames/s; network {network:.2f} s; "
          f"outside the network {100 * (wall - network) / wall:.1f}% (colour conversion {100 * colour / wall:.1f}%, "
          f"decode + encode + mux {100 * (wall - network - colour) / wall:.1f}%); peak RSS {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
