import numpy as np
import pytest
import torch
from PIL import Image

import srgan
from srgan.data.degradation import bicubic_downscale, bicubic_resize
from srgan.inference.engine import auto_tile_size, upscale_array
from srgan.inference.fastpath import as_sr_model
from srgan.metrics import psnr_y


@pytest.fixture(scope="module")
def trained():
    return srgan.load_model("srresnet_x4", device="cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tiled_output_equals_whole_image_output(trained, photo, precision, request):
    if precision == "bf16":
        request.getfixturevalue("bf16_everywhere")
    lr = photo[:60, :52]
    whole = upscale_array(trained, lr, tile=1000, precision=precision)
    tiled = upscale_array(trained, lr, tile=20, precision=precision)  # 3x3 tiles with 40 px overlap
    assert whole.shape == (240, 208, 3) and whole.dtype == np.uint8
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_small_overlap_is_allowed_but_seams_show(trained, photo):
    lr = photo[:60, :60]
    whole = upscale_array(trained, lr, tile=1000, precision="fp32")
    seamy = upscale_array(trained, lr, tile=20, tile_pad=0, precision="fp32")
    assert np.abs(whole.astype(int) - seamy.astype(int)).max() > 1


def test_bf16_agrees_with_fp32(trained, photo, bf16_everywhere):
    a = upscale_array(trained, photo[:48, :48], precision="fp32")
    b = upscale_array(trained, photo[:48, :48], precision="bf16")
    assert psnr_y(a, b, 0) > 40


def test_16_bit_input_gives_16_bit_output(tiny_weights, photo):
    model = srgan.load_model(tiny_weights, device="cpu")
    out = upscale_array(model, photo[:16, :16].astype(np.uint16) * 257, precision="fp32")
    assert out.dtype == np.uint16 and out.shape == (64, 64, 3)
    ref = upscale_array(model, photo[:16, :16], precision="fp32")
    assert np.abs(out.astype(int) // 257 - ref.astype(int)).max() <= 1


def test_auto_tile_fits_a_quarter_of_free_memory_and_grows_with_it(trained, monkeypatch):
    from srgan.inference import engine

    cpu, pad = torch.device("cpu"), 40
    per_px = as_sr_model(trained).activation_elems * 4  # fp32
    sides = []
    for free in (1 << 30, 2 << 30, 4 << 30):
        monkeypatch.setattr(engine, "available_memory", lambda device, free=free: free)
        tile = auto_tile_size(trained, torch.float32, cpu, pad)
        assert (tile + 2 * pad) ** 2 * per_px <= free // 4  # a padded tile's activations fit
        assert (tile + 2 * pad + 8) ** 2 * per_px > free // 4 * 0.9  # and it is not much smaller
        sides.append(tile)
    assert sides == sorted(sides) and sides[0] < sides[-1]


def test_bundled_models_beat_bicubic_on_a_real_photo():
    from skimage import data

    hr = data.astronaut()[:256, :256]
    lr = bicubic_downscale(hr, 4)
    bicubic = psnr_y(bicubic_resize(lr, hr.shape[:2]), hr, 4)
    for name in ("srresnet_x4", "srgan_x4"):
        sr = np.asarray(srgan.upscale(lr, model=name))
        assert psnr_y(sr, hr, 4) > bicubic + 0.3, name


@pytest.mark.parametrize("make", [
    lambda a: Image.fromarray(a),
    lambda a: a,
    lambda a: a.astype(np.float32) / 255,
    lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 255,
])
def test_upscale_accepts_pil_numpy_and_tensors(tiny_weights, photo, make):
    model = srgan.load_model(tiny_weights, device="cpu")
    out = srgan.upscale(make(photo[:10, :12]), model=model, precision="fp32")
    assert isinstance(out, Image.Image) and out.size == (48, 40) and out.mode == "RGB"


def test_outscale_resizes_network_output(tiny_weights, photo):
    model = srgan.load_model(tiny_weights, device="cpu")
    assert srgan.upscale(photo[:10, :12], model=model, outscale=2.5).size == (30, 25)
    with pytest.raises(ValueError, match="outscale"):
        srgan.upscale(photo[:10, :12], model=model, outscale=-1)
