"""Shared fixtures. Tests never touch ../shared: images come from scikit-image's `data`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from srgan.models import Generator, GeneratorConfig, save_generator

# No test may reach the network for metric weights (LPIPS/NIQE): lookups that miss fail at once.
# Set at import so that CLI subprocesses inherit it; tests that need weights make their own.
os.environ["SRGAN_OFFLINE"] = "1"
os.environ.pop("SRGAN_METRIC_WEIGHTS", None)

# The interop tests need spandrel (and so torchvision); `make test` runs them in .venv-interop with
# SRGAN_REQUIRE_INTEROP set, where a missing extra fails. Elsewhere they are not collected at all.
if importlib.util.find_spec("spandrel") is None and not os.environ.get("SRGAN_REQUIRE_INTEROP"):
    collect_ignore = ["test_interop.py"]


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96x96 uint8 RGB crop of a real photo (scikit-image's astronaut, public domain)."""
    return np.ascontiguousarray(data.astronaut()[100:196, 180:276])


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small random-weight x4 generator saved as safetensors (fast to run)."""
    path = tmp_path_factory.mktemp("weights") / "tiny_x4.safetensors"
    save_generator(Generator(GeneratorConfig(num_blocks=2, channels=8)).eval(), path, recipe={"note": "random"})
    return path


@pytest.fixture
def photo_file(tmp_path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture(scope="session")
def metric_weights(tmp_path_factory) -> Path:
    """A folder laid out like the project's metric-weights layout, with self-made files.

    Random AlexNet convs (torchvision key layout), random non-negative LPIPS linear layers
    (the official `linK.model.1.weight` keys) and a NIQE pristine model fitted here on
    scikit-image's clean photos. Scores are not the published ones, but every code path is.
    """
    import torch

    from srgan.metrics.lpips_model import LPIPS
    from srgan.metrics.niqe_model import matlab_rgb2gray, niqe_features

    folder = tmp_path_factory.mktemp("metric_weights")
    torch.manual_seed(0)
    net = LPIPS()
    for m in net.features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.zeros_(m.bias)
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")},
               folder / "alexnet_imagenet_features.pth")
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 192, 384, 256, 256))},
               folder / "lpips_v0.1_alex.pth")
    x = np.arange(7) - 3.0
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    feats = np.concatenate([niqe_features(matlab_rgb2gray(im), window)
                            for im in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())])
    feats = feats[~np.isnan(feats).any(axis=1)]
    np.savez(folder / "niqe_pris_params.npz", mu_pris_param=feats.mean(0)[None], cov_pris_param=np.cov(feats, rowvar=False),
             gaussian_window=window)
    return folder
