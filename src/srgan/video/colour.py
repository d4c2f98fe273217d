"""A video stream's colour, and its frames to and from RGB arrays with that colour exactly.

Every YUV -> RGB conversion uses the stream's own matrix (BT.601, BT.709, BT.2020) and range
(limited or full), and RGB -> YUV the same again, so that the output carries the input's colour
and its tags. Untagged streams get the convention players use: BT.709 from 720 lines up (HD),
BT.601 below (SD), limited range unless the pixel format says full ("yuvj"). Frames with more
than 8 bits go through 16-bit RGB, which the engine upscales as it does 16-bit photos.

The conversion is done here, in numpy, rather than by swscale: its chroma resampling follows
each frame's chroma siting, so the same flags shift colour edges by a pixel on one decoder's
frames and not on another's. Here a chroma sample stands for its block of pixels (2x2 in 4:2:0,
2x1 in 4:2:2) both ways: replicated going to RGB, averaged over the block coming back. An
identity-like model therefore reproduces every code value within one, and the averaging is the
alias-free way down from the network's full-resolution colour.

HDR (PQ or HLG transfer) is refused by name: a network trained on SDR photos would treat its
code values as SDR ones, and no tone mapping is done here.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import torch
import torch.nn.functional as F

# (Kr, Kb) of each matrix, by swscale/FFmpeg colorspace number.
_KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 9: (0.2627, 0.0593)}
_NAMES = {1: "BT.709", 5: "BT.601", 9: "BT.2020"}
_HDR = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
_FULL, _LIMITED = 2, 1  # AVColorRange: JPEG, MPEG


class ColourError(ValueError):
    """A stream whose colour cannot be reproduced; the message names the property."""


@dataclass(frozen=True)
class Colour:
    """How a stream's frames map to RGB and back; the tags the output stream gets."""

    colorspace: int  # the matrix applied: 5 = BT.601, 1 = BT.709, 9 = BT.2020 (AVColorSpace numbers)
    full_range: bool
    bits: int  # bits per component of the source (8, 10, 12)
    primaries: int  # tags copied to the output as they were (2 = unspecified)
    trc: int
    matrix_tag: int  # the stream's own matrix tag (2 = unspecified)
    note: str | None = None  # set when a tag was assumed

    @property
    def output_matrix(self) -> int:
        """The matrix tag to write: the stream's own, or the one assumed for an untagged stream."""
        return self.matrix_tag if self.matrix_tag not in (0, 2) else self.colorspace

    @property
    def range(self) -> int:
        return _FULL if self.full_range else _LIMITED

    def describe(self) -> str:
        return f"{_NAMES[self.colorspace]} {'full' if self.full_range else 'limited'} range, {self.bits}-bit"


def colour_of(pix_fmt: str, width: int, height: int, matrix: int, color_range: int, primaries: int, trc: int,
              bits: int) -> Colour:
    """The colour of a stream from its tags (PyAV's ints, 2 or 0 = unspecified). Pure."""
    if trc in _HDR:
        raise ColourError(f"HDR video ({_HDR[trc]} transfer) is not supported: it would be upscaled as SDR and "
                          "its colours mangled")
    notes = []
    if matrix in (1, 5, 6):  # BT.709; BT.470BG and SMPTE 170M are both the BT.601 matrix
        colorspace = 1 if matrix == 1 else 5
    elif matrix in (9, 10):  # BT.2020 non-constant / constant luminance
        colorspace = 9
    elif matrix in (0, 2):  # RGB-coded or unspecified
        colorspace = 1 if height >= 720 else 5
        notes.append(f"untagged matrix: assumed {'BT.709 (HD)' if height >= 720 else 'BT.601 (SD)'}")
    else:
        raise ColourError(f"colour matrix {matrix} (AVColorSpace) is not supported; BT.601, BT.709 and BT.2020 are")
    full = color_range == _FULL or pix_fmt.startswith("yuvj")
    if color_range not in (_FULL, _LIMITED) and not pix_fmt.startswith("yuvj"):
        notes.append("untagged range: assumed limited (16-235)")
    return Colour(colorspace, full, bits, primaries, trc, matrix, "; ".join(notes) or None)


def stream_colour(stream: av.video.stream.VideoStream) -> Colour:
    """colour_of a decoder's stream."""
    cc = stream.codec_context
    fmt = cc.format
    bits = max(c.bits for c in fmt.components) if fmt is not None else 8
    return colour_of(fmt.name if fmt is not None else "", cc.width, cc.height, int(cc.colorspace),
                     int(cc.color_range), int(cc.color_primaries), int(cc.color_trc), bits)


def _scales(colour: Colour, bits: int) -> tuple[float, float, float]:
    """(luma offset, luma span, chroma span) of `bits`-bit code values in the colour's range."""
    if colour.full_range:
        top = (1 << bits) - 1
        return 0.0, float(top), float(top)
    s = float(1 << (bits - 8))
    return 16 * s, 219 * s, 224 * s


def _read(plane, dtype) -> np.ndarray:
    stride = plane.line_size // np.dtype(dtype).itemsize
    return np.frombuffer(plane, dtype=dtype).reshape(plane.height, stride)[:, : plane.width]


def to_rgb(frame: av.VideoFrame, colour: Colour) -> np.ndarray:
    """A decoded frame as (H, W, 3) RGB, uint8 (8-bit sources) or uint16, full range."""
    fmt = frame.format
    if fmt.is_rgb or len(frame.planes) != 3 or len(fmt.components) != 3:  # RGB, packed or semi-planar:
        # swscale's exact repacking first
        if fmt.is_rgb:
            return frame.to_ndarray(format="rgb24" if colour.bits <= 8 else "rgb48le")
        sub = {1: "444", 2: "422" if fmt.chroma_height(frame.height) == frame.height else "420"}
        layout = sub.get(frame.width // max(1, fmt.chroma_width(frame.width)), "444")
        frame = frame.reformat(format=f"yuv{layout}p{'16le' if colour.bits > 8 else ''}")  # same chroma grid
        fmt = frame.format
    bits = fmt.components[0].bits
    dtype = np.uint16 if bits > 8 else np.uint8
    y, cb, cr = (_read(p, dtype).astype(np.float32) for p in frame.planes)
    sy, sx = frame.height // cb.shape[0], frame.width // cb.shape[1]
    cb, cr = (np.repeat(np.repeat(c, sy, 0), sx, 1)[: frame.height, : frame.width] for c in (cb, cr))
    y0, yspan, cspan = _scales(colour, bits)
    mid = float(1 << (bits - 1))
    yn, cbn, crn = (y - y0) / yspan, (cb - mid) / cspan, (cr - mid) / cspan
    kr, kb = _KR_KB[colour.colorspace]
    r = yn + 2 * (1 - kr) * crn
    b = yn + 2 * (1 - kb) * cbn
    g = (yn - kr * r - kb * b) / (1 - kr - kb)
    top = 255 if colour.bits <= 8 else 65535
    rgb = np.stack([r, g, b], axis=-1) * top
    return np.clip(np.rint(rgb), 0, top).astype(np.uint8 if colour.bits <= 8 else np.uint16)


def from_rgb(rgb: np.ndarray, colour: Colour, pix_fmt: str) -> av.VideoFrame:
    """(H, W, 3) uint8/uint16 RGB -> a planar YUV frame in `pix_fmt` with the colour's matrix and
    range, tagged; chroma averaged over each sample's block."""
    h, w = rgb.shape[:2]
    frame = av.VideoFrame(w, h, pix_fmt)
    bits = frame.format.components[0].bits
    kr, kb = _KR_KB[colour.colorspace]
    kg = 1 - kr - kb
    y0, yspan, cspan = _scales(colour, bits)
    mid = float(1 << (bits - 1))
    # RGB code values straight to Y, Cb, Cr code values: one 3x3 product (rows: Y, Cb, Cr).
    to_codes = np.array([[kr * yspan, kg * yspan, kb * yspan],
                         [-kr / (2 - 2 * kb) * cspan, -kg / (2 - 2 * kb) * cspan, 0.5 * cspan],
                         [0.5 * cspan, -kg / (2 - 2 * kr) * cspan, -kb / (2 - 2 * kr) * cspan]], np.float32)
    to_codes /= 255 if rgb.dtype == np.uint8 else 65535
    # In torch: the product, the block means and the rounding run on all cores, a few times faster
    # than numpy on a 4x output frame.
    x = torch.from_numpy(rgb.astype(np.int32) if rgb.dtype == np.uint16 else rgb).to(torch.float32)
    ycc = torch.movedim(x @ torch.from_numpy(to_codes).T, -1, 0)  # (3, H, W)
    sub_h, sub_w = frame.planes[1].height, frame.planes[1].width
    chroma = ycc[1:]
    if (sub_h, sub_w) != (h, w):
        chroma = F.avg_pool2d(chroma[None], (h // sub_h, w // sub_w))[0]
    top = (1 << bits) - 1
    dtype = np.uint16 if bits > 8 else np.uint8
    for plane, values, offset in ((frame.planes[0], ycc[0], y0), (frame.planes[1], chroma[0], mid),
                                  (frame.planes[2], chroma[1], mid)):
        stride = plane.line_size // np.dtype(dtype).itemsize
        codes = np.zeros((plane.height, stride), dtype)
        codes[:, : plane.width] = (values + offset).round_().clamp_(0, top).to(torch.int32).numpy()
        plane.update(codes.tobytes())
    frame.colorspace, frame.color_range = colour.output_matrix, colour.range
    return frame
