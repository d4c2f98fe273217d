"""Losses of the paper (pixel MSE, VGG19 content loss, adversarial loss), relativistic GAN losses,
the LDL artifact term and a sub-pixel pattern term."""

from .adversarial import (
    discriminator_losses,
    generator_adversarial_loss,
    ragan_discriminator_losses,
    ragan_generator_loss,
)
from .artifacts import artifact_loss, artifact_map
from .pattern import pattern_loss, subpixel_pattern
from .perceptual import (
    CONTENT_LAYER_FOR,
    VGG_LAYERS,
    VGGFeatures,
    VGGWeightsError,
    load_vgg19_features,
)

__all__ = [
    "CONTENT_LAYER_FOR", "VGG_LAYERS", "VGGFeatures", "VGGWeightsError", "artifact_loss", "artifact_map",
    "discriminator_losses", "generator_adversarial_loss", "load_vgg19_features", "pattern_loss",
    "ragan_discriminator_losses", "ragan_generator_loss", "subpixel_pattern",
]
