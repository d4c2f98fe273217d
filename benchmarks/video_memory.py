"""Peak memory of `srgan.upscale_video` against clip length: a 10-second and a 10-minute clip.

    python benchmarks/video_memory.py --seconds 10 600

Each clip is made here (160x120, 25 fps, x264, AAC audio) and upscaled x4 in a child process by a
cheap bicubic "model" (the network's own memory is the photo engine's, docs/performance.md), so
what is measured is the pipeline's: decoding, colour conversion, encoding, segments and remux.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
import torch, torch.nn.functional as F
from srgan.models import SRModel
from srgan.video import upscale_video
model = SRModel("bicubic", "bicubic", 4, 3, 3, 2, 3.0, torch.device("cpu"),
                lambda: lambda x: F.interpolate(x, scale_factor=4, mode="bicubic").clamp(0, 1))
t0 = time.perf_counter()
summary = upscale_video(sys.argv[1], sys.argv[2], model, precision="fp32")
print(json.dumps({"frames": summary.frames, "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_clip(path: Path, seconds: int) -> None:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        base = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        for k in range(25 * seconds):
            frame = av.VideoFrame.from_ndarray(np.roll(base, k, axis=1), format="rgb24")
            frame.pts = k
            c.mux(v.encode(frame))
            if k % 2 == 0:
                for _ in range(1):
                    af = av.AudioFrame.from_ndarray(np.zeros((1, 1280), np.float32), format="fltp", layout="mono")
                    af.sample_rate, af.pts = 16000, k // 2 * 1280
                    c.mux(a.encode(af))
        c.mux(v.encode(None))
        c.mux(a.encode(None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", nargs="+", type=int, default=[10, 600])
    args = p.parse_args(argv)
    print("| clip | frames | wall | peak RSS |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            clip = Path(tmp) / f"clip_{seconds}.mp4"
            t0 = time.perf_counter()
            make_clip(clip, seconds)
            made = time.perf_counter() - t0
            out = subprocess.run([sys.executable, "-c", CHILD, str(clip), str(Path(tmp) / f"out_{seconds}.mkv")],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {seconds} s (made in {made:.0f} s) | {r['frames']} | {r['seconds']:.0f} s | {r['peak_rss_mb']:.0f} MB |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
