"""Networks of the paper and their weights."""

from .descriptor import SRModel
from .discriminator import Discriminator, DiscriminatorConfig
from .interpolate import DetailBlend, check_detail
from .io import WeightsError, canonicalize_state_dict, load_generator, read_metadata, save_generator
from .pretrained import DEFAULT_MODEL, PRETRAINED, PretrainedWeights
from .srresnet import Generator, GeneratorConfig
from .unet_discriminator import UNetDiscriminator, UNetDiscriminatorConfig

__all__ = [
    "DEFAULT_MODEL", "PRETRAINED", "Discriminator", "DiscriminatorConfig", "Generator",
    "GeneratorConfig", "PretrainedWeights", "SRModel", "UNetDiscriminator", "UNetDiscriminatorConfig", "WeightsError",
    "DetailBlend", "canonicalize_state_dict", "check_detail", "load_generator", "read_metadata",
    "save_generator",
]
