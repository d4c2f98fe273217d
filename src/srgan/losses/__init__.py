"""Losses of the paper: pixel MSE, VGG19 content loss, adversarial loss."""

from .adversarial import discriminator_losses, generator_adversarial_loss
from .perceptual import CONTENT_LAYER_FOR, VGG_LAYERS, VGGFeatures, VGGWeightsError, load_vgg19_features

__all__ = [
    "CONTENT_LAYER_FOR", "VGG_LAYERS", "VGGFeatures", "VGGWeightsError", "discriminator_losses",
    "generator_adversarial_loss", "load_vgg19_features",
]
