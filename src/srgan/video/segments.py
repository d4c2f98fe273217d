"""Keyframe-aligned segments of a video and the folder that keeps the finished ones, for resuming.

A segment starts at a keyframe, so it decodes on its own, and runs to the next segment's keyframe
(presentation time, half-open). Each is encoded to its own file; a manifest beside them records
the job's settings and every finished segment, and is rewritten atomically after each one. A
rerun with the same settings continues at the first unfinished segment; any other settings start
over. The folder goes once the output is complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write

SEGMENT_SECONDS = 30.0  # work lost to an interrupt at most; each costs one keyframe-aligned seek


@dataclass(frozen=True)
class Segment:
    """Frames with start <= pts < end (stream time base; None: from the first / to the last)."""

    index: int
    start: int | None
    end: int | None


def plan_segments(source, vin, seconds: float) -> list[Segment]:
    """Cuts at the first keyframe at least `seconds` after the previous cut (packets read, nothing decoded)."""
    cuts: list[int] = []
    for packet in source.demux(vin):
        if packet.is_keyframe and packet.pts is not None and (
                not cuts or (packet.pts - cuts[-1]) * vin.time_base >= seconds - 1e-9):
            cuts.append(packet.pts)
    source.seek(0)
    starts: list[int | None] = [None, *cuts[1:]]
    return [Segment(i, a, b) for i, (a, b) in enumerate(zip(starts, [*cuts[1:], None]))]


class Parts:
    """The `.NAME.parts` folder beside an output: finished segment files and their manifest."""

    def __init__(self, dst: Path, settings: dict, resume: bool) -> None:
        self.folder = dst.parent / f".{dst.name}.parts"
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the manifest
        self.done: dict[str, dict] = {}
        manifest = self.folder / "manifest.json"
        if resume and manifest.is_file():
            saved = json.loads(manifest.read_text())
            if saved.get("settings") == self.settings:
                self.done = {k: v for k, v in saved["segments"].items() if (self.folder / v["file"]).is_file()}
        if not self.done:
            self.remove()
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, seg: Segment) -> Path:
        return self.folder / f"segment_{seg.index:05d}.nut"

    def has(self, seg: Segment) -> bool:
        return str(seg.index) in self.done

    def frames(self, seg: Segment) -> int:
        return self.done[str(seg.index)]["frames"]

    def last_time(self, seg: Segment) -> float:
        return self.done[str(seg.index)]["last_time"]

    def record(self, seg: Segment, frames: int, last_time: float) -> None:
        """A finished segment; one that took no frame (outside the span) is not kept."""
        if frames == 0:
            self.path(seg).unlink(missing_ok=True)
            return
        self.done[str(seg.index)] = {"file": self.path(seg).name, "frames": frames, "last_time": last_time}
        text = json.dumps({"settings": self.settings, "segments": self.done}, indent=1)
        atomic_write(self.folder / "manifest.json", lambda tmp: Path(tmp).write_text(text))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
