"""Networks of the paper and their weights (the table of named models is `srgan.registry`)."""

from ..registry import (
    DEFAULT_MODEL,
    MODELS,
    ModelEntry,
    ModelNotFoundError,
    WeightsError,
    resolve,
)
from .descriptor import SRModel
from .detail import DetailBlend, check_detail
from .discriminator import Discriminator, DiscriminatorConfig
from .io import canonicalize_state_dict, load_generator, read_metadata, save_generator
from .srresnet import Generator, GeneratorConfig
from .unet_discriminator import UNetDiscriminator, UNetDiscriminatorConfig

__all__ = [
    "DEFAULT_MODEL", "MODELS", "DetailBlend", "Discriminator", "DiscriminatorConfig", "Generator", "GeneratorConfig",
    "ModelEntry", "ModelNotFoundError", "SRModel", "UNetDiscriminator", "UNetDiscriminatorConfig", "WeightsError",
    "canonicalize_state_dict", "check_detail", "load_generator", "read_metadata", "resolve", "save_generator",
]
