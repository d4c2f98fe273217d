"""Build a resume state that starts a GAN run from extrapolated weights: how srgan_x4 of
2026-12-03 began (docs/models.md, ablation J).

    git show 64a07ab:src/srgan/weights/srgan_x4.safetensors > /tmp/srgan_x4_24000.safetensors
    git show 9ea7c5d:checkpoints/srgan_x4_gan/checkpoint.pt > runs/at18139/checkpoint.pt   # and config.json
    python benchmarks/lookahead_state.py --state runs/at18139/checkpoint.pt \
        --weights /tmp/srgan_x4_24000.safetensors --groups head upsample tail --t 0.5 \
        --step 24000 --out runs/J
    srgan train --resume --out runs/J --pixel-weight 1 --lr-schedule constant --lr 1e-4 \
        --iterations 24200            # runs/J/generator.safetensors: the EMA at 24,200

--weights is where a run's EMA ended (a generator file) and the EMA inside --state where it
was earlier, so end - start is the direction the run was still moving in. The named groups of
layers (head, body, body_tail, upsample, tail: the generator's top-level modules) go on along
it, w = end + t (end - start); the others stay at the end. Why: on srgan_x4's run that step
lowered LPIPS at a PSNR cost, and a short L1-weighted fine-tune from there won the PSNR back
while keeping most of the LPIPS (a lower perception-distortion curve than either move alone,
measured in docs/models.md). The new state's generator and EMA are those weights, rounded to
fp16 as the bundled srgan_x4 is stored; its discriminator, both Adam states and the RNG are
--state's; its step is --step. config.json is copied from --state's run folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from srgan.models import WeightsError, load_generator
from srgan.files import atomic_write
from srgan.training.checkpoint import expand_state, save_checkpoint

GROUPS = ("head", "body", "body_tail", "upsample", "tail")


def extrapolate(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], groups: set[str],
                t: float) -> dict[str, torch.Tensor]:
    """end + t (end - start) for the floating-point tensors of `groups` (end in fp32); the rest of `end` as is."""
    def moved(key: str) -> bool:
        return key.split(".")[0] in groups and end[key].is_floating_point()
    return {k: (end[k] + t * (end[k] - start[k].float())).half().float() if moved(k) else end[k]
            for k in end}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state", type=Path, required=True, help="a GAN run's checkpoint.pt (its EMA: the path's start)")
    p.add_argument("--weights", type=Path, required=True, help="generator .safetensors: where the EMA path ended")
    p.add_argument("--groups", nargs="+", choices=GROUPS, required=True, help="layer groups to move on")
    p.add_argument("--t", type=float, required=True, help="how far past the end, in units of end - start")
    p.add_argument("--step", type=int, required=True, help="iteration the new state resumes at")
    p.add_argument("--out", type=Path, required=True, help="new run folder (must not hold a checkpoint)")
    args = p.parse_args(argv)
    if (args.out / "checkpoint.pt").exists():
        p.error(f"--out {args.out}: already holds a checkpoint.pt")
    try:
        state = expand_state(torch.load(args.state, map_location="cpu", weights_only=True))
        end = load_generator(args.weights).state_dict()  # fp32 whatever the file stores
    except (OSError, RuntimeError, WeightsError) as exc:
        print(f"lookahead_state: error: {exc}", file=sys.stderr)
        return 1
    if "ema" not in state or set(state["ema"]) != set(end):
        print(f"lookahead_state: error: {args.state} holds no EMA of the generator in {args.weights}", file=sys.stderr)
        return 1
    weights = extrapolate(state["ema"], end, set(args.groups), args.t)
    state["generator"] = {k: v.to(state["generator"][k].dtype) for k, v in weights.items()}
    state["ema"] = {k: v.clone() for k, v in weights.items()}
    state["step"] = args.step
    args.out.mkdir(parents=True, exist_ok=True)
    config = json.loads((args.state.parent / "config.json").read_text()) | {"out": str(args.out)}
    atomic_write(args.out / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    save_checkpoint(args.out, state)
    print(f"wrote {args.out / 'checkpoint.pt'}: step {args.step}, {', '.join(args.groups)} at t = {args.t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
