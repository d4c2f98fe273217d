"""Networks of the paper and their weights."""

from .descriptor import SRModel
from .discriminator import Discriminator, DiscriminatorConfig
from .io import WeightsError, canonicalize_state_dict, load_generator, read_metadata, save_generator
from .pretrained import DEFAULT_MODEL, PRETRAINED, PretrainedWeights
from .srresnet import Generator, GeneratorConfig

__all__ = [
    "DEFAULT_MODEL", "PRETRAINED", "Discriminator", "DiscriminatorConfig", "Generator",
    "GeneratorConfig", "PretrainedWeights", "SRModel", "WeightsError", "canonicalize_state_dict",
    "load_generator", "read_metadata", "save_generator",
]
