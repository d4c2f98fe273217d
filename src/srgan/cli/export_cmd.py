"""`srgan export -m MODEL -o model.onnx`: an ONNX graph with dynamic size, verified on the spot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "export a model to ONNX (dynamic height/width), checked against PyTorch"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..inference.onnx_backend import CHECK_PSNR_DB, MIN_OPSET
    from ..models import DEFAULT_MODEL

    p = sub.add_parser(
        "export", help=HELP,
        description=HELP + f" (>= {CHECK_PSNR_DB:.0f} dB PSNR on a test image, or no file is kept). Run it "
                           "with 'srgan upscale --backend onnxruntime -m model.onnx'. Needs pip install 'srgan[onnx]'.",
    )
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"bundled or catalogue name, or a weights file (default {DEFAULT_MODEL})")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument("--fp16", action="store_true", help="half-precision weights and I/O (kept only if it verifies)")
    p.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset, >= {MIN_OPSET} (default {MIN_OPSET})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.api import load_model
    from ..inference.onnx_backend import export_onnx
    from ..models import WeightsError

    if args.output.suffix.lower() != ".onnx":
        print(f"srgan export: error: -o {args.output}: the file name must end in .onnx", file=sys.stderr)
        return 2
    try:
        report = export_onnx(load_model(args.model, "cpu"), args.output, fp16=args.fp16, opset=args.opset)
    except (WeightsError, ValueError) as exc:
        print(f"srgan export: error: {exc}", file=sys.stderr)
        return 1
    print(f"{report.path}: {report.precision}, opset {args.opset}, {report.psnr_db:.1f} dB against PyTorch fp32")
    return 0
