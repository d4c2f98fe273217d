"""Settings of the HTTP service: one frozen dataclass, validated on construction.

This module imports neither FastAPI nor uvicorn, so the CLI can build its parser and check its
options without the optional `serve` dependencies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..registry import DEFAULT_MODEL, MODELS, bundled, unknown_model

MIB = 1024 * 1024
# Pixel budget of one upload: 2048 x 2048 (its 4x output is 201 MB in 8-bit RGB). Lower than the
# CLI's because a service holds several images at once and its inputs come from others.
SERVE_MAX_PIXELS = 2048 * 2048
# Bytes a multipart body may carry beyond the file itself (boundaries, part headers, form fields).
FORM_OVERHEAD_BYTES = 64 * 1024
# The largest `outscale` accepted, as in `upscale_picture`.
MAX_OUTSCALE = 16.0
# Seconds an upload may take before the minimum rate applies: covers connection set-up and TCP
# slow start, so a small upload on a slow link is never cut in its first moments.
UPLOAD_GRACE_S = 2.0
# Request line + headers: 16 KiB, far above any browser's, answered 431 beyond.
MAX_HEAD_BYTES = 16 * 1024


def describe_bytes(n: int) -> str:
    """A byte count for messages: "20 MiB" when whole, else "1,234,567 bytes"."""
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n:,} bytes"


def parse_model_specs(specs: Sequence[str | os.PathLike]) -> dict[str, str]:
    """Bundled or catalogue model names and weights-file paths -> {public name: name or path}.

    A bundled or catalogue name keeps its name; a file is listed under its stem (made unique with a
    suffix). Raises ValueError naming the spec when it is neither a known model nor an existing file.
    """
    models: dict[str, str] = {}
    for spec in specs:
        text = str(spec)
        if text in MODELS:
            models[text] = text
            continue
        path = Path(text)
        if not path.is_file():
            raise ValueError(unknown_model(text))
        name, n = path.stem, 2
        while name in models:
            name, n = f"{path.stem}_{n}", n + 1
        models[name] = str(path)
    return models


def _default_models() -> Mapping[str, str]:
    return {name: name for name in bundled()}


@dataclass(frozen=True)
class ServeSettings:
    """Everything `create_app` needs; host and port belong to the server, not here.

    models: public name -> bundled model name or weights path (a sequence of specs is accepted
        and converted with `parse_model_specs`); loaded lazily on first use, then shared.
    default_model: used when a request names none (default: srgan_x4 if offered, else the first).
    device: auto | cpu | cuda | cuda:N | mps.   precision: auto | fp32 | bf16 | fp16.
    workers: inference jobs run at once (one per device is fastest on a CPU).
    queue_size: accepted jobs that may wait for a worker; beyond that, 503 with Retry-After.
    max_upload_bytes: the largest uploaded file; the request body may be FORM_OVERHEAD_BYTES more.
    max_pixels: the largest input (width x height), checked from the header before decoding.
    tile: LR tile size for the tiled engine, 0 = automatic from free memory.
    upload_timeout_s: the whole request body must arrive within this many seconds, else 408.
    min_upload_rate: bytes per second an upload must average (after `upload_grace_s`), else 408;
        0 turns the rate check off. Uploads are read in full before a job is queued, so a slow
        client holds a connection, never a worker or a queue slot.
    upload_grace_s: seconds at the start of an upload before the rate applies.
    """

    models: Mapping[str, str] = field(default_factory=_default_models)
    default_model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    workers: int = 1
    queue_size: int = 4
    max_upload_bytes: int = 20 * MIB
    max_pixels: int = SERVE_MAX_PIXELS
    tile: int = 0
    upload_timeout_s: float = 120.0
    min_upload_rate: float = 8 * 1024
    upload_grace_s: float = UPLOAD_GRACE_S

    def __post_init__(self) -> None:
        models = self.models
        if not isinstance(models, Mapping):
            models = parse_model_specs(list(models))
        if not models:
            raise ValueError("models: at least one model is needed")
        object.__setattr__(self, "models", MappingProxyType({str(k): str(v) for k, v in models.items()}))
        default = self.default_model
        if default is None:
            default = DEFAULT_MODEL if DEFAULT_MODEL in self.models else next(iter(self.models))
        if default not in self.models:
            raise ValueError(f"default_model {default!r} is not one of the models ({', '.join(self.models)})")
        object.__setattr__(self, "default_model", default)
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        for name, value, low in (("workers", self.workers, 1), ("queue_size", self.queue_size, 0),
                                 ("max_upload_bytes", self.max_upload_bytes, 1), ("max_pixels", self.max_pixels, 1),
                                 ("tile", self.tile, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, value in (("min_upload_rate", self.min_upload_rate), ("upload_timeout_s", self.upload_timeout_s),
                            ("upload_grace_s", self.upload_grace_s)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not self.upload_timeout_s > 0:
            raise ValueError(f"upload_timeout_s must be > 0, got {self.upload_timeout_s!r}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: the file limit plus room for the multipart framing."""
        return self.max_upload_bytes + FORM_OVERHEAD_BYTES
