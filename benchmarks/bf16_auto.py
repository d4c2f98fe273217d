"""What `precision="auto"` costs on this CPU against fp32, and what it cost when bf16 was taken
from oneDNN's answer (which is yes on any AVX-512 CPU, emulated where the CPU has no bf16 dot
product): srresnet_x4 on the astronaut photo, all variants interleaved in one process.

    python benchmarks/bf16_auto.py
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI python benchmarks/bf16_auto.py   # oneDNN as on a Cascade
                                                                          # Lake Xeon (no bf16)
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

import srgan
from perf import CPU, MODEL, best_times, bench_matmul, photo, plain_forward  # benchmarks/ is on sys.path
from srgan import device
from srgan.inference import upscale_array

SIZES = {"256x256": (256, 256), "512x512": (512, 512), "1000x750": (750, 1000)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    p.add_argument("--rounds", type=int, default=2, help="timing rounds, variants interleaved (default 2)")
    p.add_argument("--plain-max-pixels", type=int, default=512 * 512,
                   help="skip the plain eager fp32 baseline above this many LR pixels (default 512^2)")
    args = p.parse_args(argv)

    model = srgan.load_model(MODEL, device="cpu").module.eval()
    old_answer = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    auto = device.resolve_precision("auto", CPU)
    roof = bench_matmul(args.rounds)["roof"]
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "default")
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, oneDNN ISA cap {isa}; "
          f"oneDNN bf16 'supported': {old_answer}, native bf16: {device.cpu_has_native_bf16()}; "
          f"auto -> {str(auto).removeprefix('torch.')}; roof {roof:.0f} GFLOP/s")
    print("| input | plain fp32 eager | engine fp32 | engine auto (now) | engine auto before (oneDNN's answer) |")
    print("|---|---|---|---|---|")
    flops_px = model.config.flops_per_lr_pixel
    for name in args.sizes:
        h, w = SIZES[name]
        img = photo(h, w)

        def old_auto(img=img):
            # The precision the old rule picked: bf16 wherever oneDNN said it was supported.
            saved = device.cpu_has_native_bf16
            device.cpu_has_native_bf16 = lambda: old_answer
            try:
                return upscale_array(model, img, precision="auto")
            finally:
                device.cpu_has_native_bf16 = saved

        fns = {
            "engine fp32": lambda img=img: upscale_array(model, img, precision="fp32"),
            "engine auto": lambda img=img: upscale_array(model, img, precision="auto"),
            "old auto": old_auto,
        }
        if h * w <= args.plain_max_pixels:
            fns["plain"] = lambda img=img: plain_forward(model, img)
        times = best_times(fns, args.rounds)

        def cell(key: str) -> str:
            if key not in times:
                return "-"
            return f"{times[key]:.2f} s ({100 * flops_px * h * w / times[key] / 1e9 / roof:.0f}% of roof)"

        print(f"| {name} | {cell('plain')} | {cell('engine fp32')} | {cell('engine auto')} | {cell('old auto')} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
