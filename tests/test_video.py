"""Videos through srgan.video and `srgan upscale`: timing, streams and colour kept; bad input named.

Every clip is made here with PyAV; a nearest-neighbour x4 "model" makes the expected output exact.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

av = pytest.importorskip("av")


from srgan.cli.main import main  # noqa: E402
from srgan.models import Generator, GeneratorConfig, SRModel  # noqa: E402
from srgan.video import VideoError, VideoOptions, colour_of, upscale_video  # noqa: E402
from srgan.video.colour import from_rgb  # noqa: E402

MS = Fraction(1, 1000)
VFR_PTS = [0, 40, 80, 150, 160, 200, 330, 370, 371, 500]  # ms: irregular, as phone clips are


def nearest_x4() -> SRModel:
    """An identity-like x4 model: every output pixel is its input pixel."""
    return SRModel("nearest_x4", "test", 4, 3, 3, 0, 3.0, torch.device("cpu"),
                   lambda: lambda x: F.interpolate(x, scale_factor=4, mode="nearest"))


def bars(h: int, w: int, bits: int = 8) -> np.ndarray:
    """Colour bars (75% and full white, black, grey ramp steps), 8 px wide, as RGB."""
    colours = np.array([[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0], [191, 0, 191], [191, 0, 0],
                        [0, 0, 191], [16, 16, 16], [255, 255, 255], [0, 0, 0], [128, 64, 32], [40, 200, 120]])
    rgb = np.repeat(colours, 8, axis=0)[np.arange(w) % (8 * len(colours))]
    rgb = np.repeat(rgb[None], h, axis=0).astype(np.uint8)
    return rgb if bits == 8 else rgb.astype(np.uint16) * 257


def encode_bars(container, stream, frames: int) -> None:
    """`frames` frames of colour bars at pts 0, 1, ... into `stream`, then the encoder's last packets."""
    for k in range(frames):
        frame = av.VideoFrame.from_ndarray(bars(stream.height, stream.width), format="rgb24")
        frame.pts = k
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_clip(path: Path, *, pts=VFR_PTS, size=(64, 48), pix_fmt="yuv420p", codec="libx264", audio=1,
              subtitles=False, matrix=5, full=False, trc=2, frames=None, noise=True, keyint=None) -> Path:
    """A clip with the given frame times (ms), audio tracks and an optional subtitle track: colour
    bars, and every other frame noise unless `noise` is False."""
    w, h = size
    bits = 10 if "10" in pix_fmt else 8
    rng = np.random.default_rng(0)
    colour = colour_of(pix_fmt, w, h, matrix, 2 if full else 1, 2, 2, bits)  # trc only tags the stream
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=25)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.time_base = v.codec_context.time_base = MS
        v.codec_context.colorspace, v.codec_context.color_range = matrix, 2 if full else 1
        v.codec_context.color_trc = trc
        if codec == "libx264":
            v.options = {"qp": "0", **({"g": str(keyint)} if keyint else {})}  # lossless: decoded = put in
        tracks = []
        for i in range(audio):
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
            a.metadata["language"] = ["eng", "fra"][i % 2]
            tracks.append(a)
        sub = c.add_stream("ass") if subtitles else None
        for k, t in enumerate(pts if frames is None else range(0, 40 * frames, 40)):
            rgb = bars(h, w, bits) if k % 2 == 0 or not noise else (rng.integers(0, 256, (h, w, 3)).astype(np.uint16) *
                                                       (257 if bits > 8 else 1)).astype(bars(1, 1, bits).dtype)
            frame = from_rgb(rgb, colour, pix_fmt)
            frame.pts, frame.time_base = t, MS
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        for a in tracks:
            for i in range(12):
                af = av.AudioFrame.from_ndarray(np.full((1, 1024), 0.01 * i, np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, i * 1024
                c.mux(a.encode(af))
            c.mux(a.encode(None))
        if sub is not None:
            c.mux(_ass_packet(sub))
    return path


def _ass_packet(stream) -> av.Packet:
    packet = av.Packet(b"0,0,Default,,0,0,0,,hello")
    packet.stream, packet.pts, packet.dts, packet.duration = stream, 100, 100, 400
    packet.time_base = stream.time_base
    return packet


def frame_times(path: Path) -> list[Fraction]:
    """Every decoded frame's time in seconds, exactly (containers choose their own time bases)."""
    with av.open(str(path)) as c:
        return [f.pts * f.time_base for f in c.decode(video=0)]


def ms(*values: int) -> list[Fraction]:
    return [v * MS for v in values]


def packets(path: Path, kind: str) -> list[tuple[int, int, bytes]]:
    """(stream index, pts, payload) of every packet of one kind, in file order."""
    with av.open(str(path)) as c:
        return [(p.stream.index, p.pts, bytes(p)) for p in c.demux() if p.stream.type == kind and p.size]


def planes(frame) -> list[np.ndarray]:
    dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
    return [np.frombuffer(p, dtype=dtype).reshape(p.height, -1)[:, : p.width].astype(int) for p in frame.planes]


def test_every_frame_keeps_its_time_and_the_audio_is_untouched(tmp_path):
    src = make_clip(tmp_path / "vfr.mkv", audio=2, subtitles=True)
    dst = tmp_path / "out.mkv"
    summary = upscale_video(src, dst, nearest_x4(), precision="fp32")
    assert summary.frames == len(VFR_PTS) and summary.size == (256, 192)
    assert frame_times(dst) == frame_times(src) == ms(*VFR_PTS)
    assert packets(dst, "audio") == packets(src, "audio") and len(packets(src, "audio")) >= 24
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert [s.type for s in b.streams] == [s.type for s in a.streams] == ["video", "audio", "audio", "subtitle"]
        assert [s.metadata.get("language") for s in b.streams.audio] == ["eng", "fra"]
        assert b.streams.video[0].time_base == a.streams.video[0].time_base
    assert packets(dst, "subtitle") == packets(src, "subtitle")


def test_progress_counts_frames_and_a_loaded_generator_works(tmp_path):
    src = make_clip(tmp_path / "c.mp4", frames=5, audio=0)
    seen = []
    gen = Generator(GeneratorConfig(num_blocks=1, channels=4)).eval()
    upscale_video(src, tmp_path / "o.mp4", gen, precision="fp32", progress=lambda d, t: seen.append(d))
    assert seen == [1, 2, 3, 4, 5] and frame_times(tmp_path / "o.mp4") == ms(0, 40, 80, 120, 160)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p", "yuv420p10le"])
@pytest.mark.parametrize("matrix", [5, 1, 9])  # BT.601, BT.709, BT.2020
@pytest.mark.parametrize("full", [False, True])
def test_colour_round_trip_with_an_identity_like_model(tmp_path, pix_fmt, matrix, full):
    """Bars in every matrix and range, x4 by nearest neighbour, lossless: each output code value is
    its source pixel's, within one."""
    src = make_clip(tmp_path / "bars.mkv", frames=2, audio=0, pix_fmt=pix_fmt, matrix=matrix, full=full,
                    size=(96, 32), noise=False)
    dst = tmp_path / "out.mkv"
    summary = upscale_video(src, dst, nearest_x4(), precision="fp32", options=VideoOptions(codec="ffv1"))
    assert summary.pix_fmt == pix_fmt  # 10-bit in, 10-bit out
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        vb = b.streams.video[0].codec_context
        assert (int(vb.colorspace), int(vb.color_range)) == (matrix, 2 if full else 1)  # tagged as the source
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            for pa, pb in zip(planes(fa), planes(fb)):
                assert np.abs(np.repeat(np.repeat(pa, 4, 0), 4, 1) - pb).max() <= 1


def test_untagged_stream_gets_the_size_convention_with_a_note(tmp_path):
    src = make_clip(tmp_path / "u.mkv", frames=2, audio=0, matrix=2)
    summary = upscale_video(src, tmp_path / "o.mkv", nearest_x4(), precision="fp32")
    assert summary.colour.startswith("BT.601 limited") and "assumed BT.601 (SD)" in summary.notes[0]


def test_bad_inputs_are_one_line_errors_and_leave_nothing(tmp_path):
    model = nearest_x4()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    audio_only = tmp_path / "a.mka"
    with av.open(str(audio_only), "w", format="matroska") as c:
        a = c.add_stream("aac", rate=16000)
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    hdr = make_clip(tmp_path / "hdr.mkv", frames=1, audio=0, trc=16)
    good = make_clip(tmp_path / "good.mkv", frames=30, audio=0)
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])  # decodes without an error, cut short
    cases = [(text, "not a readable video"), (audio_only, "no video stream (audio only)"), (hdr, "HDR video (PQ"),
             (good, "unknown video container"), (good, "--codec nope"), (good, "overwrite the input")]
    for src, needle in cases:
        dst = {"unknown video container": tmp_path / "o.avi", "overwrite the input": good}.get(needle, tmp_path / "o.mkv")
        options = VideoOptions(codec="nope") if needle == "--codec nope" else VideoOptions()
        with pytest.raises(VideoError, match=re.escape(needle)) as info:
            upscale_video(src, dst, model, precision="fp32", options=options)
        message = str(info.value)
        assert "\n" not in message and (str(src) in message or str(dst) in message or "--codec" in message)
    with pytest.raises(VideoError, match="truncated or corrupt: frames end at"):
        upscale_video(truncated, tmp_path / "o.mkv", model, precision="fp32")
    assert not (tmp_path / "o.mkv").exists() and not list(tmp_path.glob(".o.*"))


def test_cli_upscales_a_folder_of_photos_and_videos(tmp_path, photo, capsys):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4", frames=3)
    Image.fromarray(photo[:16, :16]).save(folder / "still.png")
    (folder / "clip2.mov").write_bytes((folder / "clip.mp4").read_bytes())  # a suffix that lies: probed
    out = tmp_path / "out"
    weights = tmp_path / "tiny.safetensors"
    from srgan.models import save_generator

    save_generator(Generator(GeneratorConfig(num_blocks=1, channels=4)).eval(), weights)
    assert main(["upscale", str(folder), "-o", str(out), "-m", str(weights), "--fp32", "-q", "--crf", "30"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip2_x4.mov", "clip_x4.mp4", "still_x4.png"]
    assert frame_times(out / "clip_x4.mp4") == ms(0, 40, 80)
    assert main(["upscale", str(folder / "clip.mp4"), "-o", str(out), "-m", str(weights), "-q"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["upscale", str(folder / "clip.mp4"), "-o", str(out), "-m", str(weights), "-q", "--skip-existing"]) == 0
    assert main(["upscale", str(folder / "clip.mp4"), "-o", str(tmp_path / "one.mkv"), "-m", str(weights), "-q"]) == 0
    # Matroska stores no time before zero: the source's AAC priming (audio from -64 ms) shifts every
    # stream of the file by the same amount, so the frames keep their spacing and their sync.
    times = frame_times(tmp_path / "one.mkv")
    assert [t - times[0] for t in times] == ms(0, 40, 80)


def test_frames_start_and_end_take_a_part_with_its_audio(tmp_path):
    src = make_clip(tmp_path / "long.mkv", frames=30)
    summary = upscale_video(src, tmp_path / "head.mkv", nearest_x4(), precision="fp32", frames=4)
    assert summary.frames == 4 and frame_times(tmp_path / "head.mkv") == ms(0, 40, 80, 120)
    part = tmp_path / "part.mkv"
    summary = upscale_video(src, part, nearest_x4(), precision="fp32", start=0.4, end=0.8)
    assert summary.frames == 10 and frame_times(part) == ms(*range(0, 400, 40))  # 0.40 .. 0.76 s, from 0
    with av.open(str(src)) as a, av.open(str(part)) as b:
        source_audio = {(p.pts * p.time_base, bytes(p)) for p in a.demux(audio=0) if p.size}
        kept = [(p.pts * p.time_base + Fraction(2, 5), bytes(p)) for p in b.demux(audio=0) if p.size]
    assert kept and all(item in source_audio for item in kept)  # the same packets, shifted by 0.4 s
    assert all(Fraction(2, 5) <= t < Fraction(4, 5) for t, _ in kept)


def test_audio_the_container_cannot_hold_is_reencoded_with_a_note(tmp_path):
    src = tmp_path / "mp3.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("mp3", rate=44100)
        a.layout = "stereo"
        encode_bars(c, v, 5)
        for i in range(8):
            af = av.AudioFrame.from_ndarray(np.zeros((2, 1152), np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 44100, i * 1152
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    summary = upscale_video(src, tmp_path / "o.webm", nearest_x4(), precision="fp32")
    assert any("re-encoded as libopus: webm cannot hold it" in n for n in summary.notes)
    with av.open(str(tmp_path / "o.webm")) as o:
        assert [s.codec_context.name for s in o.streams] == ["vp9", "opus"]
        assert sum(f.samples for f in o.decode(audio=0)) >= 8 * 1152 * 48000 // 44100 - 960


def test_stable_holds_still_regions_lets_motion_through_and_is_deterministic(tmp_path):
    """A still background with codec-like noise and a moving square: with --stable the background
    stops changing from frame to frame, the square still moves, and two runs give the same bytes."""
    src = tmp_path / "noisy.mkv"
    rng = np.random.default_rng(0)
    background = np.repeat(np.repeat(rng.integers(40, 200, (12, 16, 3)), 4, 0), 4, 1).astype(np.uint8)
    with av.open(str(src), "w") as c:
        v = c.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv444p"
        for k in range(6):
            img = np.clip(background + rng.integers(-2, 3, background.shape), 0, 255).astype(np.uint8)
            img[20:28, 4 + 8 * k : 12 + 8 * k] = 0
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = k
            c.mux(v.encode(frame))
        c.mux(v.encode(None))

    def outputs(name: str, stable: float | None) -> list[np.ndarray]:
        upscale_video(src, tmp_path / name, nearest_x4(), precision="fp32", stable=stable,
                      options=VideoOptions(codec="ffv1"))
        with av.open(str(tmp_path / name)) as c:
            return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]

    plain, held, again = outputs("a.mkv", None), outputs("b.mkv", 4), outputs("c.mkv", 4)
    still = (slice(0, 60), slice(None))  # output rows above the square's path, well clear of it
    change = [np.abs(f[1:][k] - f[:-1][k])[still].mean() for f in (plain, held) for k in range(1, 5)]
    assert max(change[4:]) < 0.1 * min(change[:4])  # the noise no longer shows from frame to frame
    moving = (slice(84, 108), slice(None))
    assert all(np.abs(held[k] - held[k - 1])[moving].max() > 100 for k in range(1, 6))  # the square moves
    assert all(np.array_equal(a, b) for a, b in zip(held, again))


def test_an_interrupted_run_resumes_at_the_first_unfinished_segment_with_the_same_frames(tmp_path, monkeypatch):
    from srgan.video import pipeline

    monkeypatch.setattr(pipeline, "SEGMENT_SECONDS", 0.2)  # keyframes every 5 frames of 40 ms: 6 segments
    src = make_clip(tmp_path / "long.mkv", frames=30, keyint=5, audio=1)
    whole = tmp_path / "whole.mkv"
    upscale_video(src, whole, nearest_x4(), precision="fp32")
    calls, interrupted = [], []
    encode = pipeline._encode

    def dies_at_12(*a, **k):
        calls.append(1)
        if len(calls) == 12 and not interrupted:
            interrupted.append(1)
            raise KeyboardInterrupt  # Ctrl-C in the third segment
        return encode(*a, **k)

    monkeypatch.setattr(pipeline, "_encode", dies_at_12)
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, out, nearest_x4(), precision="fp32")
    parts = tmp_path / ".out.mkv.parts"
    assert not out.exists() and sorted(p.name for p in parts.glob("segment_*")) == ["segment_00000.nut",
                                                                                  "segment_00001.nut"]
    calls.clear()
    summary = upscale_video(src, out, nearest_x4(), precision="fp32", resume=True)
    assert len(calls) == 20 and summary.frames == 30  # the two finished segments were not redone
    assert not parts.exists()
    assert frame_times(out) == frame_times(whole) == ms(*range(0, 1200, 40))
    with av.open(str(out)) as a, av.open(str(whole)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=True):
            assert np.array_equal(fa.to_ndarray(), fb.to_ndarray())
    assert packets(out, "audio") == packets(whole, "audio") == packets(src, "audio")


def test_interlaced_frames_are_deinterlaced_one_for_one_with_a_note(tmp_path):
    src = tmp_path / "tv.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.options = {"flags": "+ilme+ildct", "x264-params": "interlaced=1:tff=1"}  # interlaced coding, as DV/TV
        for k in range(6):
            rgb = np.repeat(rng.integers(0, 255, (48, 1, 3)), 64, axis=1).astype(np.uint8)  # lines differ: combing
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = k
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    with av.open(str(src)) as c:
        assert all(f.interlaced_frame for f in c.decode(video=0))
    on = upscale_video(src, tmp_path / "on.mkv", nearest_x4(), precision="fp32")
    off = upscale_video(src, tmp_path / "off.mkv", nearest_x4(), precision="fp32", deinterlace=False)
    assert "deinterlaced (bwdif" in on.notes[-1] and "--no-deinterlace" in off.notes[-1]
    assert frame_times(tmp_path / "on.mkv") == frame_times(src) == frame_times(tmp_path / "off.mkv")

    def line_contrast(path: Path) -> float:  # how much neighbouring lines differ: the combing
        with av.open(str(path)) as c:
            y = [f.to_ndarray(format="gray").astype(float) for f in c.decode(video=0)]
        return float(np.mean([np.abs(np.diff(a[::4], axis=0)).mean() for a in y]))

    assert line_contrast(tmp_path / "on.mkv") < 0.8 * line_contrast(tmp_path / "off.mkv")


def test_a_full_disk_is_a_one_line_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from srgan.video import pipeline

    src = make_clip(tmp_path / "c.mkv", frames=3, audio=0)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "_encode", full)
    with pytest.raises(VideoError, match="cannot write .*out.mkv: No space left on device"):
        upscale_video(src, tmp_path / "out.mkv", nearest_x4(), precision="fp32")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mkv"]  # no output, no temp file, no segments


def test_display_rotation_is_kept_so_a_phone_clip_shows_upright(tmp_path):
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.set_display_rotation(90)  # portrait, stored as landscape frames
        encode_bars(c, v, 3)
    upscale_video(src, tmp_path / "out.mp4", nearest_x4(), precision="fp32")
    with av.open(str(tmp_path / "out.mp4")) as c:
        frame = next(c.decode(video=0))
        assert (frame.rotation, frame.width, frame.height) == (90, 256, 192)


def test_chapters_and_attachments_survive_in_matroska(tmp_path):
    src = tmp_path / "film.mkv"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        c.add_attachment("font.ttf", "font/ttf", b"not really a font")
        c.set_chapters([{"id": 1, "start": 0, "end": 2, "time_base": Fraction(1, 25), "metadata": {"title": "One"}},
                        {"id": 2, "start": 2, "end": 4, "time_base": Fraction(1, 25), "metadata": {"title": "Two"}}])
        encode_bars(c, v, 4)
    upscale_video(src, tmp_path / "out.mkv", nearest_x4(), precision="fp32")
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mkv")) as b:
        assert [ch["metadata"]["title"] for ch in b.chapters()] == ["One", "Two"]
        assert [(ch["start"] * ch["time_base"]) for ch in b.chapters()] == [ch["start"] * ch["time_base"]
                                                                           for ch in a.chapters()]
        attached = [s for s in b.streams if s.type == "attachment"]
        assert [(s.name, s.mimetype, bytes(s.data)) for s in attached] == [("font.ttf", "font/ttf",
                                                                              b"not really a font")]
