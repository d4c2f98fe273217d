"""The evaluation protocol: Y conversion, shave, modcrop, PSNR, SSIM (against scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from hypothesis import given, settings
from hypothesis import strategies as st

from srgan.data.degradation import bicubic_downscale, modcrop
from srgan.metrics import psnr, psnr_rgb, psnr_y, rgb_to_y, shave, ssim, ssim_y, to_unit_float
from srgan.evaluation.benchmark import (
    ImageResult, bicubic_upscale, min_image_size, pick_crop, score_image, summarize,
)

skimage = pytest.importorskip("skimage")
from skimage import data as skdata  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402


def sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM as Wang et al. 2004 through scikit-image, the independent reference."""
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=255))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """(128, 124, 3) uint8 crop of scikit-image's astronaut (a size that modcrop must trim)."""
    return skdata.astronaut()[40:168, 180:304]


# ----------------------------------------------------------------------------- Y, shave, modcrop


@pytest.mark.parametrize(("rgb", "y"), [
    ((0, 0, 0), 16.0), ((255, 255, 255), 235.0), ((255, 0, 0), 16 + 65.481),
    ((0, 255, 0), 16 + 128.553), ((0, 0, 255), 16 + 24.966),
])
def test_rgb_to_y_bt601_values(rgb, y):
    img = np.array(rgb, dtype=np.uint8).reshape(1, 1, 3)
    assert rgb_to_y(img)[0, 0] == pytest.approx(y, abs=1e-9)


def test_rgb_to_y_same_for_uint8_float_and_uint16(astronaut):
    y8 = rgb_to_y(astronaut)
    assert y8.shape == astronaut.shape[:2] and y8.dtype == np.float64
    np.testing.assert_allclose(rgb_to_y(astronaut / 255.0), y8, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(astronaut.astype(np.uint16) * 257), y8, atol=1e-9)


def test_rgb_to_y_single_channel_is_scaled_luma():
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(gray), [[0.0, 128.0, 255.0]])
    np.testing.assert_allclose(rgb_to_y(gray[..., None]), [[0.0, 128.0, 255.0]])


def test_to_unit_float_ranges():
    assert to_unit_float(np.array([255], np.uint8))[0] == 1.0
    assert to_unit_float(np.array([65535], np.uint16))[0] == 1.0


def test_shave_removes_border_from_every_edge():
    img = np.arange(10 * 12).reshape(10, 12)
    out = shave(img, 3)
    assert out.shape == (4, 6)
    assert out[0, 0] == img[3, 3] and out[-1, -1] == img[-4, -4]
    assert shave(img, 0) is img


def test_modcrop_is_top_left_anchored():
    img = np.arange(13 * 18 * 3).reshape(13, 18, 3)
    out = modcrop(img, 4)
    assert out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out, img[:12, :16])
    assert modcrop(img[:12, :16], 4).shape == (12, 16, 3)


# ----------------------------------------------------------------------------- PSNR


def test_psnr_known_value_and_identity():
    a = np.zeros((8, 8))
    assert psnr(a, a + 1.0) == pytest.approx(20 * math.log10(255.0))
    assert psnr(a, a) == math.inf
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, np.zeros((8, 9)))


def test_psnr_y_matches_scikit_image_on_shaved_y(astronaut):
    hr = modcrop(astronaut, 4)
    sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
    expected = peak_signal_noise_ratio(shave(rgb_to_y(hr), 4), shave(rgb_to_y(sr), 4), data_range=255)
    assert psnr_y(sr, hr, 4) == pytest.approx(expected, abs=1e-9)
    assert 15 < psnr_y(sr, hr, 4) < 40


def test_psnr_rgb_matches_scikit_image(astronaut):
    hr = modcrop(astronaut, 4)
    sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
    expected = peak_signal_noise_ratio(shave(hr, 4), shave(sr, 4), data_range=255)
    assert psnr_rgb(sr, hr, 4) == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------------- SSIM


def test_ssim_matches_scikit_image_on_a_photo(astronaut):
    hr = modcrop(astronaut, 4)
    sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
    a, b = shave(rgb_to_y(sr), 4), shave(rgb_to_y(hr), 4)
    assert ssim(a, b) == pytest.approx(sk_ssim(a, b), abs=1e-10)
    assert ssim_y(sr, hr, 4) == pytest.approx(sk_ssim(a, b), abs=1e-10)
    assert 0.3 < ssim_y(sr, hr, 4) < 0.99


@settings(max_examples=25, deadline=None)
@given(h=st.integers(11, 40), w=st.integers(11, 40), noise=st.floats(0.5, 80), seed=st.integers(0, 2**16))
def test_ssim_matches_scikit_image_on_random_images(h, w, noise, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 255, (h, w))
    b = np.clip(a + rng.normal(0, noise, (h, w)), 0, 255)
    assert ssim(a, b) == pytest.approx(sk_ssim(a, b), abs=1e-10)


def test_ssim_properties():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (24, 30))
    b = rng.uniform(0, 255, (24, 30))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    assert ssim(a, b) < 0.2
    assert ssim(a / 255, b / 255, data_range=1.0) == pytest.approx(ssim(a, b))
    rgb_a, rgb_b = np.stack([a, b, a], -1), np.stack([b, b, a], -1)
    assert ssim(rgb_a, rgb_b) == pytest.approx((ssim(a, b) + 1 + 1) / 3)


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((20, 20)), np.zeros((20, 21)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((10, 20)), np.zeros((10, 20)))


# ----------------------------------------------------------------------------- evaluation core


def test_score_image_and_bicubic_shapes(astronaut):
    hr = modcrop(astronaut, 4)
    lr = bicubic_downscale(hr, 4)
    sr = bicubic_upscale(lr, 4)
    assert lr.shape == (32, 31, 3) and sr.shape == hr.shape == (128, 124, 3)
    scores = score_image(sr, hr, 4, rgb=True)
    assert set(scores) == {"psnr_y", "ssim_y", "texture", "grid", "edge", "flat", "psnr_rgb"}
    same = score_image(hr, hr, 4)
    assert same == {"psnr_y": math.inf, "ssim_y": pytest.approx(1.0), "texture": 1.0, "grid": same["grid"],
                    "edge": 0.0, "flat": 0.0}
    with pytest.raises(ValueError, match="does not match"):
        score_image(sr[:-4], hr, 4)
    assert min_image_size(4) == 19


def test_summarize_means_per_dataset_and_model():
    rows = [
        ImageResult("A", "m", "1", 30.0, 0.8, 1.0), ImageResult("A", "m", "2", 20.0, 0.6, 2.0),
        ImageResult("A", "n", "1", 10.0, 0.5, 0.5), ImageResult("B", "m", "1", 25.0, 0.7, 1.0, psnr_rgb=24.0),
    ]
    out = summarize(rows, 4)
    assert [(r.dataset, r.model, r.images) for r in out] == [("A", "m", 2), ("A", "n", 1), ("B", "m", 1)]
    assert out[0].psnr_y == pytest.approx(25.0) and out[0].ssim_y == pytest.approx(0.7) and out[0].seconds == 3.0
    assert out[0].psnr_rgb is None and out[2].psnr_rgb == 24.0
    assert set(out[0].to_dict()) == {"dataset", "model", "scale", "psnr_y", "ssim_y", "images", "seconds"}


def test_pick_crop_finds_the_worst_window_inside_the_border():
    hr = np.full((64, 80, 3), 128, np.uint8)
    ref = hr.copy()
    ref[40:50, 20:30] = 0  # bicubic is wrong only here
    top, left, size = pick_crop(hr, ref, 16, border=4)
    assert size == 16 and top <= 40 and top + 16 >= 50 and left <= 20 and left + 16 >= 30
    corner = hr.copy()
    corner[:6, :6] = 0  # error only in the corner, mostly inside the shaved margin
    assert pick_crop(hr, corner, 16, border=4) == (4, 4, 16)
    assert pick_crop(hr, corner, 16) == (0, 0, 16)
    assert pick_crop(hr, corner, 500, border=4) == (0, 0, 64)  # clipped to the image, no room for a border


def test_texture_ratio_is_one_for_hr_and_lower_for_blur():
    from skimage import data

    from srgan.data.degradation import bicubic_downscale, bicubic_resize
    from srgan.metrics import texture_ratio

    hr = data.astronaut()[:128, :128]
    assert texture_ratio(hr, hr, 4) == 1.0
    blurred = bicubic_resize(bicubic_downscale(hr, 4), (128, 128))
    assert 0.2 < texture_ratio(blurred, hr, 4) < 0.8


def test_grid_level_sees_a_fixed_subpixel_pattern_that_photos_lack():
    from skimage import data

    from srgan.metrics import grid_level

    photo = data.astronaut()[:256, :256]
    assert grid_level(photo, 4) < 0.5
    # A GAN-style grid: the same +-2 grey-level offsets at every 4x4 block, invisible in PSNR terms.
    tile = np.random.default_rng(0).choice([-2.0, 2.0], size=(4, 4))
    gridded = np.clip(photo + np.tile(tile, (64, 64))[..., None], 0, 255).astype(np.uint8)
    assert 1.2 < grid_level(gridded, 4) < 2.2
    # The same offsets shifted by one pixel per block row and column move with the image, not with
    # the upsampling grid: every sub-pixel phase sees every offset, so there is no fixed grid.
    drifting = np.block([[np.roll(tile, (r, c), axis=(0, 1)) for c in range(64)] for r in range(64)])
    assert grid_level(np.clip(photo + drifting[..., None], 0, 255).astype(np.uint8), 4) < 0.5


def _slanted_edge(size: int = 128) -> np.ndarray:
    """A grey image with one straight, antialiased edge at 17 degrees: a roof line, a window frame."""
    yy, xx = np.mgrid[0 : 2 * size, 0 : 2 * size]
    sharp = Image.fromarray(np.where(yy > 0.3 * xx + 80, 200, 60).astype(np.uint8))
    return np.repeat(np.asarray(sharp.resize((size, size), Image.BICUBIC))[..., None], 3, axis=2)


def test_edge_error_finds_staircased_straight_edges():
    from srgan.metrics import edge_error

    hr = _slanted_edge()
    lr = Image.fromarray(hr).resize((32, 32), Image.BICUBIC)
    smooth = np.asarray(lr.resize((128, 128), Image.BICUBIC))
    stairs = np.asarray(lr.resize((128, 128), Image.NEAREST))  # 4 px steps along the edge
    assert edge_error(hr, hr, 4) == 0.0
    assert edge_error(stairs, hr, 4) > 1.3 * edge_error(smooth, hr, 4) > 0
    assert edge_error(np.full_like(hr, 90), np.full_like(hr, 90), 4) is None  # no edge, no score


def test_flat_texture_finds_detail_painted_on_plain_areas():
    from srgan.metrics import flat_texture

    hr = _slanted_edge()
    painted = np.clip(hr + np.random.default_rng(0).normal(0, 3, hr.shape), 0, 255).astype(np.uint8)
    assert flat_texture(hr, hr, 4) == 0.0
    assert flat_texture(painted, hr, 4) > 1.0  # RGB noise of 3 levels is 1.7 in Y, most of it fine detail
    assert flat_texture(np.full_like(hr, 130), hr, 4) < 0  # smoother than HR's antialiased edge surround
    busy = np.random.default_rng(1).integers(0, 256, hr.shape, dtype=np.uint8)
    assert flat_texture(busy, busy, 4) is None  # no flat area
