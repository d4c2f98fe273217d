"""VGG19 content loss (the paper's VGG22 / VGG54), without a torchvision dependency.

The feature network is built with torchvision's `vgg19().features` module indices, so its
ImageNet state dict loads as is, and it is cut after the deepest layer a loss needs.

Feature scale. The paper rescales VGG features by 1/12.75, a factor chosen for the Caffe
VGG19, whose activations live on a 0-255 scale. Other VGG19 files (torchvision's, retrained in
PyTorch on [0, 1] inputs) have much smaller activations, so a fixed 1/12.75 would silently
shrink the content loss next to the 1e-3 adversarial term. We therefore tie the scale to the
weights: at load time the layer's RMS activation on a fixed reference image (the bundled demo
photo) is measured and the features are rescaled so that they match the Caffe network's RMS on
that image before the paper's 1/12.75 is applied. With the Caffe weights this is exactly 1/12.75.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..files import DownloadError, download, first_line, torch_hub_checkpoints

log = logging.getLogger(__name__)

# torchvision's ImageNet VGG19 (the file torchvision's weights enum points at); torchvision names
# its files by the first 8 hex digits of their SHA-256, which is what is checked.
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_SHA256_PREFIX = "dcbb9e9d"

# conv widths of VGG19 ("M" = 2x2 max-pool), in torchvision's order.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

# Named layers -> index in `features` of the ReLU that follows the conv.
VGG_LAYERS = {"relu2_2": 8, "relu5_4": 35}
CONTENT_LAYER_FOR = {"vgg22": "relu2_2", "vgg54": "relu5_4"}

# RMS activation of the Caffe VGG19 at each layer on the bundled reference photo
# (src/srgan/assets/astronaut_lr.png), measured once with the Caffe weights.
CAFFE_REFERENCE_RMS = {"relu2_2": 430.68, "relu5_4": 9.932}
PAPER_RESCALE = 1 / 12.75

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """The VGG19 weights are unavailable or invalid; the message says what to do."""


def _build_features(last_index: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return nn.Sequential(*layers[: last_index + 1])


def load_vgg19_features(weights: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The `features.*` tensors of an ImageNet VGG19.

    With `weights`, read that local file (weights_only). Without, fetch torchvision's file into
    the torch hub cache with hash verification; offline and uncached, fail with a clear message.
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise VGGWeightsError(f"{path}: VGG19 weights file not found")
    else:
        try:
            path = download(VGG19_URL, torch_hub_checkpoints() / Path(VGG19_URL).name, VGG19_SHA256_PREFIX)
        except DownloadError as exc:
            raise VGGWeightsError(
                f"cannot fetch the VGG19 weights ({exc}); pass a local copy with --vgg-weights FILE, "
                "or use --content-loss mse"
            ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise VGGWeightsError(f"{path}: not a loadable VGG19 state dict ({first_line(exc)})") from exc
    if not isinstance(state, dict):
        raise VGGWeightsError(f"VGG19 weights: expected a state dict, got {type(state).__name__}")
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _reference_image() -> torch.Tensor:
    path = resources.files("srgan") / "assets" / "astronaut_lr.png"
    with Image.open(str(path)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


class VGGFeatures(nn.Module):
    """Frozen VGG19 cut after `layer`: (N, 3, H, W) RGB in [0, 1] -> rescaled feature map.

    The returned features are multiplied by `self.rescale` (see the module docstring), so the
    MSE between two of them is the paper's content loss.
    """

    def __init__(self, state: dict[str, torch.Tensor], layer: str = "relu5_4") -> None:
        super().__init__()
        if layer not in VGG_LAYERS:
            raise ValueError(f"unknown VGG layer {layer!r}; choose from {sorted(VGG_LAYERS)}")
        self.layer = layer
        self.features = _build_features(VGG_LAYERS[layer])
        wanted = {k for k in self.features.state_dict()}
        sub = {k.removeprefix("features."): v.float() for k, v in state.items()}
        missing = wanted - set(sub)
        if missing:
            raise VGGWeightsError(f"VGG19 weights lack {sorted(missing)[:3]}: not a torchvision-layout VGG19")
        self.features.load_state_dict({k: sub[k] for k in wanted})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()
        with torch.no_grad():
            rms = float(self._raw(_reference_image()).pow(2).mean().sqrt())
        reference = CAFFE_REFERENCE_RMS[layer]
        self.reference_rms = rms
        self.rescale = PAPER_RESCALE * reference / max(rms, 1e-12)
        log.info("VGG19 %s: RMS %.3g on the reference photo -> feature rescale %.4g", layer, rms, self.rescale)

    def train(self, mode: bool = True) -> "VGGFeatures":
        # Always eval: the loss network must not change with the generator's mode.
        return super().train(False)

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._raw(x) * self.rescale

