"""Interlaced frames made progressive before upscaling, one output frame per input frame.

A network trained on photos reads the two fields of an interlaced frame, half a frame period
apart, as one picture, and sharpens the combing between them. FFmpeg's bwdif (through PyAV's
filter graph, `mode=send_frame`: one frame out per frame in, `deint=interlaced`: frames flagged
progressive pass untouched) rebuilds each frame from its first field with motion-adaptive
interpolation. Frames leave in order a frame late; the caller keeps its own time stamps.
"""

from __future__ import annotations

from collections.abc import Iterator

import av


class Deinterlacer:
    """push(frame) -> the frames ready; flush() -> the rest, at the end of a run of frames."""

    def __init__(self, template: av.video.stream.VideoStream) -> None:
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(template=template)
        bwdif = self.graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced")
        sink = self.graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        self.graph.configure()

    def push(self, frame: av.VideoFrame | None) -> Iterator[av.VideoFrame]:
        self.graph.push(frame)
        while True:
            try:
                yield self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    def flush(self) -> Iterator[av.VideoFrame]:
        return self.push(None)
