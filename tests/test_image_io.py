import io

import numpy as np
import png
import pytest
from PIL import Image, ImageCms

import srgan
from srgan.inference.api import upscale_picture
from srgan.images import ImageError, decode_image, encode_image, read_image, write_image


@pytest.fixture(scope="module")
def model(tiny_weights):
    return srgan.load_model(tiny_weights, device="cpu")


def pil_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def roundtrip(model, data: bytes, fmt: str = "PNG"):
    pic = decode_image(data, "test")
    out = upscale_picture(pic, model, precision="fp32")
    return pic, out, decode_image(encode_image(out, fmt), "out")


def test_rgba_alpha_is_upscaled_separately_and_reattached(model, photo):
    rgba = np.dstack([photo[:16, :16], np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (16, 1))])
    pic, out, back = roundtrip(model, pil_bytes(Image.fromarray(rgba, "RGBA")))
    assert out.alpha.shape == (64, 64) and back.alpha is not None
    assert abs(int(out.alpha[:, 0].mean()) - 0) < 10 and out.alpha[:, -1].mean() > 240


def test_grayscale_stays_grayscale(model, photo):
    gray = Image.fromarray(photo[:16, :16]).convert("L")
    pic, out, back = roundtrip(model, pil_bytes(gray))
    assert pic.is_gray and out.pixels.shape == (64, 64, 1) and back.is_gray


def test_la_and_palette_with_transparency(model, photo):
    la = Image.fromarray(photo[:8, :8]).convert("LA")
    _, out, _ = roundtrip(model, pil_bytes(la))
    assert out.is_gray and out.alpha is not None
    p = Image.fromarray(photo[:8, :8]).convert("P")
    p.info["transparency"] = 0
    _, out, _ = roundtrip(model, pil_bytes(p, transparency=0))
    assert out.pixels.shape == (32, 32, 3) and out.alpha is not None


def test_cmyk_jpeg_becomes_rgb(model, photo):
    cmyk = Image.fromarray(photo[:16, :16]).convert("CMYK")
    pic, out, back = roundtrip(model, pil_bytes(cmyk, "JPEG"), "JPEG")
    assert pic.pixels.shape == (16, 16, 3) and back.pixels.shape == (64, 64, 3)


def test_16_bit_grayscale_png_gives_16_bit_output(model, photo):
    g16 = (photo[:16, :16, 1].astype(np.uint16) * 257)
    pic, out, back = roundtrip(model, pil_bytes(Image.fromarray(g16)))
    assert pic.bits == 16 and pic.is_gray and back.bits == 16 and back.pixels.shape == (64, 64, 1)


def test_16_bit_rgb_png_gives_16_bit_output(model, photo):
    rgb16 = photo[:16, :16].astype(np.uint16) * 257 + 3
    buf = io.BytesIO()
    png.Writer(16, 16, greyscale=False, bitdepth=16).write(buf, rgb16.reshape(16, -1))
    pic, out, back = roundtrip(model, buf.getvalue())
    assert pic.bits == 16 and np.array_equal(pic.pixels, rgb16)
    assert back.bits == 16 and back.pixels.shape == (64, 64, 3)
    assert len(np.unique(back.pixels)) > 256  # real 16-bit values, not 8-bit scaled


def test_16_bit_rgb_tiff(model, photo, tmp_path):
    import tifffile

    rgb16 = photo[:16, :16].astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "x.tif", rgb16, photometric="rgb")
    pic = read_image(tmp_path / "x.tif")
    assert pic.bits == 16 and np.array_equal(pic.pixels, rgb16)
    out = upscale_picture(pic, model, precision="fp32")
    write_image(out, tmp_path / "y.tif")
    assert read_image(tmp_path / "y.tif").bits == 16


def test_exif_orientation_is_applied(photo):
    im = Image.fromarray(photo[:10, :20])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    pic = decode_image(pil_bytes(im, "JPEG", exif=exif.tobytes()), "rot.jpg")
    assert pic.pixels.shape[:2] == (20, 10)


def test_icc_profile_is_kept(model, photo):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = pil_bytes(Image.fromarray(photo[:8, :8]), "PNG", icc_profile=icc)
    _, out, back = roundtrip(model, data)
    assert back.icc_profile == icc


def test_tiny_and_odd_sizes(model):
    for h, w in [(1, 1), (1, 7), (9, 1), (3, 5)]:
        pic = decode_image(pil_bytes(Image.new("RGB", (w, h), (200, 30, 60))), "t")
        assert upscale_picture(pic, model, precision="fp32").pixels.shape == (4 * h, 4 * w, 3)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"hello, I am text\n" * 20, "not an image"),
    (bytes(range(256)) * 4, "not an image"),
])
def test_bad_bytes_get_one_line_errors(data, reason):
    with pytest.raises(ImageError, match=reason) as info:
        decode_image(data, "bad.png")
    assert str(info.value).startswith("bad.png: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_reported(photo, fmt):
    data = pil_bytes(Image.fromarray(photo), fmt)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], "cut")


def test_decompression_bomb_refused_from_header():
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    assert len(bomb) < 500
    with pytest.raises(ImageError, match="60000x60000 = 3,600,000,000 pixels exceeds"):
        decode_image(bomb, "bomb.png")


def test_animated_gif_uses_first_frame_with_a_note(photo):
    frames = [Image.fromarray(photo[:8, :8]), Image.fromarray(255 - photo[:8, :8])]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    pic = decode_image(buf.getvalue(), "anim.gif")
    assert pic.pixels.shape == (8, 8, 3) and "first frame" in pic.notes[0]
