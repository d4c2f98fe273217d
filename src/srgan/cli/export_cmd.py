"""`srgan export -m MODEL -o model.onnx|model.safetensors`: a model file, verified on the spot."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import error

HELP = "export a model to ONNX (dynamic height/width) or to half-size fp16 safetensors, checked against PyTorch"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..inference.export import CHECK_PSNR_DB
    from ..inference.onnx_backend import MIN_OPSET
    from ..models import DEFAULT_MODEL

    p = sub.add_parser(
        "export", help=HELP,
        description=HELP + f" (>= {CHECK_PSNR_DB:.0f} dB PSNR on a test image, or no file is kept). Run an .onnx "
                           "file with 'srgan upscale --backend onnxruntime -m model.onnx' (needs pip install "
                           "'srgan[onnx]'); a .safetensors file (srgan's own generators only) with 'srgan "
                           "upscale -m model.safetensors'.",
    )
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"bundled or catalogue name, or a weights file (default {DEFAULT_MODEL})")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="the file to write: FILE.onnx or FILE.safetensors")
    p.add_argument("--fp16", action="store_true",
                   help="half-precision weights (ONNX: and I/O), kept only if it verifies")
    p.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset, >= {MIN_OPSET} (default {MIN_OPSET})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.api import load_model
    from ..inference.export import export_safetensors
    from ..inference.onnx_backend import export_onnx
    from ..models import WeightsError

    suffix = args.output.suffix.lower()
    if suffix not in (".onnx", ".safetensors"):
        error("export", f"-o {args.output}: the file name must end in .onnx or .safetensors")
        return 2
    try:
        model = load_model(args.model, "cpu")
        if suffix == ".onnx":
            report = export_onnx(model, args.output, fp16=args.fp16, opset=args.opset)
        else:
            report = export_safetensors(model, args.output, fp16=args.fp16)
    except (WeightsError, ValueError) as exc:
        error("export", exc)
        return 1
    opset = f", opset {args.opset}" if suffix == ".onnx" else ""
    print(f"{report.path}: {report.precision}{opset}, {report.psnr_db:.1f} dB against PyTorch fp32")
    return 0
