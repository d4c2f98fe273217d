"""Every model with a name: the bundled weights and the downloadable catalogue in one typed table,
and `resolve`, the one way a name or a path becomes a weights file (timm's `create`/`resolve`).
Standard library only, so that the CLI can list and check models without importing torch.

Bundled entries ship inside the package (`srgan/weights/`); catalogue entries have an official
URL, a SHA-256 and the source that hash was checked against (`hash_source`), and are fetched by
`srgan models download NAME` into the cache (`$SRGAN_CACHE`, default ~/.cache/srgan/models),
resumable and hash-checked (`srgan.files.download`). Third-party entries need the `interop`
extra to run (spandrel).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .files import DownloadError, download

DEFAULT_MODEL = "srgan_x4"

_OPENMODELDB = "OpenModelDB (github.com/OpenModelDB/open-model-database, data/models)"
_PKGBUILD = "the python-realesrgan 0.3.0 PKGBUILD sha256sums"
_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
_SRRESNET = "SRResNet (16 blocks)"


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and the reason."""


class ModelNotFoundError(WeightsError):
    """A known model name whose file is not there (not downloaded, or missing from the install)."""


@dataclass(frozen=True)
class ModelEntry:
    """One named model. `url` None: the file ships inside the package."""

    name: str
    filename: str
    scale: int
    arch: str
    licence: str
    description: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None  # bytes of the download
    hash_source: str | None = None
    # The PSNR-trained model a GAN model was fine-tuned from: `detail` blends the two (0 = it, 1 = this).
    detail_base: str | None = None

    @property
    def bundled(self) -> bool:
        return self.url is None

    @property
    def path(self) -> Path:
        if self.bundled:
            return Path(str(resources.files("srgan") / "weights" / self.filename))
        return cache_dir() / self.filename

    def manual_hint(self) -> str:
        return f"download {self.url} by hand and save it as {self.path}"


def cache_dir() -> Path:
    """Where downloaded models live: $SRGAN_CACHE, else $XDG_CACHE_HOME/srgan/models, else ~/.cache/srgan/models."""
    if os.environ.get("SRGAN_CACHE"):
        return Path(os.environ["SRGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "srgan" / "models"


MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry("srresnet_x4", "srresnet_x4.safetensors", 4, _SRRESNET, "MIT",
                   "SRResNet x4 trained for PSNR (MSE): faithful, smooth detail."),
        ModelEntry("srgan_x4", "srgan_x4.safetensors", 4, _SRRESNET, "MIT",
                   "SRGAN x4: SRResNet fine-tuned with perceptual + adversarial loss: sharper texture.",
                   detail_base="srresnet_x4"),
        ModelEntry("srresnet_x4_real", "srresnet_x4_real.safetensors", 4, _SRRESNET, "MIT",
                   "For real photos (noise, JPEG, blur), PSNR-trained: cleans them, smooth detail."),
        ModelEntry("srgan_x4_real", "srgan_x4_real.safetensors", 4, _SRRESNET, "MIT",
                   "For real photos: noise, JPEG, blur: cleans them while it upscales, with texture.",
                   detail_base="srresnet_x4_real"),
        ModelEntry(
            "realesrgan_x4plus", "RealESRGAN_x4plus.pth", 4, "ESRGAN (RRDB, 23 blocks)", "BSD-3-Clause",
            "Real-ESRGAN x4plus: blind real-world photos (noise, blur, JPEG).",
            f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
            "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 67_040_989,
            f"published: {_OPENMODELDB} and {_PKGBUILD} agree; not downloaded here",
        ),
        ModelEntry(
            "realesrgan_x2plus", "RealESRGAN_x2plus.pth", 2, "ESRGAN (RRDB, pixel-unshuffle)", "BSD-3-Clause",
            "Real-ESRGAN x2plus: the x2 real-world model.",
            f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
            "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", 67_061_725,
            f"published: {_OPENMODELDB} and {_PKGBUILD} agree; not downloaded here",
        ),
        ModelEntry(
            "realesrgan_x4plus_anime_6b", "RealESRGAN_x4plus_anime_6B.pth", 4, "ESRGAN (RRDB, 6 blocks)",
            "BSD-3-Clause", "Real-ESRGAN x4plus anime 6B: illustrations and anime stills.",
            f"{_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
            "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da", 17_938_799,
            f"published: {_OPENMODELDB} and {_PKGBUILD} agree; not downloaded here",
        ),
        ModelEntry(
            "realesr_general_x4v3", "realesr-general-x4v3.pth", 4, "Compact (SRVGG, 32 convs)", "BSD-3-Clause",
            "Real-ESRGAN general x4v3: small, fast blind real-world model.",
            f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
            "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", 4_885_111,
            f"verified: sha256 of the official file, computed by the maintainers; also {_OPENMODELDB} and {_PKGBUILD}",
        ),
        ModelEntry(
            "realesr_animevideov3", "realesr-animevideov3.pth", 4, "Compact (SRVGG, 16 convs)", "BSD-3-Clause",
            "Real-ESRGAN anime video v3: the smallest, fastest model (anime, video frames).",
            f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth",
            "b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d", 2_504_012,
            f"published by one source only ({_PKGBUILD}); the maintainers' copy is a re-zipped file with "
            "the same tensors, so the release file itself could not be hashed",
        ),
        ModelEntry(
            "esrgan_x4", "4x-ESRGAN.pth", 4, "ESRGAN (RRDB, old layout)", "Apache-2.0",
            "ESRGAN (Wang et al. 2018) RRDB_ESRGAN_x4: the original GAN model, bicubic-trained.",
            "https://objectstorage.us-phoenix-1.oraclecloud.com/n/ax6ygfvpvzka/b/open-modeldb-files/o/models%2F4x-ESRGAN.pth",
            "545805ce2d861ee90972b5fa50b851f19ee4bb35dedd2eb090be1f7c935b6b00", 66_952_991,
            f"published: {_OPENMODELDB}, which hosts this mirror (the authors' own copy is on Google Drive, "
            "not scriptable); not downloaded here",
        ),
    )
}


def bundled() -> list[str]:
    """The names of the models inside the package, in table order."""
    return [n for n, e in MODELS.items() if e.bundled]


def downloadable() -> list[str]:
    """The names of the catalogue's models, in table order."""
    return [n for n, e in MODELS.items() if not e.bundled]


def dialable(name: str) -> bool:
    """Whether `name` is a model with a PSNR base for `--detail` to blend with."""
    entry = MODELS.get(name)
    return entry is not None and entry.detail_base is not None


@dataclass(frozen=True)
class ResolvedModel:
    """What a model spec names: its display name, its weights file and, for a named model, its entry."""

    name: str
    path: Path
    entry: ModelEntry | None


def resolve(spec: str | os.PathLike) -> ResolvedModel:
    """A model name of the table or a weights file path -> the file, with one precedence (a name
    first) and one error text for every entry point (upscale, eval, serve, export, the API).

    Raises ModelNotFoundError for a known name whose file is missing, WeightsError for a spec
    that is neither a name nor an existing file.
    """
    key = str(spec)
    entry = MODELS.get(key)
    if entry is not None:
        if entry.path.is_file():
            return ResolvedModel(key, entry.path, entry)
        if entry.bundled:
            raise ModelNotFoundError(f"{key}: bundled weights file {entry.path} is missing from the installation")
        raise ModelNotFoundError(f"{key}: not downloaded yet; run 'srgan models download {key}', or {entry.manual_hint()}")
    path = Path(spec)
    if path.is_file():
        return ResolvedModel(path.stem, path, None)
    raise WeightsError(unknown_model(key))


def unknown_model(spec: str) -> str:
    """The one error text for a model spec that is neither a name of the table nor a file."""
    return (f"unknown model {spec!r}: neither a bundled model ({', '.join(bundled())}), a catalogue name "
            "(srgan models) nor an existing file")


def fetch(name: str) -> Path:
    """Download catalogue entry `name` into the cache (resumable, SHA-256 checked, atomic)."""
    entry = MODELS[name]
    if entry.bundled:
        return entry.path
    try:
        return download(entry.url, entry.path, entry.sha256)
    except DownloadError as exc:
        raise DownloadError(f"{exc}; offline? {entry.manual_hint()}") from None
