"""Images: the one decoder and encoder, resizing, luma and the file suffixes, for every layer.

A leaf module (numpy, Pillow, pypng, tifffile): upscaling, evaluation, training data and the
service all decode through `decode_image`/`read_image`, so 16-bit files, ICC profiles, EXIF
orientation and decompression bombs are handled the same way everywhere.

An image travels as a `Picture`: colour pixels (H, W, 3) RGB or (H, W, 1) grey, uint8 or uint16,
an optional alpha plane (H, W) of the same dtype, and the ICC profile to carry over. Pillow does
most of the work; 16-bit colour PNGs (which Pillow truncates to 8 bits) go through pypng and
16-bit TIFFs through tifffile.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .files import atomic_write

# Default pixel budget for one input: 4096 x 4096. Its 4x output (268 MP, 0.8 GB in 8-bit RGB)
# still fits comfortably in the memory of a small machine.
DEFAULT_MAX_PIXELS = 4096 * 4096

# Files read as images (folders, globs, training and benchmark sets) and written as outputs.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
# Video files a folder scan offers to srgan.video (which then probes each: a suffix alone decides nothing).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts",
                            ".mts", ".wmv", ".flv", ".3gp", ".ogv"})
# Video containers srgan.video writes, by suffix (FFmpeg's format names).
VIDEO_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
# Output formats by extension (`srgan upscale --ext`); an input whose format cannot be written comes out as PNG.
OUTPUT_EXTS = ("png", "jpg", "webp", "tif", "bmp")
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".bmp": "BMP"}


# BT.601 luma weights (R, G, B), as JPEG and PIL's "L" conversion use them.
LUMA = (0.299, 0.587, 0.114)


class ImageError(ValueError):
    """An input or output image problem; str() is one line naming the file and the reason."""


@dataclass
class Picture:
    pixels: np.ndarray  # (H, W, 3) RGB or (H, W, 1) grey; uint8 or uint16
    alpha: np.ndarray | None = None  # (H, W), same dtype as pixels
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def is_gray(self) -> bool:
        return self.pixels.shape[2] == 1

    @property
    def bits(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8


def _png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) from a PNG's IHDR, or None if not a PNG."""
    if len(data) >= 26 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
        return width, height, depth, ctype
    return None


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, ...) array."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 1)[::-1],
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def _split(arr: np.ndarray, planes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, planes) -> colour (H, W, 1|3) and alpha (H, W) or None."""
    if planes in (2, 4):
        return np.ascontiguousarray(arr[..., :-1]), np.ascontiguousarray(arr[..., -1])
    return arr, None


def _decode_png16(data: bytes, orientation: int) -> Picture:
    import png

    width, height, rows, info = png.Reader(bytes=data).asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)
    arr = _orient(arr, orientation)
    pixels, alpha = _split(arr, planes)
    return Picture(pixels, alpha)


def _tiff_bits(im: Image.Image) -> tuple[int, ...]:
    bits = getattr(im, "tag_v2", {}).get(258, ())
    return tuple(bits) if isinstance(bits, tuple) else (bits,)


def _decode_tiff16(data: bytes, orientation: int) -> Picture | None:
    import tifffile

    arr = tifffile.imread(io.BytesIO(data))
    if arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        return None
    pixels, alpha = _split(_orient(arr, orientation), arr.shape[2])
    return Picture(pixels, alpha)


def _from_pillow(im: Image.Image) -> Picture:
    """Convert any Pillow mode into a Picture (RGB or grey, with alpha if the image has one)."""
    notes: list[str] = []
    icc = im.info.get("icc_profile")
    mode = im.mode
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    elif mode == "CMYK":
        converted = None
        if icc:
            try:
                from PIL import ImageCms

                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                converted = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            except Exception:  # a broken embedded profile: fall back to Pillow's plain conversion
                converted = None
        im, icc = (converted, None) if converted is not None else (im.convert("RGB"), None)
        notes.append("CMYK converted to RGB")
    elif mode in ("RGBa", "La"):
        im = im.convert(mode.upper())
    elif mode in ("1",):
        im = im.convert("L")
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(im).astype(np.uint16)
        return Picture(arr[..., None], None, icc, notes)
    elif mode in ("I", "F"):
        arr = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        return Picture(arr[..., None], None, icc, notes)
    elif mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    pixels, alpha = _split(arr, arr.shape[2])
    return Picture(np.ascontiguousarray(pixels), alpha, icc, notes)


def _check_pixels(name: str, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels and width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
                         f"{max_pixels:,} (raise it with --max-pixels)")


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode image bytes, refusing oversize images from the header before any large allocation.

    Applies EXIF orientation. Animated images: the first frame is used (noted in `notes`).
    Raises ImageError with a one-line message naming `name`.
    """
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    header = _png_header(data)
    if header:
        _check_pixels(name, header[0], header[1], max_pixels)
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: refused, image too large ({exc})") from None
    except Exception:
        raise ImageError(f"{name}: not an image or unsupported format") from None
    width, height = im.size
    if width < 1 or height < 1:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")
    _check_pixels(name, width, height, max_pixels)
    try:
        notes = []
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"animated ({im.n_frames} frames): only the first frame was upscaled")
            im.seek(0)
        orientation = int(im.getexif().get(0x0112, 1) or 1)
        if header and header[2] == 16:
            pic = _decode_png16(data, orientation)
            pic.icc_profile = im.info.get("icc_profile")
        elif im.format == "TIFF" and 16 in _tiff_bits(im) and (pic16 := _decode_tiff16(data, orientation)):
            pic = pic16
            pic.icc_profile = im.info.get("icc_profile")
        else:
            im = ImageOps.exif_transpose(im)
            im.load()
            pic = _from_pillow(im)
        pic.notes = notes + pic.notes
        return pic
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: refused, image too large ({exc})") from None
    except Exception as exc:  # truncated or corrupt data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{name}: corrupt or truncated image ({reason})") from None


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    """Read and decode an image file (see `decode_image`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path), max_pixels)


def to_8bit(pic: Picture) -> Picture:
    if pic.bits == 8:
        return pic
    down = lambda a: None if a is None else ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # noqa: E731
    return replace(pic, pixels=down(pic.pixels), alpha=down(pic.alpha))


def to_pillow(pic: Picture) -> Image.Image:
    """8-bit Picture -> Pillow image (L, LA, RGB or RGBA)."""
    pic = to_8bit(pic)
    planes = pic.pixels if pic.alpha is None else np.concatenate([pic.pixels, pic.alpha[..., None]], axis=2)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes.shape[2]]
    im = Image.fromarray(planes[..., 0] if mode == "L" else planes, mode)
    if pic.icc_profile:
        im.info["icc_profile"] = pic.icc_profile
    return im


def encode_image(pic: Picture, fmt: str) -> bytes:
    """Encode to PNG | JPEG | WEBP | TIFF | BMP bytes; 16 bits kept in PNG and TIFF."""
    out = io.BytesIO()
    planes = pic.pixels if pic.alpha is None else np.concatenate([pic.pixels, pic.alpha[..., None]], axis=2)
    if pic.bits == 16 and fmt == "PNG":
        import png

        h, w, c = planes.shape
        writer = png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=16)
        writer.write(out, planes.reshape(h, w * c))
        return out.getvalue()
    if pic.bits == 16 and fmt == "TIFF":
        import tifffile

        tifffile.imwrite(out, planes[..., 0] if planes.shape[2] == 1 else planes,
                         photometric="minisblack" if planes.shape[2] <= 2 else "rgb",
                         extrasamples=["unassalpha"] if planes.shape[2] in (2, 4) else None,
                         iccprofile=pic.icc_profile, compression="zlib")
        return out.getvalue()
    im = to_pillow(pic)
    if fmt in ("JPEG", "BMP") and im.mode in ("RGBA", "LA"):
        # No alpha in these formats: flatten onto white rather than leaking hidden colours.
        background = Image.new("RGB" if im.mode == "RGBA" else "L", im.size, "white")
        background.paste(im, mask=im.getchannel("A"))
        im = background
    options: dict = {"icc_profile": pic.icc_profile} if pic.icc_profile and fmt != "BMP" else {}
    if fmt == "JPEG":
        options |= {"quality": 95, "subsampling": 0}
    elif fmt == "WEBP":
        options |= {"quality": 95, "method": 4}
    elif fmt == "PNG":
        options |= {"compress_level": 6}
    im.save(out, format=fmt, **options)
    return out.getvalue()


def write_image(pic: Picture, path: str | os.PathLike) -> Path:
    """Encode by the file's extension and write atomically (temp file + rename)."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unsupported output extension (use {', '.join(sorted(WRITE_FORMATS))})")
    data = encode_image(pic, fmt)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def read_rgb(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """An image file as (H, W, 3) RGB, uint8 or uint16 as stored: grey replicated, alpha dropped,
    EXIF orientation applied (no pixel budget by default: data sets are trusted files)."""
    pixels = read_image(path, max_pixels).pixels
    return np.ascontiguousarray(np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels)


def resize(img: np.ndarray, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) uint8/uint16 array to (height, width) with Pillow.

    Pillow's filters are antialiased: they widen the kernel when downscaling (like MATLAB's
    imresize), which is the degradation the SR benchmarks use. uint16 planes are resized in
    float32 so that no precision is lost.
    """
    height, width = size
    squeeze = img.ndim == 2
    planes = img[..., None] if squeeze else img
    if planes.dtype == np.uint8 and planes.shape[2] == 3:
        out = np.asarray(Image.fromarray(planes, "RGB").resize((width, height), resample))
    else:
        out = np.stack([_resize_plane(planes[..., c], (width, height), resample) for c in range(planes.shape[2])], axis=-1)
    return out[..., 0] if squeeze else out


def _resize_plane(plane: np.ndarray, wh: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    if plane.dtype == np.uint8:
        return np.asarray(Image.fromarray(plane, "L").resize(wh, resample))
    info = np.iinfo(plane.dtype)
    resized = np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize(wh, resample))
    return np.clip(np.round(resized), info.min, info.max).astype(plane.dtype)


def find_images(folders: list[str | Path]) -> list[Path]:
    """All image files under `folders` (by IMAGE_SUFFIXES), recursively, in a stable order."""
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder of images")
        files.extend(sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
    return files
