"""srgan: photo-realistic single-image super-resolution (Ledig et al., CVPR 2017).

    >>> import srgan
    >>> model = srgan.load_model("srresnet_x4")          # an SRModel: (N,3,H,W) in [0,1] -> (N,3,4H,4W)
    >>> big = srgan.upscale(Image.open("photo.png"))     # PIL image, 4x, with srgan_x4

The names below load on first use (PEP 562), so that `import srgan` and the CLI's help and
argument checks do not import torch.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_model": "srgan.inference", "upscale": "srgan.inference", "upscale_array": "srgan.inference",
    "Discriminator": "srgan.models", "Generator": "srgan.models", "GeneratorConfig": "srgan.models",
    "SRModel": "srgan.models", "upscale_video": "srgan.video",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
