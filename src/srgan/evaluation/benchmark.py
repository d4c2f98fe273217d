"""Benchmark evaluation: folders of HR images -> LR by the training degradation -> SR -> scores.

For every HR image: modcrop to the scale, LR = ``bicubic_downscale(hr, scale)`` (the exact
degradation training uses), SR by a model or by bicubic upscaling, then Y-PSNR and Y-SSIM with
`scale` pixels shaved (`srgan.metrics.protocol`). Optional: RGB PSNR, and the perceptual
metrics LPIPS and NIQE (`srgan.metrics.lpips_model`, `srgan.metrics.niqe_model`) when their weights are found.
``evaluate_outputs`` scores images made by any other tool against ground truth the same way.

The core (``bicubic_upscale``, ``score_image``, ``summarize``, ``pick_crop``) is pure; the
drivers (``load_upscaler``, ``evaluate_folder``, ``run_benchmark``) read files and run models.
Nothing here prints: progress goes to a tqdm bar on stderr, notes to `logging`.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.dataset import index_by_stem
from ..data.degradation import bicubic_downscale, bicubic_resize, modcrop
from ..device import resolve_precision, select_device
from ..images import Picture, find_images, read_rgb, write_image
from ..inference import load_model, upscale_array
from ..metrics.lpips_model import load_lpips, lpips
from ..metrics.niqe_model import load_niqe_params, niqe
from ..metrics.protocol import (
    SSIM_WINDOW,
    grid_level,
    psnr_rgb,
    psnr_y,
    rgb_to_y,
    shave,
    ssim_y,
    structure_scores,
    texture_ratio,
)
from ..metrics.weights import MetricWeightsError
from ..registry import MODELS, ModelNotFoundError, WeightsError, resolve

log = logging.getLogger(__name__)

BICUBIC = "bicubic"

# An upscaling function: LR (h, w, 3) uint8 or uint16 -> SR (h*scale, w*scale, 3), same dtype.
UpscaleFn = Callable[[np.ndarray], np.ndarray]
# A perceptual distance: (SR, HR) (H, W, 3) uint8 or uint16 -> float (lower is better).
DistanceFn = Callable[[np.ndarray, np.ndarray], float]


class EvalInputError(ValueError):
    """An argument that names nothing usable (unknown model, missing folder): a usage error."""


class WeightsNotFoundError(FileNotFoundError):
    """A known pretrained model whose weights file is not on disk (not trained or shipped yet)."""


# ----------------------------------------------------------------------------- pure core


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: (h, w, 3) -> (h*scale, w*scale, 3), uint8 or uint16, Pillow bicubic."""
    return bicubic_resize(lr, (lr.shape[0] * scale, lr.shape[1] * scale))


def min_image_size(scale: int) -> int:
    """Smallest HR side that leaves an SSIM window after shaving `scale` px from each border."""
    return SSIM_WINDOW + 2 * scale


def score_image(sr: np.ndarray, hr: np.ndarray, scale: int, rgb: bool = False) -> dict[str, float]:
    """Protocol scores of one SR output against its (modcropped) HR image, both (H, W, 3) uint8 or uint16.

    Returns {"psnr_y": dB, "ssim_y": [-1, 1], "texture": ratio (1 = as detailed as HR),
    "grid": fixed sub-pixel pattern in grey levels (photo-like ~0.1-0.3), "edge": orientation error
    on HR's straight edges in degrees, "flat": detail added on HR's flat areas in grey levels (both
    None where HR has no such pixels)} plus "psnr_rgb" (dB) when `rgb`.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"SR output {sr.shape} does not match the HR image {hr.shape}")
    scores = {"psnr_y": psnr_y(sr, hr, scale), "ssim_y": ssim_y(sr, hr, scale), "texture": texture_ratio(sr, hr, scale),
              "grid": grid_level(sr, scale)}
    scores["edge"], scores["flat"] = structure_scores(sr, hr, scale)  # HR's structure tensor once for both
    if rgb:
        scores["psnr_rgb"] = psnr_rgb(sr, hr, scale)
    return scores


@dataclass(frozen=True, kw_only=True)
class Scores:
    """The optional scores of a result row, each None when not computed for it."""

    texture: float | None = None
    grid: float | None = None
    edge: float | None = None
    flat: float | None = None
    psnr_rgb: float | None = None
    lpips: float | None = None
    niqe: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict, the row's own fields first; absent optional metrics are left out."""
        optional = {f.name for f in fields(Scores)}
        row = asdict(self)
        return _rounded({k: row[k] for k in sorted(row, key=lambda k: k in optional) if row[k] is not None})


@dataclass(frozen=True)
class ImageResult(Scores):
    """Scores of one model on one image; `seconds` is the time to produce the SR output."""

    dataset: str
    model: str
    image: str
    psnr_y: float | None  # None when there is no ground truth (NIQE alone)
    ssim_y: float | None
    seconds: float


@dataclass(frozen=True)
class DatasetResult(Scores):
    """Mean scores of one model on one dataset; `seconds` is the total SR time over its images."""

    dataset: str
    model: str
    scale: int
    psnr_y: float | None
    ssim_y: float | None
    images: int
    seconds: float


def _rounded(d: dict[str, object]) -> dict[str, object]:
    digits = {"psnr_y": 4, "psnr_rgb": 4, "ssim_y": 6, "lpips": 6, "niqe": 4, "seconds": 4, "texture": 4, "grid": 4,
              "edge": 4, "flat": 4}
    return {k: round(v, digits[k]) if k in digits and isinstance(v, float) else v for k, v in d.items()}


def summarize(rows: Sequence[ImageResult], scale: int) -> list[DatasetResult]:
    """Mean per (dataset, model), in first-seen order. Pure."""
    groups: dict[tuple[str, str], list[ImageResult]] = {}
    for row in rows:
        groups.setdefault((row.dataset, row.model), []).append(row)

    def mean(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else float(np.mean(values))

    def mean_present(values: list[float | None]) -> float | None:
        """edge and flat: images without straight edges or flat areas (None) do not count."""
        present = [v for v in values if v is not None]
        return float(np.mean(present)) if present else None

    return [
        DatasetResult(
            dataset=dataset, model=model, scale=scale,
            psnr_y=mean([r.psnr_y for r in group]),
            ssim_y=mean([r.ssim_y for r in group]),
            images=len(group),
            seconds=float(sum(r.seconds for r in group)),
            texture=mean([r.texture for r in group]),
            grid=mean([r.grid for r in group]),
            edge=mean_present([r.edge for r in group]),
            flat=mean_present([r.flat for r in group]),
            psnr_rgb=mean([r.psnr_rgb for r in group]),
            lpips=mean([r.lpips for r in group]),
            niqe=mean([r.niqe for r in group]),
        )
        for (dataset, model), group in groups.items()
    ]


def pick_crop(hr: np.ndarray, reference: np.ndarray, size: int, border: int = 0) -> tuple[int, int, int]:
    """The `size` x `size` window where `reference` (e.g. bicubic) differs most from `hr` on Y.

    Both (H, W, 3) uint8 or uint16; the window stays `border` px (the shaved margin) inside the image when
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
    return spec if spec == BICUBIC or spec in MODELS else Path(spec).stem


def check_model_spec(spec: str) -> None:
    """Classify a --model value before loading anything (srgan.models.resolve).

    Raises WeightsNotFoundError for a known model name whose file is not installed or downloaded
    yet, EvalInputError for a value that is neither bicubic, a known name, nor an existing file.
    """
    if spec == BICUBIC:
        return
    try:
        resolve(spec)
    except ModelNotFoundError as exc:
        raise WeightsNotFoundError(str(exc)) from None
    except WeightsError as exc:
        raise EvalInputError(str(exc)) from None


def model_upscaler(model, name: str, precision: str = "fp32") -> Upscaler:
    """Wrap an SRModel or Generator (on its device) as an Upscaler: the whole-image result (one
    forward, or streamed in bands of rows: the same sums), never approximate tiles.

    Inference is `srgan.inference.upscale_array`, the same code path as `srgan upscale`.
    """
    return Upscaler(name, lambda lr: upscale_array(model, lr, tile=0, precision=precision), int(model.scale))


def load_upscaler(spec: str, scale: int, device: str = "auto", precision: str = "fp32",
                  detail: float | None = None) -> Upscaler:
    """'bicubic', a bundled or downloaded catalogue name, or a weights file (any model
    `srgan.load_model` reads: SRResNet, spandrel-detected, .onnx) -> Upscaler.

    `detail` blends a bundled GAN model with its PSNR base (`srgan.load_model`); the row is
    then named `srgan_x4@0.5`.

    Raises EvalInputError (unknown name, wrong scale, bad device/precision),
    WeightsNotFoundError (known name, file missing), srgan.models.WeightsError (unreadable file).
    """
    check_model_spec(spec)
    if spec == BICUBIC:
        return bicubic_upscaler(scale)
    try:
        dev = select_device(device)
        resolve_precision(precision, dev)
    except ValueError as exc:
        raise EvalInputError(str(exc)) from None
    try:
        model = load_model(spec, dev, detail)
    except WeightsError as exc:
        if detail is None:
            raise
        raise EvalInputError(str(exc)) from None
    up = model_upscaler(model, model.name if detail is not None else model_label(spec), precision)
    if up.scale != scale:
        raise EvalInputError(f"model {spec} upscales x{up.scale}, but --scale is {scale}")
    return up


@dataclass(frozen=True)
class Perceptual:
    """The perceptual metrics of a run, each None when off or unavailable.

    `lpips` (full reference, (SR, HR) -> distance) and `niqe` (no reference, image -> score),
    both on the images with `scale` px shaved, as PSNR. Lower is better for both.
    """

    lpips: DistanceFn | None = None
    niqe: Callable[[np.ndarray], float] | None = None

    def scores(self, sr: np.ndarray, hr: np.ndarray | None, scale: int) -> tuple[dict[str, float], list[str]]:
        """({"lpips": ..., "niqe": ...} for what is on, problems); `hr` None scores NIQE alone.

        A metric the image is too small for (LPIPS < 31 px, NIQE < two 96 px blocks after the
        shave) is left out of the dict and named, with the reason, in the problems.
        """
        out: dict[str, float] = {}
        problems: list[str] = []

        def attempt(key: str, compute: Callable[[], float]) -> None:
            try:
                out[key] = compute()
            except ValueError as exc:
                problems.append(f"{key.upper()} left out: {exc}")

        if self.lpips is not None and hr is not None:
            attempt("lpips", lambda: self.lpips(shave(sr, scale), shave(hr, scale)))
        if self.niqe is not None:
            attempt("niqe", lambda: self.niqe(shave(sr, scale)))
        return out, problems


def load_perceptual(weights: str | Path | None = None, device: str = "auto", *, use_lpips: bool = True,
                    use_niqe: bool = True) -> tuple[Perceptual, list[str]]:
    """LPIPS and NIQE with their official weights (see `srgan.metrics.weights`), plus notes.

    A metric whose weights cannot be found or fetched is left out with a one-line note saying
    why and how to provide them: missing weights never stop an evaluation.
    """
    notes: list[str] = []
    lpips_fn = niqe_fn = None
    if use_lpips:
        try:
            lpips_fn = functools.partial(lpips, weights=load_lpips(weights).to(select_device(device)))
        except (MetricWeightsError, ValueError) as exc:
            notes.append(f"LPIPS skipped: {exc}")
    if use_niqe:
        try:
            key = None if weights is None else str(weights)
            load_niqe_params(key)  # fails here, once, when the parameters cannot be found
            niqe_fn = functools.partial(niqe, weights=key)
        except MetricWeightsError as exc:
            notes.append(f"NIQE skipped: {exc}")
    return Perceptual(lpips_fn, niqe_fn), notes


# ----------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class EvalImage:
    """One benchmark image: `hr` (H, W, 3) modcropped, `lr` (H/s, W/s, 3), uint8 or uint16 as the files are; `hr` is
    None for a real photo, which has no ground truth (NIQE alone)."""

    dataset: str
    name: str
    hr: np.ndarray | None
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


def load_image(dataset: str, name: str, path: Path, scale: int, lr_path: Path | None = None) -> EvalImage:
    """Decode, modcrop, degrade (or read the given LR). ValueError for an image too small for the
    protocol or an LR image that is not HR/scale."""
    hr = np.ascontiguousarray(modcrop(read_rgb(path), scale))
    if min(hr.shape[:2]) < min_image_size(scale):
        raise ValueError(f"{hr.shape[1]}x{hr.shape[0]} is smaller than {min_image_size(scale)} px")
    if lr_path is None:
        return EvalImage(dataset, name, hr, bicubic_downscale(hr, scale))
    lr = read_rgb(lr_path)
    if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
        raise ValueError(f"LR {lr_path} is {lr.shape[1]}x{lr.shape[0]}, not the HR's {hr.shape[1]}x{hr.shape[0]} / {scale}")
    return EvalImage(dataset, name, hr, lr)


def load_real_image(dataset: str, name: str, path: Path) -> EvalImage:
    """A real low-resolution photo: the file is the input, there is no ground truth."""
    return EvalImage(dataset, name, None, read_rgb(path))


# ----------------------------------------------------------------------------- drivers


@dataclass
class FigureRow:
    """What a comparison figure needs of one image: HR (or, for a real photo, None and the LR
    input), and per method its output, Y-PSNR and LPIPS (NIQE for a real photo)."""

    dataset: str
    image: str
    hr: np.ndarray | None
    lr: np.ndarray | None = None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    psnr: dict[str, float] = field(default_factory=dict)
    lpips: dict[str, float] = field(default_factory=dict)
    niqe: dict[str, float] = field(default_factory=dict)


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
    image: EvalImage, upscalers: Sequence[Upscaler], scale: int, rgb: bool = False,
    perceptual: Perceptual = Perceptual(),
) -> Iterator[tuple[ImageResult, np.ndarray, list[str]]]:
    """Run every upscaler on one image; yield (its scores, its SR output (H, W, 3), problems)."""
    for up in upscalers:
        start = time.perf_counter()
        sr = up(image.lr)
        seconds = time.perf_counter() - start
        extra, problems = perceptual.scores(sr, image.hr, scale)
        if image.hr is not None:
            scores = score_image(sr, image.hr, scale, rgb) | extra
        else:  # a real photo: the no-reference scores alone
            scores = {"psnr_y": None, "ssim_y": None, "grid": grid_level(sr, scale)} | extra
        yield ImageResult(image.dataset, up.name, image.name, seconds=seconds, **scores), sr, problems


def save_image(path: Path, img: np.ndarray) -> None:
    """Write an (H, W, 3) uint8/uint16 array as PNG atomically (srgan.images.write_image)."""
    write_image(Picture(img), path)


def image_selector(names: Sequence[str] | None, datasets: set[str] | None = None) -> Callable[[str, str, int], bool]:
    """(dataset, image, index) -> bool for run_benchmark's `figure_images`: the images named IMAGE
    or DATASET/IMAGE, else the first image of each dataset; only within `datasets` when given."""
    wanted = set(names or ())

    def select(dataset: str, image: str, index: int) -> bool:
        if datasets is not None and dataset not in datasets:
            return False
        return image in wanted or f"{dataset}/{image}" in wanted if wanted else index == 0
    return select


def run_benchmark(
    folders: Sequence[str | Path],
    upscalers: Sequence[Upscaler],
    scale: int,
    *,
    rgb: bool = False,
    perceptual: Perceptual = Perceptual(),
    figure_images: Callable[[str, str, int], bool] | None = None,
    save_dir: str | Path | None = None,
    progress: bool = True,
    lr_folders: Sequence[str | Path] | None = None,
    real_folders: Sequence[str | Path] = (),
) -> Report:
    """Evaluate every upscaler on every image of `folders`, then of `real_folders`.

    `lr_folders` (one per folder) gives the LR inputs instead of bicubic downscaling, matched by
    stem (e.g. a real-world degraded set); the dataset is then named by the LR folder.
    `real_folders` hold real low-resolution photos: each file is the input itself, there is no
    ground truth, and only NIQE scores the outputs.

    `figure_images(dataset, image, index)` selects the images whose outputs are kept for a
    figure (bicubic is added to those if it is not among the upscalers). `save_dir` receives
    SAVE_DIR/<dataset>/<model>/<image>.png. Unreadable or too-small images are skipped and
    listed in `Report.failures`; a missing folder raises EvalInputError before any work.
    """
    report = Report(scale)
    if lr_folders is not None and len(lr_folders) != len(folders):
        raise EvalInputError(f"give one LR folder per HR folder ({len(lr_folders)} for {len(folders)})")
    for f in lr_folders or ():
        list_dataset(f)  # EvalInputError for a missing folder, before any work
    # (dataset name, its files, LR index by stem or None, real photos?) per folder
    sources = [(dataset_name(lr_folders[i] if lr_folders else f), list_dataset(f),
                index_by_stem([lr_folders[i]], scale) if lr_folders else None, False) for i, f in enumerate(folders)]
    sources += [(dataset_name(f), list_dataset(f), None, True) for f in real_folders]
    has_bicubic = any(up.name == BICUBIC for up in upscalers)
    for dataset, files, lr_index, is_real in sources:
        if not files:
            report.failures.append(f"{dataset}: no images found")
            continue
        bar = tqdm(files, desc=dataset, unit="img", file=sys.stderr, disable=None if progress else True)
        for index, (name, path) in enumerate(bar):
            try:
                if lr_index is not None and path.stem not in lr_index:
                    raise ValueError(f"no LR image {path.stem}.* in {dataset}")
                if is_real:
                    image = load_real_image(dataset, name, path)
                else:
                    image = load_image(dataset, name, path, scale, lr_index[path.stem] if lr_index is not None else None)
            except Exception as exc:  # a bad file must never stop a run
                log.debug("skipping %s: %s", path, exc)  # reported through Report.failures
                report.failures.append(f"{path}: {exc}")
                continue
            keep = figure_images is not None and figure_images(dataset, name, index)
            row = FigureRow(dataset, name, image.hr, image.lr if is_real else None) if keep else None
            methods = list(upscalers) if has_bicubic or not keep else [bicubic_upscaler(scale), *upscalers]
            for result, sr, problems in evaluate_image(image, methods, scale, rgb, perceptual):
                if result.model != BICUBIC or has_bicubic:
                    report.rows.append(result)
                    report.notes += [f"{path} ({result.model}): {p}" for p in problems]
                if row is not None:
                    row.outputs[result.model] = sr
                    if result.psnr_y is not None:
                        row.psnr[result.model] = result.psnr_y
                    if result.lpips is not None:
                        row.lpips[result.model] = result.lpips
                    if is_real and result.niqe is not None:
                        row.niqe[result.model] = result.niqe
                if save_dir is not None:
                    save_image(Path(save_dir) / dataset / result.model / f"{name}.png", sr)
            if row is not None:
                report.figure_rows.append(row)
        bar.close()
    return report


# ----------------------------------------------------------------------------- outputs of other tools


def match_outputs(sr_dir: str | Path, hr_dir: str | Path | None, sr_suffix: str = "") -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    """Pair the images of `sr_dir` with those of `hr_dir` by relative path and stem.

    An SR file `a/b_x4.png` matches HR `a/b.*` when `sr_suffix` is "_x4" (or `a/b_x4.*` with no
    suffix). Returns ([(image name, SR path, HR path or None when `hr_dir` is None)], problems):
    SR images without HR and HR images without SR are problems, named. EvalInputError when a
    folder does not exist.
    """
    outputs = list_dataset(sr_dir)
    if hr_dir is None:
        return [(name, path, None) for name, path in outputs], []
    truth = dict(list_dataset(hr_dir))
    pairs, problems, used = [], [], set()
    for name, path in outputs:
        key = name[: -len(sr_suffix)] if sr_suffix and name.endswith(sr_suffix) else name
        if key in truth:
            pairs.append((key, path, truth[key]))
            used.add(key)
        else:
            problems.append(f"{path}: no ground-truth image {key}.* in {hr_dir}")
    problems += [f"{truth[k]}: no output for it in {sr_dir}" for k in truth if k not in used]
    return pairs, problems


def align_to_truth(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop an SR output and its HR image to the protocol's common size. Pure.

    The protocol modcrops HR to the scale; an output of that size, or of the full HR size
    (both then modcropped), is accepted. Any other size is a ValueError naming both sizes.
    """
    cropped = modcrop(hr, scale)
    if sr.shape == hr.shape:
        return modcrop(sr, scale), cropped
    if sr.shape == cropped.shape:
        return sr, cropped
    raise ValueError(f"output is {sr.shape[1]}x{sr.shape[0]} but the ground truth is {hr.shape[1]}x{hr.shape[0]}"
                     f" (x{scale} modcrop {cropped.shape[1]}x{cropped.shape[0]})")


def evaluate_outputs(
    sr_dir: str | Path, hr_dir: str | Path | None, scale: int, *, sr_suffix: str = "", rgb: bool = False,
    perceptual: Perceptual = Perceptual(), progress: bool = True,
) -> Report:
    """Score images another tool made (`sr_dir`) against ground truth (`hr_dir`) with the protocol.

    With `hr_dir` None only the no-reference metric (NIQE) is computed, for real photos that
    have no ground truth. Images are decoded as RGB (gray replicated, alpha dropped). The model
    is named by `sr_dir`'s folder, the dataset by `hr_dir`'s (or `sr_dir`'s).
    """
    pairs, problems = match_outputs(sr_dir, hr_dir, sr_suffix)
    report = Report(scale, failures=problems)
    model, dataset = dataset_name(sr_dir), dataset_name(hr_dir if hr_dir is not None else sr_dir)
    for name, sr_path, hr_path in tqdm(pairs, desc=model, unit="img", file=sys.stderr, disable=None if progress else True):
        try:
            sr = read_rgb(sr_path)
            if hr_path is None:
                scores, bad = perceptual.scores(sr, None, scale)
                scores |= {"psnr_y": None, "ssim_y": None}
            else:
                sr, hr = (np.ascontiguousarray(a) for a in align_to_truth(sr, read_rgb(hr_path), scale))
                if min(hr.shape[:2]) < min_image_size(scale):
                    raise ValueError(f"{hr.shape[1]}x{hr.shape[0]} is smaller than {min_image_size(scale)} px")
                extra, bad = perceptual.scores(sr, hr, scale)
                scores = score_image(sr, hr, scale, rgb) | extra
        except Exception as exc:  # a bad file must never stop a run
            report.failures.append(f"{sr_path}: {exc}")
            continue
        report.rows.append(ImageResult(dataset, model, name, seconds=0.0, **scores))
        report.notes += [f"{sr_path}: {p}" for p in bad]
    return report
