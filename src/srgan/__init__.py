"""srgan: photo-realistic single-image super-resolution (Ledig et al., CVPR 2017).

    >>> import srgan
    >>> model = srgan.load_model("srresnet_x4")          # an SRModel: (N,3,H,W) in [0,1] -> (N,3,4H,4W)
    >>> big = srgan.upscale(Image.open("photo.png"))     # PIL image, 4x, with srgan_x4
"""

__version__ = "0.1.0"

from .inference import load_model, upscale, upscale_array  # noqa: E402
from .models import Discriminator, Generator, GeneratorConfig, SRModel  # noqa: E402

__all__ = ["Discriminator", "Generator", "GeneratorConfig", "SRModel", "__version__", "load_model", "upscale",
           "upscale_array"]
