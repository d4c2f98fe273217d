"""Weights that ship inside the package, kept beside the model code (timm style)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class PretrainedWeights:
    name: str
    filename: str
    description: str
    # The PSNR-trained model this GAN model was fine-tuned from: `detail` blends the two (0 = it, 1 = this).
    detail_base: str | None = None

    @property
    def path(self) -> Path:
        return Path(str(resources.files("srgan") / "weights" / self.filename))


PRETRAINED: dict[str, PretrainedWeights] = {
    w.name: w
    for w in (
        PretrainedWeights(
            "srresnet_x4", "srresnet_x4.safetensors",
            "SRResNet x4 trained for PSNR (MSE): faithful, smooth detail.",
        ),
        PretrainedWeights(
            "srgan_x4", "srgan_x4.safetensors",
            "SRGAN x4: SRResNet fine-tuned with perceptual + adversarial loss: sharper texture.",
            detail_base="srresnet_x4",
        ),
        PretrainedWeights(
            "srresnet_x4_real", "srresnet_x4_real.safetensors",
            "For real photos (noise, JPEG, blur), PSNR-trained: cleans them, smooth detail.",
        ),
        PretrainedWeights(
            "srgan_x4_real", "srgan_x4_real.safetensors",
            "For real photos: noise, JPEG, blur: cleans them while it upscales, with texture.",
            detail_base="srresnet_x4_real",
        ),
    )
}

DEFAULT_MODEL = "srgan_x4"
