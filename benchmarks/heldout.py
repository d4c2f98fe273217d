"""Score GAN candidates on the held-out split of `make_gan_split.py --holdout structure`, by subset.

    python benchmarks/heldout.py -m srresnet_x4 srgan_x4 runs/K/snapshots/ema_24500.safetensors \
        --val data/gan_split_structure/val --metric-weights ../shared/weights/metrics

The val folder's file names say where each photo comes from: `structure_*` (straight edges and
fine texture; seen in training by the runs before the split), `Set5_*`, and the rest (the 10
photos no run has trained on). Per subset and model: Y-PSNR, LPIPS, edge (degrees of orientation
error on straight edges) and flat (detail painted on flat areas), as `srgan eval` computes them,
fp32 on the CPU; a Markdown table on stdout, and the per-image rows with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from srgan.evaluation.benchmark import BICUBIC, load_perceptual, load_upscaler, run_benchmark

SUBSETS = (("never seen (10)", lambda n: not n.startswith(("structure_", "Set5_"))),
           ("structure (12)", lambda n: n.startswith("structure_")), ("Set5", lambda n: n.startswith("Set5_")))
COLUMNS = (("psnr_y", "PSNR", ".2f"), ("lpips", "LPIPS", ".4f"), ("edge", "edge", ".2f"), ("flat", "flat", ".2f"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--models", nargs="+", required=True, metavar="NAME|PATH")
    p.add_argument("--val", type=Path, default=Path("data/gan_split_structure/val"), help="the held-out folder")
    p.add_argument("--metric-weights", type=Path, help="folder with the LPIPS weights")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the per-image rows here")
    args = p.parse_args(argv)

    upscalers = [load_upscaler(m, 4, "cpu", "fp32") for m in [BICUBIC, *args.models]]
    perceptual, notes = load_perceptual(args.metric_weights, "cpu", use_niqe=False)
    for note in notes:
        print(note, file=sys.stderr)
    report = run_benchmark([args.val], upscalers, 4, perceptual=perceptual)
    for failure in report.failures:
        print(f"failed: {failure}", file=sys.stderr)
    rows = [r.to_dict() for r in report.rows]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    header = "| model | " + " | ".join(f"{s}: " + " / ".join(c[1] for c in COLUMNS) for s, _ in SUBSETS) + " |"
    print(header)
    print("|---" * (1 + len(SUBSETS)) + "|")
    for up in upscalers:
        cells = []
        for _, member in SUBSETS:
            mine = [r for r in rows if r["model"] == up.name and member(r["image"])]
            cells.append(" / ".join(
                format(float(np.mean([r[k] for r in mine if k in r])), f) if any(k in r for r in mine) else "–"
                for k, _, f in COLUMNS))
        print(f"| {up.name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
