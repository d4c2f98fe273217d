"""Well-known downloadable models: official URL, SHA-256, licence, and where each hash comes from.

`srgan models download NAME` fetches one into the cache (`$SRGAN_CACHE`, default
~/.cache/srgan/models) with `srgan.data.download.download` (resumable, hash-checked, renamed only
once verified); `-m NAME` then resolves to the cached file. Third-party entries need the
`interop` extra to run (spandrel).

A hash is listed only with the source it was checked against (`hash_source`): the file on this
project's machines where we have it, otherwise the published values of OpenModelDB and of an
Arch Linux PKGBUILD of Real-ESRGAN, which agree wherever both list a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .io import WeightsError

_OPENMODELDB = "OpenModelDB (github.com/OpenModelDB/open-model-database, data/models)"
_PKGBUILD = "the python-realesrgan 0.3.0 PKGBUILD sha256sums"
_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    filename: str
    url: str
    sha256: str
    size: int  # bytes
    scale: int
    arch: str
    licence: str
    description: str
    hash_source: str

    @property
    def path(self) -> Path:
        return cache_dir() / self.filename

    def manual_hint(self) -> str:
        return f"download {self.url} by hand and save it as {self.path}"


def cache_dir() -> Path:
    """Where downloaded models live: $SRGAN_CACHE, else $XDG_CACHE_HOME/srgan/models, else ~/.cache/srgan/models."""
    if os.environ.get("SRGAN_CACHE"):
        return Path(os.environ["SRGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "srgan" / "models"


CATALOGUE: dict[str, CatalogueEntry] = {
    e.name: e
    for e in (
        CatalogueEntry(
            "realesrgan_x4plus", "RealESRGAN_x4plus.pth", f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
            "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 67_040_989, 4, "ESRGAN (RRDB, 23 blocks)",
            "BSD-3-Clause", "Real-ESRGAN x4plus: blind real-world photos (noise, blur, JPEG).",
            f"published: {_OPENMODELDB} and {_PKGBUILD} agree; not downloaded here",
        ),
        CatalogueEntry(
            "realesrgan_x2plus", "RealESRGAN_x2plus.pth", f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
            "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", 67_061_725, 2, "ESRGAN (RRDB, pixel-unshuffle)",
            "BSD-3-Clause", "Real-ESRGAN x2plus: the x2 real-world model.",
            f"published: {_OPENMODELDB} and {_PKGBUILD} agree; not downloaded here",
        ),
        CatalogueEntry(
            "realesrgan_x4plus_anime_6b", "RealESRGAN_x4plus_anime_6B.pth",
            f"{_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
            "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da", 17_938_799, 4, "ESRGAN (RRDB, 6 blocks)",
            "BSD-3-Clause", "Real-ESRGAN x4plus anime 6B: illustrations and anime stills.",
            f"published: {_OPENMODELDB} and {_PKGBUILD} agree; not downloaded here",
        ),
        CatalogueEntry(
            "realesr_general_x4v3", "realesr-general-x4v3.pth", f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
            "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", 4_885_111, 4, "Compact (SRVGG, 32 convs)",
            "BSD-3-Clause", "Real-ESRGAN general x4v3: small, fast blind real-world model.",
            f"verified: sha256 of the official file on this project's machines; also {_OPENMODELDB} and {_PKGBUILD}",
        ),
        CatalogueEntry(
            "realesr_animevideov3", "realesr-animevideov3.pth", f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth",
            "b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d", 2_504_012, 4, "Compact (SRVGG, 16 convs)",
            "BSD-3-Clause", "Real-ESRGAN anime video v3: the smallest, fastest model (anime, video frames).",
            f"published by one source only ({_PKGBUILD}); the copy on this project's machines is a "
            "re-zipped file with the same tensors, so the release file itself could not be hashed here",
        ),
        CatalogueEntry(
            "esrgan_x4", "4x-ESRGAN.pth",
            "https://objectstorage.us-phoenix-1.oraclecloud.com/n/ax6ygfvpvzka/b/open-modeldb-files/o/models%2F4x-ESRGAN.pth",
            "545805ce2d861ee90972b5fa50b851f19ee4bb35dedd2eb090be1f7c935b6b00", 66_952_991, 4, "ESRGAN (RRDB, old layout)",
            "Apache-2.0", "ESRGAN (Wang et al. 2018) RRDB_ESRGAN_x4: the original GAN model, bicubic-trained.",
            f"published: {_OPENMODELDB}, which hosts this mirror (the authors' own copy is on Google Drive, "
            "not scriptable); not downloaded here",
        ),
    )
}


def cached_path(name: str) -> Path:
    """The cached file of catalogue entry `name`, or a one-line WeightsError saying how to get it."""
    entry = CATALOGUE[name]
    if entry.path.is_file():
        return entry.path
    raise WeightsError(f"{name}: not downloaded yet; run 'srgan models download {name}', or {entry.manual_hint()}")


def fetch(name: str) -> Path:
    """Download catalogue entry `name` into the cache (resumable, SHA-256 checked, atomic)."""
    from ..data.download import DownloadError, download

    entry = CATALOGUE[name]
    try:
        return download(entry.url, entry.path, entry.sha256)
    except DownloadError as exc:
        raise DownloadError(f"{exc}; offline? {entry.manual_hint()}") from None
