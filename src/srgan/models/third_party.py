"""Third-party super-resolution weights through spandrel (the `interop` extra).

spandrel detects the architecture and hyper-parameters of a state dict (ESRGAN and Real-ESRGAN
RRDB, Real-ESRGAN Compact, SwinIR, HAT, DAT, OmniSR, SPAN and dozens more) and builds the
network; `spandrel_model` turns its descriptor into an `SRModel`. The tensors arrive already
read by `io.read_weights` (pickles through PyTorch's restricted unpickler), so nothing from the
file is executed here either.

The exact tile overlap is the receptive radius, measured by `conv_radius` from the network's
convolutions; it is only claimed for architectures made of convolutions and pointwise
operations. Attention and global pooling see the whole input: no overlap makes their tiles
exact, so those report None and run whole when memory allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..files import first_line
from ..registry import WeightsError
from .descriptor import SRModel, require_extra

# Single-image models: SR, and 1x restoration (denoise, de-JPEG) which is image -> image too.
PURPOSES = ("SR", "Restoration")
# spandrel architecture ids whose networks are convolutions and pointwise ops only (checked in
# spandrel 0.4's sources: no attention, no global pooling), so their receptive radius is finite.
LOCAL_ARCHITECTURES = frozenset({"ESRGAN", "Compact", "SPAN", "DnCNN", "SwiftSRGAN"})
# Peak activation estimate: the largest module output per LR pixel, times this margin (inputs,
# skips and the next layer's output are alive at the same time).
_ACTIVATION_MARGIN = 3.0


def probe(module: nn.Module, channels: int, side: int, device: torch.device) -> tuple[int, float]:
    """Run `module` once on a side x side input and return (receptive radius, activation elements).

    radius: sum over Conv2d layers of dilation * (k - 1) / 2 taps, each counted in LR pixels at
    the resolution that layer runs at (a 3x3 conv after a 2x upsampler reaches 1/2 LR px, after
    pixel_unshuffle 2 LR px), rounded up: an upper bound of the receptive radius of any network
    of convolutions, whatever its skips and dense connections.
    elements: the largest module output, in elements per input pixel, times a margin.
    """
    reach: list[float] = []
    largest = [0.0]

    def hook(mod: nn.Module, inputs, output) -> None:
        if isinstance(mod, nn.Conv2d) and inputs and inputs[0].ndim == 4:
            k, d = mod.kernel_size, mod.dilation
            taps = max(d[0] * (k[0] - 1), d[1] * (k[1] - 1)) / 2
            reach.append(taps * side / inputs[0].shape[-2])
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel() / side**2)

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with torch.no_grad():
            module(torch.rand(1, channels, side, side, device=device))
    finally:
        for h in handles:
            h.remove()
    return math.ceil(sum(reach) - 1e-9), _ACTIVATION_MARGIN * largest[0]


def spandrel_model(state: Mapping[str, torch.Tensor], path: Path, device: torch.device) -> SRModel:
    """Build the network spandrel detects in `state` (read from `path`) as an SRModel on `device`.

    Raises WeightsError (one line, naming the file) for a missing extra, an unknown architecture
    and models that are not single-image SR (inpainting, face restoration).
    """
    spandrel = require_extra("spandrel", "interop", f"{path}: not an SRResNet file; a third-party model")
    try:
        desc = spandrel.ModelLoader(device).load_from_state_dict(spandrel.canonicalize_state_dict(dict(state)))
    except spandrel.UnsupportedModelError:
        raise WeightsError(f"{path}: no architecture spandrel {spandrel.__version__} knows matches these "
                           "tensors (not an SR model, or an unsupported one)") from None
    except Exception as exc:  # a known architecture whose tensors do not fit it
        raise WeightsError(f"{path}: spandrel could not build the model ({first_line(exc)})") from None
    arch = desc.architecture.name
    if not isinstance(desc, spandrel.ImageModelDescriptor) or desc.purpose not in PURPOSES:
        raise WeightsError(f"{path}: {arch} is a {desc.purpose} model, not single-image super-resolution; refused")
    desc.eval()
    req = desc.size_requirements
    if req.square:
        raise WeightsError(f"{path}: {arch} needs square inputs, which tiling does not provide; refused")
    multiple = req.multiple_of
    side = max(16, req.minimum)
    side = -(-side // multiple) * multiple
    radius, elements = probe(desc.model, desc.input_channels, side, device)
    local = desc.architecture.id in LOCAL_ARCHITECTURES and desc.tiling == spandrel.ModelTiling.SUPPORTED
    precisions = {"fp32"} | ({"bf16"} if desc.supports_bfloat16 else set()) | ({"fp16"} if desc.supports_half else set())

    def build():
        # spandrel's call runs under inference_mode; the clone makes its output an ordinary
        # tensor that the engine may modify in place.
        return lambda x: desc(x).clone()

    return SRModel(
        name=path.stem, arch=arch, scale=desc.scale, in_channels=desc.input_channels,
        out_channels=desc.output_channels, tile_overlap=radius if local else None,
        activation_elems=max(elements, 1.0), device=device, build=build, size_multiple=multiple,
        min_size=req.minimum, precisions=frozenset(precisions), module=desc.model, source=str(path),
    )
