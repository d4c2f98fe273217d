"""Where the perceptual metrics' weight files come from: a folder, the torch hub cache, or a download.

Three official files, the way users of the reference tools already have them:

- torchvision's ImageNet AlexNet (`alexnet-owt-7be5be79.pth`; torchvision names its files by the
  first 8 hex digits of their SHA-256, which is what is checked), for LPIPS' features;
- the LPIPS repository's v0.1 linear layers for AlexNet (`v0.1/alex.pth`, full SHA-256 checked);
- BasicSR's NIQE pristine model (`niqe_pris_params.npz`, the MATLAB release's parameters).

Lookup order for each: the folder passed as `directory` (`--metric-weights DIR`), the folder in
the `SRGAN_METRIC_WEIGHTS` environment variable, the torch hub cache (`$TORCH_HOME/hub/checkpoints`,
where torchvision keeps its AlexNet too), then a download into that cache with the hash checked
(`srgan.files.download`: resumable, renamed into place only once the hash matches). A folder may use
the official file names or the names of srgan's metric-weights layout. `SRGAN_OFFLINE=1`
forbids downloads (air-gapped machines, test suites).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..files import DownloadError, download, torch_hub_checkpoints

ENV_DIR = "SRGAN_METRIC_WEIGHTS"
ENV_OFFLINE = "SRGAN_OFFLINE"


class MetricWeightsError(RuntimeError):
    """A metric's weights cannot be found, fetched or read; the message is one line."""


@dataclass(frozen=True)
class MetricFile:
    """One downloadable weights file: accepted names in a folder, official URL and hash."""

    label: str
    names: tuple[str, ...]  # file names accepted in a folder, relative paths allowed
    url: str
    sha256: str  # full hex digest, or a prefix of it (torchvision's convention)
    cache_name: str  # name in the torch hub cache (torchvision's own name for its AlexNet)


ALEXNET = MetricFile(
    "AlexNet (torchvision, ImageNet)",
    ("alexnet_imagenet_features.pth", "alexnet-owt-7be5be79.pth"),
    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "7be5be79",
    "alexnet-owt-7be5be79.pth",
)
LPIPS_ALEX = MetricFile(
    "LPIPS v0.1 AlexNet linear layers",
    ("lpips_v0.1_alex.pth", "alex.pth", "v0.1/alex.pth"),
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "lpips_v0.1_alex.pth",
)
NIQE_PARAMS = MetricFile(
    "NIQE pristine parameters",
    ("niqe_pris_params.npz",),
    "https://github.com/XPixelGroup/BasicSR/raw/master/basicsr/metrics/niqe_pris_params.npz",
    "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
    "niqe_pris_params.npz",
)


def in_folder(spec: MetricFile, folder: Path) -> Path | None:
    """The first of `spec.names` present in `folder`, or None. Pure apart from the stat calls."""
    return next((folder / n for n in spec.names if (folder / n).is_file()), None)


def find_metric_file(spec: MetricFile, directory: str | Path | None = None, *, download: bool = True) -> Path:
    """Path of `spec`'s file: `directory`, $SRGAN_METRIC_WEIGHTS, the hub cache, or downloaded there.

    Raises MetricWeightsError naming what was searched and how to provide the file.
    """
    if directory is not None and not Path(directory).is_dir():
        raise MetricWeightsError(f"--metric-weights {directory}: no such folder")
    folders = [Path(d) for d in (directory, os.environ.get(ENV_DIR)) if d]
    for folder in folders:
        found = in_folder(spec, folder)
        if found is not None:
            return found
    cached = torch_hub_checkpoints() / spec.cache_name
    if cached.is_file():
        return cached
    searched = ", ".join(str(f) for f in [*folders, torch_hub_checkpoints()])
    hint = (f"put {' or '.join(spec.names[:2])} in a folder and pass --metric-weights DIR "
            f"(or set {ENV_DIR}=DIR)")
    if not download or os.environ.get(ENV_OFFLINE, "") not in ("", "0"):
        raise MetricWeightsError(f"{spec.label}: not found in {searched} and downloads are off; {hint}")
    return fetch(spec, cached, hint)


def fetch(spec: MetricFile, dest: Path, hint: str) -> Path:
    """Download `spec.url` to `dest` with its hash checked; one-line MetricWeightsError on failure."""
    try:
        return download(spec.url, dest, spec.sha256)
    except DownloadError as exc:
        raise MetricWeightsError(f"{spec.label}: {exc}; {hint}") from None
