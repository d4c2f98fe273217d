"""Losses of the paper (pixel MSE, VGG19 content loss, adversarial loss) and a sub-pixel pattern term."""

from .adversarial import discriminator_losses, generator_adversarial_loss
from .pattern import pattern_loss, subpixel_pattern
from .perceptual import CONTENT_LAYER_FOR, VGG_LAYERS, VGGFeatures, VGGWeightsError, load_vgg19_features

__all__ = [
    "CONTENT_LAYER_FOR", "VGG_LAYERS", "VGGFeatures", "VGGWeightsError", "discriminator_losses",
    "generator_adversarial_loss", "load_vgg19_features", "pattern_loss", "subpixel_pattern",
]
