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
