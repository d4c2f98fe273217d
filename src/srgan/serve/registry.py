"""The models a service offers: loaded once on first use, then shared by every request."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..inference.api import load_model
from ..models import MODELS, read_metadata, resolve
from ..models.descriptor import SRModel
from ..registry import dialable

log = logging.getLogger(__name__)
BLENDS_KEPT = 4  # detail-dial blends kept in memory (12 MB each for srgan_x4: both generators)


def _declared_scale(source: str) -> int | None:
    """The scale written in a weights file's metadata, without loading it (None if unknown)."""
    try:
        config = json.loads(read_metadata(resolve(source).path).get("srgan.config", "{}"))
        return int(config["scale"]) if "scale" in config else None
    except Exception:  # a .pth file, or metadata we cannot read: known once loaded
        return None


class ModelRegistry:
    """Public name -> lazily loaded SRModel (any source load_model reads) on one device; thread-safe."""

    def __init__(self, sources: Mapping[str, str], device: torch.device) -> None:
        self.device = device
        self._sources = dict(sources)
        self._models: dict[str, SRModel] = {}
        self._locks = {name: threading.Lock() for name in self._sources}
        self._scales = {name: _declared_scale(src) for name, src in self._sources.items()}
        self._blends: OrderedDict[tuple[str, float], SRModel] = OrderedDict()  # (name, detail) -> model, LRU
        self._blend_lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    @property
    def names(self) -> list[str]:
        return list(self._sources)

    @property
    def loaded(self) -> list[str]:
        return [name for name in self._sources if name in self._models]

    def has_detail(self, name: str) -> bool:
        """Whether `name` is a bundled GAN model with a PSNR base to blend with."""
        return dialable(self._sources.get(name, ""))

    def get(self, name: str, detail: float | None = None) -> SRModel:
        """The model called `name`, loading it on first use (raises KeyError, WeightsError).

        With `detail`, the blend of it and its PSNR base (rounded to 0.01); the last
        BLENDS_KEPT blends are kept, since each holds its own copy of both generators.
        """
        if detail is not None:
            key = (name, round(detail, 2))
            with self._blend_lock:
                if key not in self._blends:
                    self._blends[key] = load_model(self._sources[name], self.device, key[1])
                    while len(self._blends) > BLENDS_KEPT:
                        self._blends.popitem(last=False)
                self._blends.move_to_end(key)
                return self._blends[key]
        model = self._models.get(name)
        if model is not None:
            return model
        with self._locks[name]:  # one load per model, even when requests for it arrive together
            model = self._models.get(name)
            if model is None:
                log.info("loading model %s from %s on %s", name, self._sources[name], self.device)
                model = load_model(self._sources[name], self.device)
                self._models[name] = model
                self._scales[name] = model.scale
        return model

    def describe(self, name: str) -> dict[str, Any]:
        """{name, scale, description, loaded} for the model list."""
        source = self._sources[name]
        entry = MODELS.get(source)
        description = entry.description if entry is not None else f"weights file {Path(source).name}"
        if name in self._models:
            description += f" ({self._models[name].arch})"
        return {"name": name, "scale": self._scales[name], "description": description,
                "loaded": name in self._models, "detail": self.has_detail(name)}
