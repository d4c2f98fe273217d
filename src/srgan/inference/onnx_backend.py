"""ONNX: export any SRModel with a torch network, and run .onnx files with onnxruntime (CPU).

`export_onnx` writes a graph with dynamic batch, height and width (opset >= 17), the network's
output clamped to [0, 1], and the descriptor's fields in the file's metadata (`srgan.*`), so
`onnx_model` rebuilds the same SRModel and the engine pads, tiles and crops exactly as for the
torch model. Every export is checked on the spot (`export.verified`): the bundled astronaut crop
through onnxruntime against PyTorch in fp32, at >= 50 dB PSNR, or the file is not kept. fp16
files are exported from a half-precision copy and kept only when they pass the same check.

Needs the `onnx` extra (onnx, onnxruntime); export also needs onnxscript for new opsets in
recent torch releases, which the extra includes.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_write, first_line
from ..models.descriptor import SRModel, require_extra
from ..registry import WeightsError
from .export import ExportReport, check_image, verified

log = logging.getLogger(__name__)

MIN_OPSET = 17
# Activation estimate for .onnx files without srgan metadata (a 64-channel network at x4).
_DEFAULT_ACTIVATION_ELEMS = 3.0 * 64 * 16


class _Clamped(nn.Module):
    """The exported graph: the network, its output clamped to [0, 1] (as every SRModel's is)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).clamp(0.0, 1.0)


def _session(path: Path):
    ort = require_extra("onnxruntime", "onnx", f"{path}: running an ONNX model")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise WeightsError(f"{path}: not a usable ONNX model ({first_line(exc)})") from None


def _runner(session):
    """A forward over an onnxruntime session: torch NCHW float in, torch float32 out (on CPU)."""
    inp = session.get_inputs()[0]
    np_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def run(x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy().astype(np_dtype, copy=False)
        y = session.run(None, {inp.name: arr})[0]
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))

    return run


def onnx_model(path: str | Path, name: str = "") -> SRModel:
    """An .onnx file as an SRModel running on onnxruntime's CPU provider.

    Files from `srgan export` carry their descriptor; for other files the scale and channels are
    read from one small run, and tiles are treated as approximate (no known overlap).
    """
    path = Path(path)
    session = _session(path)
    meta = session.get_modelmeta().custom_metadata_map
    run = _runner(session)
    if "srgan.scale" in meta:
        fields = {k.removeprefix("srgan."): v for k, v in meta.items() if k.startswith("srgan.")}
        overlap = json.loads(fields.get("tile_overlap", "null"))
        scale, cin, cout = int(fields["scale"]), int(fields["in_channels"]), int(fields["out_channels"])
        multiple, minimum = int(fields.get("size_multiple", 1)), int(fields.get("min_size", 0))
        elems, arch = float(fields.get("activation_elems", _DEFAULT_ACTIVATION_ELEMS)), f"ONNX ({fields.get('arch', '?')})"
    else:
        shape = session.get_inputs()[0].shape
        cin = shape[1] if isinstance(shape[1], int) else 3
        try:
            probe = run(torch.rand(1, cin, 16, 16))
        except Exception as exc:
            raise WeightsError(f"{path}: cannot run this ONNX model on a 16x16 image ({first_line(exc)})") from None
        scale, cout, overlap, multiple, minimum = probe.shape[-1] // 16, probe.shape[1], None, 1, 0
        elems, arch = _DEFAULT_ACTIVATION_ELEMS, "ONNX"
    return SRModel(
        name=name or path.stem, arch=arch, scale=scale, in_channels=cin, out_channels=cout,
        tile_overlap=overlap, activation_elems=elems, device=torch.device("cpu"), build=lambda: run,
        size_multiple=multiple, min_size=minimum, source=str(path),
    )


def export_onnx(model: SRModel, out: str | Path, fp16: bool = False, opset: int = MIN_OPSET) -> ExportReport:
    """Export `model` to `out` (.onnx), verified against PyTorch; raises WeightsError when it
    cannot be exported or does not verify (then no file is left)."""
    onnx = require_extra("onnx", "onnx", "srgan export")
    out = Path(out)
    if model.module is None:
        raise WeightsError(f"{model.source or model.name}: already an ONNX model; export needs a torch model")
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    net = model.build()
    if not isinstance(net, nn.Module):  # spandrel's call: export the network itself (the engine pads)
        net = model.module
    x = check_image(model).to(model.device)
    with torch.no_grad():
        reference = _Clamped(net).eval()(x).cpu()
    graph = _Clamped(net).eval()
    dummy = x
    if fp16:
        graph, dummy = _Clamped(copy.deepcopy(net).half()).eval(), x.half()
    dims = {0: "batch", 2: "height", 3: "width"}
    tmp_out = out.with_name(out.name + ".export")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; the check below decides
            torch.onnx.export(graph, (dummy,), str(tmp_out), input_names=["input"], output_names=["output"],
                              opset_version=opset, dynamic_axes={"input": dims, "output": dims}, dynamo=False)
        proto = onnx.load(str(tmp_out))
    except Exception as exc:
        raise WeightsError(f"{model.source or model.name}: ONNX export failed ({first_line(exc)})") from None
    finally:
        tmp_out.unlink(missing_ok=True)
    fields = {"scale": model.scale, "in_channels": model.in_channels, "out_channels": model.out_channels,
              "size_multiple": model.size_multiple, "min_size": model.min_size,
              "tile_overlap": json.dumps(model.tile_overlap), "activation_elems": model.activation_elems,
              "arch": model.arch, "name": model.name}
    for key, value in fields.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"srgan.{key}", str(value)
    atomic_write(out, lambda tmp: onnx.save(proto, tmp))
    return verified(out, lambda: onnx_model(out)(x.cpu()), reference, "fp16" if fp16 else "fp32", "ONNX graph")
