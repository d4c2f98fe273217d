"""Upscale a video: decode, the engine frame by frame, encode; every other stream copied as it is.

PyAV's own model of a file is followed throughout. The video stream is cut into keyframe-aligned
segments (`segments.py`); each segment's frames are decoded, converted to RGB with the stream's
colour (`colour.py`), upscaled by the same engine as photos, converted back and encoded into a
segment file with the *source frame's* pts in the source stream's time base, so variable frame
rates, edit lists and non-zero start times survive and no frame is dropped or repeated. The
output is then a remux: the segments' packets, and the packets of the source's other streams
(audio, subtitles, data) as they are, merged by time. Memory holds a few frames whatever the
length; finished segments survive an interrupt, for `resume`.

Every file is written to a temporary name beside its destination and renamed into place when
complete (`srgan.files.atomic_write`): an error or Ctrl-C leaves no partial file.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from ..files import atomic_write, first_line
from ..images import VIDEO_CONTAINERS, resize
from ..inference.api import load_model
from ..inference.engine import upscale_array
from ..inference.fastpath import as_sr_model
from ..models import Generator
from ..models.descriptor import SRModel
from ..registry import DEFAULT_MODEL
from .colour import Colour, ColourError, from_rgb, stream_colour, to_rgb
from .deinterlace import Deinterlacer
from .segments import SEGMENT_SECONDS, Parts, Segment, plan_segments
from .stable import Stabilizer

# The video codec a container gets by default.
DEFAULT_CODECS = {"webm": "libvpx-vp9"}  # libx264 everywhere else
# Audio a container cannot hold as it is (MP3 or AC-3 in WebM, Vorbis in MP4) is re-encoded to this.
TRANSCODE_AUDIO = {"webm": "libopus", "matroska": "libopus"}  # AAC elsewhere
CODECS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "ffv1")
# x264/x265's CRF where the output looks like the upscaled frames at normal viewing (a visually
# lossless setting for x264; x265's scale is about 5 higher for the same quality).
DEFAULT_CRF = {"libx264": 18, "libx265": 22, "libsvtav1": 28, "libvpx-vp9": 28}


class VideoError(ValueError):
    """A video that cannot be upscaled; str() is one line naming the file and the reason."""


@dataclass(frozen=True)
class VideoOptions:
    """Encoder settings; None takes the default for the container and codec (see the constants above)."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # default: the source's chroma layout and bit depth, when the codec has it


@dataclass
class VideoSummary:
    """What `upscale_video` did."""

    src: Path
    dst: Path
    frames: int
    seconds: float
    size: tuple[int, int]  # output (width, height)
    codec: str
    pix_fmt: str
    colour: str
    notes: list[str] = field(default_factory=list)


Progress = Callable[[int, int | None], None]  # (frames done, total or None when unknown)


def is_video(path: str | Path) -> bool:
    """Whether `path` is a file with a video stream that is not a still image (probed, not by suffix)."""
    try:
        with av.open(str(path)) as container:
            # Pillow-readable stills open as one-frame "videos" through FFmpeg's image demuxers.
            return bool(container.streams.video) and not container.format.name.endswith(("_pipe", "image2"))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return False


def _even(n: int) -> int:
    return n + n % 2


def _output_pix_fmt(codec: av.codec.Codec, colour: Colour, source: str, wanted: str | None) -> str:
    """The source's chroma layout at its bit depth where the codec has it, else 4:2:0 of that depth."""
    have = {f.name for f in codec.video_formats or ()}
    if wanted is not None:
        if have and wanted not in have:
            raise VideoError(f"--pix-fmt {wanted}: {codec.name} does not encode it (it takes {', '.join(sorted(have))})")
        return wanted
    deep = "10le" if colour.bits > 8 else ""
    for name in (source.replace("yuvj", "yuv"), f"yuv420p{deep}", "yuv420p"):  # the source's own first
        if not have or name in have:
            return name
    return sorted(have)[0]


def upscale_video(
    src: str | os.PathLike, dst: str | os.PathLike, model: str | os.PathLike | SRModel | Generator = DEFAULT_MODEL, *,
    outscale: float | None = None, tile: int = 0, precision: str = "auto", device: str | None = None,
    detail: float | None = None, options: VideoOptions = VideoOptions(), progress: Progress | None = None,
    max_pixels: int | None = None, frames: int | None = None, start: float | None = None,
    end: float | None = None, stable: float | None = None, resume: bool = False, deinterlace: bool = True,
) -> VideoSummary:
    """Upscale the video stream of `src` into `dst` (container from its suffix); other streams copied.

    `model`, `outscale`, `tile`, `precision`, `device` and `detail` mean what they mean in
    `srgan.upscale`. `progress(frames_done, total)` is called after every frame (total None
    when the container does not say). A quick look: `start` / `end` (seconds) and `frames` (at
    most N frames) take a part, with the other streams' packets of the same span, every stream
    shifted so that the part starts at `start` = 0. `stable`: hold the output where the scene is
    still, within this many 8-bit grey levels (`stable.py`: against the GAN's shimmer on still
    backgrounds; 2 and 3 both held x264 CRF 28 noise, docs/video.md). The work is done in
    keyframe-aligned segments of about SEGMENT_SECONDS, each its own file in a `.NAME.parts`
    folder beside `dst`, then remuxed into `dst` without re-encoding: after an interrupt (Ctrl-C,
    SIGTERM) the finished segments stay, and `resume=True` continues at the first unfinished one, giving the same frames as an
    uninterrupted run. Interlaced frames are deinterlaced first (`deinterlace.py`) unless
    `deinterlace` is False, with a note either way. Returns a VideoSummary. Raises VideoError (one line,
    naming `src`) for anything that keeps the file from being done: not a video, no video
    stream, a corrupt frame (with its time), HDR, a stream the output container cannot hold, an
    unknown codec, frames over `max_pixels`, `dst` the same file as `src`.
    """
    src, dst = Path(src), Path(dst)
    if not isinstance(model, SRModel):
        model = as_sr_model(model) if isinstance(model, Generator) else load_model(model, device, detail)
    if src.resolve() == dst.resolve():
        raise VideoError(f"{src}: the output would overwrite the input")
    fmt = VIDEO_CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        raise VideoError(f"{dst}: unknown video container {dst.suffix!r}; use one of {', '.join(VIDEO_CONTAINERS)}")
    codec_name = options.codec or DEFAULT_CODECS.get(fmt, "libx264")
    if codec_name not in av.codecs_available:
        raise VideoError(f"--codec {codec_name}: not an encoder this FFmpeg has ({', '.join(CODECS)} are)")
    try:
        source = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{src}: not a readable video ({first_line(exc)})") from None
    with source:
        if not source.streams.video:
            raise VideoError(f"{src}: no video stream" + (" (audio only)" if source.streams.audio else ""))
        summary = _run(source, src, dst, fmt, codec_name, model, outscale, tile, precision, options, progress,
                       max_pixels, Span(start, end, frames), stable, resume, deinterlace)
    return summary


def _run(source, src: Path, dst: Path, fmt: str, codec_name: str, model: SRModel, outscale: float | None, tile: int,
         precision: str, options: VideoOptions, progress: Progress | None, max_pixels: int | None,
         span: Span, stable: float | None, resume: bool, deinterlace: bool) -> VideoSummary:
    began = time.perf_counter()
    vin = source.streams.video[0]
    vin.thread_type = "AUTO"
    try:
        colour = stream_colour(vin)
    except ColourError as exc:
        raise VideoError(f"{src}: {exc}") from None
    width, height = vin.codec_context.width, vin.codec_context.height
    if max_pixels is not None and width * height > max_pixels:
        raise VideoError(f"{src}: frames are {width}x{height}, over the {max_pixels:,}-pixel limit (--max-pixels)")
    scale = float(outscale or model.scale)
    size = (_even(round(width * scale)), _even(round(height * scale)))
    notes = [f"{src.name}: {colour.note}"] if colour.note else []
    pix_fmt = _output_pix_fmt(av.codec.Codec(codec_name, "w"), colour, vin.codec_context.format.name, options.pix_fmt)
    settings = {"source": [str(src.resolve()), src.stat().st_size, src.stat().st_mtime_ns],
                "model": [model.name, model.source], "size": size, "codec": codec_name, "crf": options.crf,
                "preset": options.preset, "pix_fmt": pix_fmt, "tile": tile, "precision": precision, "stable": stable,
                "span": [span.start, span.end, span.frames], "segment_seconds": SEGMENT_SECONDS,
                "deinterlace": deinterlace}
    parts = Parts(dst, settings, resume)
    rotation = _rotation(source, vin, src)
    segments = plan_segments(source, vin, SEGMENT_SECONDS)
    total = _expected_frames(vin, span)
    offset = span.start or 0.0  # seconds: a part starts at 0 in the output
    done = sum(parts.frames(seg) for seg in segments if parts.has(seg))
    interlaced = False

    def on_frame(frame_time: float) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    try:
        for seg in segments:
            if span.frames is not None and done >= span.frames:
                break
            if parts.has(seg) or not span.overlaps(seg, vin.time_base):
                continue
            budget = None if span.frames is None else span.frames - done
            encoder = _SegmentEncoder(codec_name, size, pix_fmt, colour, options, model, tile, precision,
                                      Stabilizer(stable) if stable else None, offset, deinterlace)
            frames, last = encoder.write(parts.path(seg), source, vin, seg, span, budget, on_frame, src)
            parts.record(seg, frames, last)
            interlaced = interlaced or encoder.interlaced
        if done == 0:
            raise VideoError(f"{src}: the video stream has no frames" + ("" if span.whole else " in that span"))
        if interlaced:
            notes.append(f"{src.name}: interlaced frames " + ("deinterlaced (bwdif, one frame per frame)" if deinterlace
                                                              else "upscaled as they are (--no-deinterlace)"))
        last_time = max(parts.last_time(seg) for seg in segments if parts.has(seg))
        if span.whole:
            _check_complete(vin, done, last_time, src)
        end = None if span.whole else last_time + 1 / float(vin.average_rate or 25)
        finished = [parts.path(seg) for seg in segments if parts.has(seg)]
        atomic_write(dst, lambda tmp: _remux(tmp, fmt, src, vin.index, finished, Span(span.start, end), offset, colour,
                                             rotation, notes))
    except av.error.FFmpegError as exc:
        parts.remove()
        raise VideoError(f"{src}: {first_line(exc)}") from None
    except OSError as exc:  # disk full, a folder that cannot be written: the output's problem, named
        parts.remove()
        raise VideoError(f"{src}: cannot write {dst}: {exc.strerror or first_line(exc)}") from None
    except VideoError:
        parts.remove()
        raise
    parts.remove()
    return VideoSummary(src, dst, done, time.perf_counter() - began, size, codec_name, pix_fmt, colour.describe(),
                        notes)


def _rotation(source, vin, src: Path) -> int:
    """The display rotation (degrees counter-clockwise) of the first frame: phones store portrait
    video as landscape frames plus this."""
    for frame in _frames(source, vin, src):
        source.seek(0)
        return int(frame.rotation or 0)
    return 0


def _expected_frames(vin, span: Span) -> int | None:
    """Frames the job will take, for the progress callback (None when the container does not say)."""
    total = vin.frames or None
    if total is None and vin.duration and vin.average_rate:
        total = round(float(vin.duration * vin.time_base * vin.average_rate))
    if (span.start is not None or span.end is not None) and total and vin.average_rate:
        length = (span.end or float("inf")) - (span.start or 0.0)
        total = min(total, round(length * float(vin.average_rate)))
    if span.frames is not None:
        total = min(total or span.frames, span.frames)
    return total


@dataclass
class _SegmentEncoder:
    """Encodes one segment's frames to its own file: the engine, colour both ways, the stabilizer."""

    codec_name: str
    size: tuple[int, int]  # (width, height)
    pix_fmt: str
    colour: Colour
    options: VideoOptions
    model: SRModel
    tile: int
    precision: str
    stabilizer: Stabilizer | None
    offset: float
    deinterlace: bool
    interlaced: bool = False  # set once an interlaced frame was seen

    def write(self, path: Path, source, vin, seg: Segment, span: Span, budget: int | None, on_frame,
              src: Path) -> tuple[int, float]:
        """(frames written, time of the last one in the source) for the frames of `seg` in `span`."""
        result = [0, 0.0]

        def encode(tmp: str) -> None:
            # NUT keeps the source's time base exactly (Matroska would round every time to 1 ms).
            with av.open(tmp, "w", format="nut") as sink:
                vout = _video_stream(sink, vin, self.codec_name, self.size, self.pix_fmt, self.colour, self.options)
                if self.codec_name in ("libx264", "libx265"):
                    vout.options["bf"] = "0"  # no reordering: segments join with rising time stamps
                deinterlacer, waiting = None, deque()  # (pts, time) of the frames inside the deinterlacer
                writer = _Writer(sink, vout, self.colour, self.pix_fmt)

                def emit(frame, pts: int, t: float) -> None:
                    t0 = time.perf_counter()
                    sr = _encode(frame, self.colour, self.model, self.size[::-1], self.tile, self.precision,
                                 self.stabilizer)
                    writer.put(sr, pts, time.perf_counter() - t0)
                    result[0], result[1] = result[0] + 1, t
                    on_frame(t)

                try:
                    source.seek(seg.start if seg.start is not None else 0, stream=vin, backward=True)
                    taken = 0
                    for frame in _frames(source, vin, src):
                        if seg.end is not None and frame.pts >= seg.end:
                            break
                        if (seg.start is not None and frame.pts < seg.start) or not span.takes(frame.time):
                            continue
                        pts, taken = frame.pts - round(self.offset / frame.time_base), taken + 1
                        if frame.interlaced_frame:
                            self.interlaced = True
                            if deinterlacer is None and self.deinterlace:
                                deinterlacer = Deinterlacer(vin)
                        if deinterlacer is None:
                            emit(frame, pts, frame.time)
                        else:
                            waiting.append((pts, frame.time))
                            for progressive in deinterlacer.push(frame):
                                emit(progressive, *waiting.popleft())
                        if taken == budget or span.past_end(frame.time):
                            break
                    if deinterlacer is not None:
                        for progressive in deinterlacer.flush():
                            emit(progressive, *waiting.popleft())
                finally:
                    writer.close()  # before the file closes, also on Ctrl-C
                sink.mux(vout.encode(None))

        atomic_write(path, encode)
        return result[0], result[1]


def _frames(source, vin, src: Path):
    """The video stream's frames from the demuxer's position on, in presentation order."""
    for packet in source.demux(vin):
        yield from _decode(vin, packet, src)


def _remux(tmp: str, fmt: str, src: Path, video_index: int, segment_files: list[Path], span: Span, offset: float,
           colour: Colour, rotation: int, notes: list[str]) -> None:
    """The output file: the segments' video packets as they are, the source's other streams copied
    (or re-encoded where the container cannot hold them) over the same span, merged by time. The
    source is read again from its start: a seek to 0 skips packets before zero (AAC priming)."""
    with av.open(tmp, "w", format=fmt) as sink, contextlib.ExitStack() as stack:
        source = stack.enter_context(av.open(str(src)))
        vin = source.streams[video_index]
        inputs = [stack.enter_context(av.open(str(f))) for f in segment_files]
        sink.metadata.update(source.metadata)
        copies, held, vout = {}, _held_codecs(sink), None
        for stream in source.streams:  # in the source's order
            if stream is vin:
                vout = sink.add_stream_from_template(inputs[0].streams.video[0])
                _tag(vout.codec_context, colour)  # the segments' container (NUT) keeps no colour tags
                if rotation:  # the source's display matrix: the output shows upright as the input does
                    vout.set_display_rotation(rotation)
                vout.metadata.update(vin.metadata)
                vout.disposition = vin.disposition
            else:
                out = _copy_stream(sink, stream, src, notes, held)
                if out is not None:
                    copies[stream] = out
        sink.set_chapters(source.chapters())

        def video():
            for part in inputs:
                for packet in part.demux(video=0):
                    if packet.size:
                        packet.stream = vout
                        yield packet

        def others():
            if not copies:
                return
            for packet in source.demux(list(copies)):
                if not packet.size or _shift(packet, offset, span):
                    yield packet

        for packet in heapq.merge(video(), others(), key=_packet_time):
            out = copies.get(packet.stream)  # None for the video's, already on their output stream
            if isinstance(out, _Transcoder):
                out.mux(sink, packet)
                continue
            if out is not None:
                packet.stream = out
            sink.mux(packet)
        for out in copies.values():  # a part ends before the streams do: drain what is re-encoded
            if isinstance(out, _Transcoder):
                out.flush(sink)


def _packet_time(packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(-1) if ts is None else ts * packet.time_base


def _video_stream(sink, vin, codec_name: str, size: tuple[int, int], pix_fmt: str, colour: Colour,
                  options: VideoOptions):
    """The encoder's stream: the source's time base (so its pts carry over), rate, aspect and colour tags."""
    vout = sink.add_stream(codec_name, rate=vin.average_rate or vin.guessed_rate or Fraction(25))
    vout.width, vout.height = size
    vout.pix_fmt = pix_fmt
    vout.time_base = vout.codec_context.time_base = vin.time_base
    cc = vout.codec_context
    _tag(cc, colour)
    if vin.codec_context.sample_aspect_ratio:
        cc.sample_aspect_ratio = vin.codec_context.sample_aspect_ratio
    crf = options.crf if options.crf is not None else DEFAULT_CRF.get(codec_name)
    vout.options = {k: str(v) for k, v in (("crf", crf), ("preset", options.preset)) if v is not None}
    if codec_name == "libvpx-vp9":
        vout.options["b"] = "0"  # constant quality: VP9 takes the crf only with a zero bitrate
    vout.metadata.update(vin.metadata)
    vout.disposition = vin.disposition
    return vout


@dataclass(frozen=True)
class Span:
    """The part of a video to upscale: from `start` to `end` seconds, at most `frames` frames."""

    start: float | None = None
    end: float | None = None
    frames: int | None = None

    @property
    def whole(self) -> bool:
        return self.start is None and self.end is None and self.frames is None

    def takes(self, t: float) -> bool:
        return (self.start is None or t >= self.start - 1e-9) and (self.end is None or t < self.end)

    def overlaps(self, seg: Segment, time_base: Fraction) -> bool:
        """Whether a segment can hold frames of the span."""
        return ((self.start is None or seg.end is None or seg.end * time_base > self.start)
                and (self.end is None or seg.start is None or seg.start * time_base < self.end))

    def past_end(self, t: float) -> bool:
        """After a frame at `t`: nothing more to take (the frame budget is counted by the caller)."""
        return self.end is not None and t >= self.end


def _shift(packet, offset: float, span: Span) -> bool:
    """Move a copied packet by -offset seconds; False for one outside the span (dropped)."""
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None:
        return False
    if span.whole:
        return True
    if not span.takes(float(ts * packet.time_base)):
        return False
    shift = round(offset / packet.time_base)
    if packet.pts is not None:
        packet.pts -= shift
    if packet.dts is not None:
        packet.dts -= shift
    return True


def _held_codecs(sink) -> set[int]:
    """The codec ids the output container can hold."""
    ids = set()
    for name in sink.supported_codecs:
        for mode in ("r", "w"):
            try:
                ids.add(av.codec.Codec(name, mode).id)
                break
            except (ValueError, av.error.FFmpegError):
                continue
    return ids


@dataclass
class _Transcoder:
    """An audio stream the output container cannot hold as it is: decoded, resampled, re-encoded."""

    out: av.audio.stream.AudioStream
    resampler: av.AudioResampler
    drained: bool = False

    def mux(self, sink, packet) -> None:
        if not packet.size:  # the stream's empty last packet
            self.flush(sink)
            return
        for frame in packet.decode():
            for resampled in self.resampler.resample(frame):
                sink.mux(self.out.encode(resampled))

    def flush(self, sink) -> None:
        if not self.drained:
            for resampled in self.resampler.resample(None):
                sink.mux(self.out.encode(resampled))
            sink.mux(self.out.encode(None))
            self.drained = True


def _tag(cc, colour: Colour) -> None:
    """Colour tags of an output stream: the source's own, or the matrix and range assumed for it."""
    cc.colorspace = colour.output_matrix
    cc.color_range, cc.color_primaries, cc.color_trc = colour.range, colour.primaries, colour.trc


def _copy_stream(sink, stream, src: Path, notes: list[str], held: set[int]):
    """The output for one of the other streams: a stream taking its packets as they are; for audio
    the container cannot hold, a _Transcoder to TRANSCODE_AUDIO's codec, with a note; None for an
    attachment (written into the header, or left out with a note)."""
    if stream.type == "video":  # a second video stream: another angle, a cover picture
        raise VideoError(f"{src}: stream {stream.index} is a second video stream; only one is upscaled")
    if stream.type == "attachment":
        data, name, mime = stream.data, stream.name, stream.mimetype or "application/octet-stream"
        if sink.format.name == "matroska" and data and name:
            sink.add_attachment(name, mime, bytes(data))
        else:
            notes.append(f"{src.name}: attachment {name or stream.index} left out ({sink.format.name} holds none)")
        return None
    fmt = sink.format.name
    if stream.type == "audio" and stream.codec_context.codec.id not in held:
        codec = TRANSCODE_AUDIO.get(fmt, "aac")
        out = sink.add_stream(codec, rate=48000 if codec == "libopus" else stream.rate)
        out.layout = stream.layout.name if stream.layout.nb_channels <= 2 else "5.1"
        out.metadata.update(stream.metadata)
        out.disposition = stream.disposition
        encoder_format = av.codec.Codec(codec, "w").audio_formats[0].name
        notes.append(f"{src.name}: audio stream {stream.index} ({stream.codec_context.name}) re-encoded as {codec}: "
                     f"{fmt} cannot hold it as it is")
        return _Transcoder(out, av.AudioResampler(format=encoder_format, layout=out.layout, rate=out.rate))
    try:
        out = sink.add_stream_from_template(stream)
    except (ValueError, av.error.FFmpegError) as exc:
        raise VideoError(f"{src}: the {fmt} container cannot hold its {stream.type} stream "
                         f"{stream.index} ({stream.codec_context.name}): {first_line(exc)}; try -o NAME.mkv") from None
    if stream.codec_context.codec.id not in held:
        raise VideoError(f"{src}: the {fmt} container cannot hold its {stream.type} stream {stream.index} "
                         f"({stream.codec_context.name}); try -o NAME.mkv")
    out.metadata.update(stream.metadata)
    out.disposition = stream.disposition
    return out


def _check_complete(vin, frames: int, last_time: float, src: Path) -> None:
    """A file cut short decodes without error up to its cut: compare with what its header declares
    (the frame count, or Matroska's per-track DURATION tag) and refuse to call a part the whole."""
    if vin.frames and frames < vin.frames:
        raise VideoError(f"{src}: truncated or corrupt: {frames} of the {vin.frames} frames it declares")
    tag = vin.metadata.get("DURATION") or vin.metadata.get("DURATION-eng")
    if tag and vin.average_rate:
        h, m, sec = tag.split(":")
        declared = int(h) * 3600 + int(m) * 60 + float(sec)
        if last_time + 2 / float(vin.average_rate) < declared - 0.5:
            raise VideoError(f"{src}: truncated or corrupt: frames end at {last_time:.3f} s of the {declared:.3f} s "
                             "it declares")


def _decode(vin, packet, src: Path):
    """The frames of one packet; a corrupt one names its time."""
    try:
        return vin.decode(packet)
    except av.error.FFmpegError as exc:
        at = "" if packet.pts is None else f" at {float(packet.pts * vin.time_base):.3f} s"
        raise VideoError(f"{src}: corrupt video{at} ({first_line(exc)})") from None


def _encode(frame, colour: Colour, model: SRModel, size: tuple[int, int], tile: int, precision: str,
            stabilizer: Stabilizer | None):
    """One decoded frame through the engine: its RGB output at `size` (height, width)."""
    if frame.pts is None:
        raise VideoError("a decoded frame has no time stamp")
    lr = to_rgb(frame, colour)
    sr = upscale_array(model, lr, tile=tile, precision=precision)
    if sr.shape[:2] != size:
        sr = resize(sr, size, Image.Resampling.LANCZOS)
    return sr if stabilizer is None else stabilizer(lr, sr)


class _Writer:
    """Converts upscaled frames to YUV, encodes and muxes them: inline, or on a thread of its own
    so that this work overlaps the network's on the next frame (two frames in flight at most).
    The first frame decides: the thread pays where writing costs more than a quarter of the
    network's time (a compact model at 4x: 1.66 -> 2.22 frames/s on 2 cores), and costs where the
    network is heavy and takes every core (srresnet_x4: 0.80 -> 0.59; docs/video.md). An error on
    the thread is raised in the caller at its next call."""

    THREAD_ABOVE = 0.25  # writing time / network time from which the thread is used

    def __init__(self, sink, vout, colour: Colour, pix_fmt: str) -> None:
        self.sink, self.vout, self.colour, self.pix_fmt = sink, vout, colour, pix_fmt
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.decided = False

    def _write(self, sr, pts: int) -> None:
        out = from_rgb(sr, self.colour, self.pix_fmt)
        out.pts, out.time_base = pts, self.vout.codec_context.time_base  # the source's: pts is in it
        self.sink.mux(self.vout.encode(out))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the caller raises it
            try:
                self._write(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.error = exc

    def put(self, sr, pts: int, network_seconds: float) -> None:
        if self.thread is None:
            t0 = time.perf_counter()
            self._write(sr, pts)
            if not self.decided:
                self.decided = True
                if time.perf_counter() - t0 > self.THREAD_ABOVE * network_seconds:
                    self.thread = threading.Thread(target=self._run, name="srgan-video-encode", daemon=True)
                    self.thread.start()
            return
        self._raise()
        self.queue.put((sr, pts))

    def close(self) -> None:
        """Wait for every frame given; then the encoder can be flushed."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
