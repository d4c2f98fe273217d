"""Model files written by `srgan export`, each checked on the spot against the fp32 model.

Every export runs the bundled astronaut crop through the written file and through the model it
came from (fp32 PyTorch) and keeps the file only at >= 50 dB PSNR. This module holds that check
and the safetensors export of srgan's own generators (`--fp16` halves the file: the loader casts
the weights back to fp32); ONNX graphs are written by `onnx_backend.export_onnx`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..metrics.protocol import psnr
from ..models.descriptor import SRModel
from ..models.io import load_generator, save_generator
from ..models.srresnet import Generator
from ..registry import WeightsError

CHECK_PSNR_DB = 50.0


@dataclass(frozen=True)
class ExportReport:
    path: Path
    precision: str
    psnr_db: float  # the written file's output against PyTorch fp32 on the check image


def check_image(model: SRModel) -> torch.Tensor:
    """The bundled astronaut crop as (1, C, h, w) in [0, 1], sized to the model's rules."""
    from PIL import Image

    with resources.as_file(resources.files("srgan") / "assets" / "astronaut_lr.png") as f:
        im = Image.open(f).convert("L" if model.in_channels == 1 else "RGB")
    m = model.size_multiple
    side = max(64, model.min_size)
    side = -(-side // m) * m
    arr = np.asarray(im)[:side, :side]
    x = torch.from_numpy(arr.astype(np.float32) / 255)
    return (x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]).contiguous()


def verified(out: Path, run: Callable[[], torch.Tensor], reference: torch.Tensor, precision: str,
             what: str) -> ExportReport:
    """The report for `out` if `run()` (the written file's output) matches `reference`; otherwise,
    or if `run` fails, `out` is removed and the error raised (WeightsError for a mismatch)."""
    try:
        got = run()
    except Exception:
        out.unlink(missing_ok=True)
        raise
    db = psnr(got.numpy(), reference.numpy(), data_range=1.0)
    if db < CHECK_PSNR_DB:
        out.unlink(missing_ok=True)
        raise WeightsError(f"{out}: the {precision} {what} does not match PyTorch "
                           f"({db:.1f} dB < {CHECK_PSNR_DB:.0f} dB on the check image); not kept")
    return ExportReport(out, precision, db)


def export_safetensors(model: SRModel, out: str | Path, fp16: bool = False) -> ExportReport:
    """Write an srgan/SRResNet generator to `out` (.safetensors) with its config and recipe,
    in fp16 if asked, verified against the fp32 model; raises WeightsError otherwise."""
    out = Path(out)
    gen = model.module
    if not isinstance(gen, Generator):
        raise WeightsError(f"{model.source or model.name}: safetensors export takes srgan's own (SRResNet) "
                           "generators; export other models to .onnx")
    x = check_image(model)
    with torch.no_grad():
        reference = gen.eval()(x.to(model.device)).float().cpu().clamp(0.0, 1.0)
        save_generator(gen, out, recipe=getattr(gen, "recipe", None), dtype=torch.float16 if fp16 else None)
        return verified(out, lambda: load_generator(out).eval()(x).clamp(0.0, 1.0), reference,
                        "fp16" if fp16 else "fp32", "safetensors file")
