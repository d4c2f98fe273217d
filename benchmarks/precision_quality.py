"""Does bf16 training lose quality? Train the same short schedule in bf16 and in fp32, compare.

Both runs start from the same weights and see the same batches (the batch of an iteration is a
pure function of the iteration), so the only difference is the arithmetic. Prints validation
Y-PSNR of each and their difference, plus seconds per iteration, and writes JSON.

    python benchmarks/precision_quality.py --train-dir ../shared/data/train/T91 \
        --val-dir ../shared/data/benchmark/Set5 --init src/srgan/weights/srresnet_x4.safetensors
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from srgan.cli.main import main as srgan


def run(precision: str, args: argparse.Namespace, out: Path) -> dict:
    argv = ["train", "--phase", "srresnet", "--content-loss", "mse", "--train-dir", *args.train_dir,
            "--val-dir", args.val_dir, "--out", str(out / precision), "--iterations", str(args.iterations),
            "--lr", str(args.lr), "--precision", precision, "--val-every", str(args.iterations),
            "--save-every", str(args.iterations), "--log-every", "10", "--seed", "0"]
    if args.init:
        argv += ["--init", args.init]
    if srgan(argv) != 0:
        raise SystemExit(f"training in {precision} failed")
    rows = [json.loads(line) for line in (out / precision / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_psnr_y" in r][-1]
    steps = [r["sec_per_it"] for r in rows if "sec_per_it" in r]
    return {"precision": precision, "val_psnr_y": val["val_psnr_y"], "val_ssim_y": val["val_ssim_y"],
            "sec_per_it": sum(steps[1:]) / max(1, len(steps) - 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-dir", nargs="+", required=True)
    p.add_argument("--val-dir", required=True)
    p.add_argument("--init", help="start both runs from these weights (default: random init, seed 0)")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(prec, args, Path(tmp)) for prec in ("bf16", "fp32")]
    delta = results[0]["val_psnr_y"] - results[1]["val_psnr_y"]
    for r in results:
        print(f"{r['precision']:5s}  val Y-PSNR {r['val_psnr_y']:.3f} dB  SSIM {r['val_ssim_y']:.4f}  "
              f"{r['sec_per_it']:.3f} s/it")
    print(f"bf16 - fp32: {delta:+.3f} dB; speed-up {results[1]['sec_per_it'] / results[0]['sec_per_it']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "delta_db": delta, "iterations": args.iterations}, indent=1))


if __name__ == "__main__":
    main()
