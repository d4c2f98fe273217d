"""One input file -> one output file: the unit of work of `srgan upscale`.

The single-process loop of the CLI and the Ray workers (inference/ray_batch.py) both call
`upscale_file`, so output names, suffixes, formats, the existing-output rules and the error
messages are the same whichever runs the batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..images import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_EXTS,
    ImageError,
    read_image,
    write_image,
)
from .api import upscale_picture


@dataclass(frozen=True)
class FileJob:
    """How every input of a batch becomes its output (the CLI's naming and upscaling options)."""

    out: Path  # output folder, or the output file when `single_file`
    single_file: bool
    suffix: str  # added to the input's stem, e.g. "_x4"
    ext: str = "auto"  # one of OUTPUT_EXTS, or auto: keep the input's format
    outscale: float | None = None
    tile: int = 0
    tile_pad: int | None = None
    precision: str = "auto"
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    skip_existing: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class FileResult:
    src: Path
    status: Literal["written", "skipped", "failed"]
    output: Path | None = None
    error: str | None = None  # one line naming the file and the reason, when failed
    notes: tuple[str, ...] = ()


def output_path(src: Path, out: Path, single_file: bool, suffix: str, ext: str, has_alpha: bool) -> Path:
    if single_file:
        return out
    if ext == "auto":
        ext = src.suffix.lower().lstrip(".")
        ext = {"jpeg": "jpg", "tiff": "tif"}.get(ext, ext)
        if ext not in OUTPUT_EXTS or (ext in ("jpg", "bmp") and has_alpha):
            ext = "png"
    return out / f"{src.stem}{suffix}.{ext}"


def candidate_outputs(src: Path, job: FileJob) -> list[Path]:
    """The output paths `src` can get before it is decoded (two when alpha would change the format)."""
    paths = [output_path(src, job.out, job.single_file, job.suffix, job.ext, alpha) for alpha in (False, True)]
    return list(dict.fromkeys(paths))


def upscale_file(src: Path, model, job: FileJob, progress: bool = False,
                 prior: Mapping[str, int] | None = None) -> FileResult:
    """Read, upscale and atomically write one image; every expected failure becomes a FileResult.

    prior: for runs whose work may be retried after a worker died (Ray), the inode of each output
    name that existed before the run. An output that exists with another inode was renamed into
    place by an earlier attempt at this same input, so it is reported as written, not redone.
    None (the local loop): whatever exists now existed before.
    """
    try:
        pic = read_image(src, max_pixels=job.max_pixels)
        dst = output_path(src, job.out, job.single_file, job.suffix, job.ext, pic.alpha is not None)
        if dst.resolve() == src.resolve():
            raise ImageError(f"{src}: output path is the input itself; refusing to overwrite an input")
        try:
            inode = os.stat(dst).st_ino
        except FileNotFoundError:
            inode = None
        if inode is not None:
            if prior is not None and prior.get(dst.name) != inode:
                return FileResult(src, "written", dst, notes=tuple(pic.notes))
            if job.skip_existing:
                return FileResult(src, "skipped", dst)
            if not job.overwrite:
                raise ImageError(f"{src}: output {dst} exists (use --overwrite or --skip-existing)")
        result = upscale_picture(pic, model, job.outscale, job.tile, job.tile_pad, job.precision, progress=progress)
        write_image(result, dst)
        return FileResult(src, "written", dst, notes=tuple(pic.notes))
    except (ImageError, OSError, ValueError) as exc:
        return FileResult(src, "failed", error=str(exc) if isinstance(exc, ImageError) else f"{src}: {exc}")
