"""Bad input, faults and fuzzing: nothing crashes, nothing is lost, nothing foreign runs."""

import errno
import io
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from srgan.cli.main import main
from srgan.images import ImageError, decode_image
from srgan.training.checkpoint import LATEST, load_latest, save_checkpoint


def png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


SEED_PNG = png_bytes((np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes_only_ever_raise_image_error(data):
    try:
        pic = decode_image(data, "fuzz", max_pixels=1 << 20)
    except ImageError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
    else:
        assert pic.pixels.ndim == 3 and pic.pixels.shape[0] * pic.pixels.shape[1] <= 1 << 20


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(0, len(SEED_PNG) - 1), value=st.integers(0, 255), cut=st.integers(1, len(SEED_PNG)))
def test_fuzz_mutated_and_truncated_png(pos, value, cut):
    data = bytearray(SEED_PNG)
    data[pos] = value
    try:
        decode_image(bytes(data[:cut]), "m.png", max_pixels=1 << 20)
    except ImageError as exc:
        assert "\n" not in str(exc)


def test_regression_png_header_claiming_zero_width():
    bad = bytearray(SEED_PNG)
    bad[16:20] = b"\0\0\0\0"
    with pytest.raises(ImageError):
        decode_image(bytes(bad), "zero.png")


def test_unreadable_file_is_named(tmp_path, tiny_weights, capsys, monkeypatch):
    src = tmp_path / "secret.png"
    src.write_bytes(SEED_PNG)
    real = type(src).read_bytes

    def denied(self):
        if self.name == "secret.png":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(self)

    monkeypatch.setattr(type(src), "read_bytes", denied)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_weights), "-q"]) == 1
    assert "secret.png: permission denied" in capsys.readouterr().err
    assert not list((tmp_path / "out").iterdir())


def test_max_pixels_refusal_has_a_hint(tmp_path, tiny_weights, capsys):
    src = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o"), "-m", str(tiny_weights), "--max-pixels", "5000"]) == 1
    assert "exceeds the limit of 5,000 (raise it with --max-pixels)" in capsys.readouterr().err


def test_disk_full_while_checkpointing_keeps_the_previous_one(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"step": 1, "generator": {"w": torch.ones(2)}})

    def full(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, {"step": 2, "generator": {"w": torch.zeros(2)}})
    monkeypatch.undo()
    assert load_latest(tmp_path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [LATEST]  # no temp file left


def test_failed_output_write_leaves_no_file(tmp_path, tiny_weights, monkeypatch, capsys):
    import srgan.images as image_io

    src = tmp_path / "a.png"
    src.write_bytes(SEED_PNG)
    monkeypatch.setattr(image_io, "encode_image", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    assert main(["upscale", str(src), "-o", str(tmp_path / "o"), "-m", str(tiny_weights), "-q"]) == 1
    assert "No space left" in capsys.readouterr().err
    assert os.listdir(tmp_path / "o") == []
