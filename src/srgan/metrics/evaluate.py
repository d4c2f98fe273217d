"""Benchmark evaluation: folders of HR images -> LR by the training degradation -> SR -> scores.

For every HR image: modcrop to the scale, LR = ``bicubic_downscale(hr, scale)`` (the exact
degradation training uses), SR by a model or by bicubic upscaling, then Y-PSNR and Y-SSIM with
`scale` pixels shaved (`srgan.metrics.protocol`). Optional: RGB PSNR, and LPIPS when the
``lpips`` package and its AlexNet weights are already on this machine.

The core (``bicubic_upscale``, ``score_image``, ``summarize``, ``pick_crop``) is pure; the
drivers (``load_upscaler``, ``evaluate_folder``, ``run_benchmark``) read files and run models.
Nothing here prints: progress goes to a tqdm bar on stderr, notes to `logging`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.dataset import decode_rgb, find_images
from ..data.degradation import bicubic_downscale, bicubic_resize, modcrop
from .protocol import SSIM_WINDOW, grid_level, psnr_rgb, psnr_y, rgb_to_y, shave, ssim_y, texture_ratio

log = logging.getLogger(__name__)

BICUBIC = "bicubic"

# An upscaling function: LR (h, w, 3) uint8 -> SR (h*scale, w*scale, 3) uint8.
UpscaleFn = Callable[[np.ndarray], np.ndarray]
# A perceptual distance: (SR, HR) (H, W, 3) uint8 -> float (lower is better).
DistanceFn = Callable[[np.ndarray, np.ndarray], float]


class EvalInputError(ValueError):
    """An argument that names nothing usable (unknown model, missing folder): a usage error."""


class WeightsNotFoundError(FileNotFoundError):
    """A known pretrained model whose weights file is not on disk (not trained or shipped yet)."""


# ----------------------------------------------------------------------------- pure core


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: (h, w, 3) uint8 -> (h*scale, w*scale, 3) uint8, Pillow bicubic."""
    return bicubic_resize(lr, (lr.shape[0] * scale, lr.shape[1] * scale))


def min_image_size(scale: int) -> int:
    """Smallest HR side that leaves an SSIM window after shaving `scale` px from each border."""
    return SSIM_WINDOW + 2 * scale


def score_image(sr: np.ndarray, hr: np.ndarray, scale: int, rgb: bool = False) -> dict[str, float]:
    """Protocol scores of one SR output against its (modcropped) HR image, both (H, W, 3) uint8.

    Returns {"psnr_y": dB, "ssim_y": [-1, 1], "texture": ratio (1 = as detailed as HR),
    "grid": fixed sub-pixel pattern in grey levels (photo-like ~0.1-0.3)} plus "psnr_rgb" (dB) when `rgb`.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"SR output {sr.shape} does not match the HR image {hr.shape}")
    scores = {"psnr_y": psnr_y(sr, hr, scale), "ssim_y": ssim_y(sr, hr, scale), "texture": texture_ratio(sr, hr, scale),
              "grid": grid_level(sr, scale)}
    if rgb:
        scores["psnr_rgb"] = psnr_rgb(sr, hr, scale)
    return scores


@dataclass(frozen=True)
class ImageResult:
    """Scores of one model on one image; `seconds` is the time to produce the SR output."""

    dataset: str
    model: str
    image: str
    psnr_y: float
    ssim_y: float
    seconds: float
    texture: float | None = None
    grid: float | None = None
    psnr_rgb: float | None = None
    lpips: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict; absent optional metrics are left out."""
        return _rounded({k: v for k, v in asdict(self).items() if v is not None})


@dataclass(frozen=True)
class DatasetResult:
    """Mean scores of one model on one dataset; `seconds` is the total SR time over its images."""

    dataset: str
    model: str
    scale: int
    psnr_y: float
    ssim_y: float
    images: int
    seconds: float
    texture: float | None = None
    grid: float | None = None
    psnr_rgb: float | None = None
    lpips: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict; absent optional metrics are left out."""
        return _rounded({k: v for k, v in asdict(self).items() if v is not None})


def _rounded(d: dict[str, object]) -> dict[str, object]:
    digits = {"psnr_y": 4, "psnr_rgb": 4, "ssim_y": 6, "lpips": 6, "seconds": 4, "texture": 4, "grid": 4}
    return {k: round(v, digits[k]) if k in digits and isinstance(v, float) else v for k, v in d.items()}


def summarize(rows: Sequence[ImageResult], scale: int) -> list[DatasetResult]:
    """Mean per (dataset, model), in first-seen order. Pure."""
    groups: dict[tuple[str, str], list[ImageResult]] = {}
    for row in rows:
        groups.setdefault((row.dataset, row.model), []).append(row)

    def mean(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else float(np.mean(values))

    return [
        DatasetResult(
            dataset=dataset, model=model, scale=scale,
            psnr_y=float(np.mean([r.psnr_y for r in group])),
            ssim_y=float(np.mean([r.ssim_y for r in group])),
            images=len(group),
            seconds=float(sum(r.seconds for r in group)),
            texture=mean([r.texture for r in group]),
            grid=mean([r.grid for r in group]),
            psnr_rgb=mean([r.psnr_rgb for r in group]),
            lpips=mean([r.lpips for r in group]),
        )
        for (dataset, model), group in groups.items()
    ]


def pick_crop(hr: np.ndarray, reference: np.ndarray, size: int, border: int = 0) -> tuple[int, int, int]:
    """The `size` x `size` window where `reference` (e.g. bicubic) differs most from `hr` on Y.

    Both (H, W, 3) uint8; the window stays `border` px (the shaved margin) inside the image when
    it fits. Returns (top, left, size), size clipped to the image. That is where SR methods
    differ most, the natural zoom for a side-by-side figure. Pure.
    """
    h, w = hr.shape[:2]
    size = max(1, min(size, h, w))
    border = max(0, min(border, (h - size) // 2, (w - size) // 2))
    err = shave((rgb_to_y(hr) - rgb_to_y(reference)) ** 2, border)
    sat = np.zeros((err.shape[0] + 1, err.shape[1] + 1))
    sat[1:, 1:] = err.cumsum(0).cumsum(1)
    sums = sat[size:, size:] - sat[:-size, size:] - sat[size:, :-size] + sat[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top) + border, int(left) + border, size


# ----------------------------------------------------------------------------- models


@dataclass
class Upscaler:
    """A named SR method. `scale` is None for methods that work at any scale (bicubic)."""

    name: str
    fn: UpscaleFn
    scale: int | None = None

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        return self.fn(lr)


def bicubic_upscaler(scale: int) -> Upscaler:
    """The bicubic baseline as an Upscaler."""
    return Upscaler(BICUBIC, lambda lr: bicubic_upscale(lr, scale), None)


def model_label(spec: str) -> str:
    """Display name of a --model value: the name itself, or a weights file's stem."""
    from ..models import PRETRAINED
    from ..models.catalogue import CATALOGUE

    return spec if spec == BICUBIC or spec in PRETRAINED or spec in CATALOGUE else Path(spec).stem


def check_model_spec(spec: str) -> None:
    """Classify a --model value before loading anything.

    Raises WeightsNotFoundError for a known pretrained or catalogue name whose file is not
    installed or downloaded yet, EvalInputError for a value that is neither bicubic, a known
    name, nor an existing file.
    """
    from ..models import PRETRAINED, WeightsError
    from ..models.catalogue import CATALOGUE, cached_path

    if spec == BICUBIC:
        return
    if spec in PRETRAINED:
        path = PRETRAINED[spec].path
        if not path.is_file():
            raise WeightsNotFoundError(f"model {spec}: weights not found at {path} (not trained or installed yet)")
    elif spec in CATALOGUE and not Path(spec).is_file():
        try:
            cached_path(spec)
        except WeightsError as exc:
            raise WeightsNotFoundError(str(exc)) from None
    elif not Path(spec).is_file():
        known = ", ".join([BICUBIC, *PRETRAINED])
        raise EvalInputError(f"unknown model {spec!r}: not one of {known}, nor an existing weights file")


def model_upscaler(model, name: str, precision: str = "fp32") -> Upscaler:
    """Wrap an SRModel or Generator (on its device) as an Upscaler: whole image in one pass, no tiles.

    Inference is `srgan.inference.upscale_array`, the same code path as `srgan upscale`.
    """
    from ..inference import upscale_array

    return Upscaler(name, lambda lr: upscale_array(model, lr, tile=0, precision=precision), int(model.scale))


def load_upscaler(spec: str, scale: int, device: str = "auto", precision: str = "fp32") -> Upscaler:
    """'bicubic', a bundled or downloaded catalogue name, or a weights file (any model
    `srgan.load_model` reads: SRResNet, spandrel-detected, .onnx) -> Upscaler.

    Raises EvalInputError (unknown name, wrong scale, bad device/precision),
    WeightsNotFoundError (known name, file missing), srgan.models.WeightsError (unreadable file).
    """
    check_model_spec(spec)
    if spec == BICUBIC:
        return bicubic_upscaler(scale)
    from ..device import resolve_precision, select_device
    from ..inference import load_model

    try:
        dev = select_device(device)
        resolve_precision(precision, dev)
    except ValueError as exc:
        raise EvalInputError(str(exc)) from None
    up = model_upscaler(load_model(spec, dev), model_label(spec), precision)
    if up.scale != scale:
        raise EvalInputError(f"model {spec} upscales x{up.scale}, but --scale is {scale}")
    return up


def load_lpips(device: str = "auto") -> tuple[DistanceFn | None, str | None]:
    """LPIPS (AlexNet) as (SR, HR) -> distance when usable offline, else (None, one-line reason).

    Needs the ``lpips`` package and torchvision's AlexNet weights already in the torch hub
    cache; never downloads anything.
    """
    if importlib.util.find_spec("lpips") is None:
        return None, "LPIPS skipped: the lpips package is not installed (pip install lpips)"
    import torch

    cached = list((Path(torch.hub.get_dir()) / "checkpoints").glob("alexnet-*.pth"))
    if not cached:
        return None, "LPIPS skipped: AlexNet weights are not in the torch hub cache"
    try:
        import lpips

        from ..device import select_device

        dev = select_device(device)
        net = lpips.LPIPS(net="alex", verbose=False).to(dev).eval()
    except Exception as exc:  # any failure of an optional metric is a note, not an error
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"LPIPS skipped: {reason}"

    @torch.no_grad()
    def distance(sr: np.ndarray, hr: np.ndarray) -> float:
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(dev)

        return float(net(t(sr), t(hr)).mean())

    return distance, None


# ----------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class EvalImage:
    """One benchmark image: `hr` (H, W, 3) uint8 modcropped, `lr` (H/s, W/s, 3) uint8."""

    dataset: str
    name: str
    hr: np.ndarray
    lr: np.ndarray


def dataset_name(folder: str | Path) -> str:
    """A dataset is named by its folder ('.../benchmark/Set5' -> 'Set5')."""
    return Path(folder).resolve().name


def image_name(path: Path, folder: Path) -> str:
    """Image id inside its dataset: the path relative to the folder, without suffix."""
    return path.relative_to(folder).with_suffix("").as_posix()


def list_dataset(folder: str | Path) -> list[tuple[str, Path]]:
    """(image name, file) for every image under `folder`; EvalInputError if it is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: no such folder of images")
    return [(image_name(p, folder), p) for p in find_images([folder])]


def load_image(dataset: str, name: str, path: Path, scale: int) -> EvalImage:
    """Decode, modcrop, degrade. Raises ValueError for an image too small for the protocol."""
    hr = np.ascontiguousarray(modcrop(decode_rgb(path), scale))
    if min(hr.shape[:2]) < min_image_size(scale):
        raise ValueError(f"{hr.shape[1]}x{hr.shape[0]} is smaller than {min_image_size(scale)} px")
    return EvalImage(dataset, name, hr, bicubic_downscale(hr, scale))


# ----------------------------------------------------------------------------- drivers


@dataclass
class FigureRow:
    """What a comparison figure needs of one image: HR, and per method its output and Y-PSNR."""

    dataset: str
    image: str
    hr: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    psnr: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    """Everything one evaluation run produced."""

    scale: int
    rows: list[ImageResult] = field(default_factory=list)
    figure_rows: list[FigureRow] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def results(self) -> list[DatasetResult]:
        return summarize(self.rows, self.scale)


def evaluate_image(
    image: EvalImage, upscalers: Sequence[Upscaler], scale: int, rgb: bool = False, lpips: DistanceFn | None = None,
) -> Iterator[tuple[ImageResult, np.ndarray]]:
    """Run every upscaler on one image; yield (its scores, its SR output (H, W, 3) uint8)."""
    for up in upscalers:
        start = time.perf_counter()
        sr = up(image.lr)
        seconds = time.perf_counter() - start
        scores = score_image(sr, image.hr, scale, rgb)
        if lpips is not None:
            scores["lpips"] = lpips(shave(sr, scale), shave(image.hr, scale))
        yield ImageResult(image.dataset, up.name, image.name, seconds=seconds, **scores), sr


def save_image(path: Path, img: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as PNG atomically (temp file + os.replace)."""
    from PIL import Image

    from ..models.io import atomic_write

    atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))


def run_benchmark(
    folders: Sequence[str | Path],
    upscalers: Sequence[Upscaler],
    scale: int,
    *,
    rgb: bool = False,
    lpips: DistanceFn | None = None,
    figure_images: Callable[[str, str, int], bool] | None = None,
    save_dir: str | Path | None = None,
    progress: bool = True,
) -> Report:
    """Evaluate every upscaler on every image of `folders`.

    `figure_images(dataset, image, index)` selects the images whose outputs are kept for a
    figure (bicubic is added to those if it is not among the upscalers). `save_dir` receives
    SAVE_DIR/<dataset>/<model>/<image>.png. Unreadable or too-small images are skipped and
    listed in `Report.failures`; a missing folder raises EvalInputError before any work.
    """
    from tqdm import tqdm

    report = Report(scale)
    listings = [(dataset_name(f), list_dataset(f)) for f in folders]
    has_bicubic = any(up.name == BICUBIC for up in upscalers)
    for dataset, files in listings:
        if not files:
            report.failures.append(f"{dataset}: no images found")
            continue
        bar = tqdm(files, desc=dataset, unit="img", file=sys.stderr, disable=None if progress else True)
        for index, (name, path) in enumerate(bar):
            try:
                image = load_image(dataset, name, path, scale)
            except Exception as exc:  # a bad file must never stop a run
                log.debug("skipping %s: %s", path, exc)  # reported through Report.failures
                report.failures.append(f"{path}: {exc}")
                continue
            keep = figure_images is not None and figure_images(dataset, name, index)
            row = FigureRow(dataset, name, image.hr) if keep else None
            methods = list(upscalers) if has_bicubic or not keep else [bicubic_upscaler(scale), *upscalers]
            for result, sr in evaluate_image(image, methods, scale, rgb, lpips):
                if result.model != BICUBIC or has_bicubic:
                    report.rows.append(result)
                if row is not None:
                    row.outputs[result.model] = sr
                    row.psnr[result.model] = result.psnr_y
                if save_dir is not None:
                    save_image(Path(save_dir) / dataset / result.model / f"{name}.png", sr)
            if row is not None:
                report.figure_rows.append(row)
        bar.close()
    return report
