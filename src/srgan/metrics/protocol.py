"""Pure metric functions on numpy arrays, MATLAB-compatible (as BasicSR / the SR papers).

Images are HxWx3 RGB (uint8 0-255, or float in [0, 1]) or HxW single-channel.

The benchmark protocol: ground truth modcropped to the scale, Y channel of BT.601 YCbCr kept
in float (not rounded, as BasicSR's ``test_y_channel``), `scale` pixels shaved from every
border, then PSNR and SSIM (Wang et al. 2004) with data range 255. With Pillow's antialiased
bicubic this gives the published bicubic x4 figures (Set5 28.43 dB / 0.8111, Set14 26.09 / 0.7048).
"""

from __future__ import annotations

import numpy as np


def to_unit_float(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 or float image -> float64 in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    return img.astype(np.float64)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 16-235 scale: Y = 16 + 65.481 R + 128.553 G + 24.966 B (R,G,B in [0,1]).

    A single-channel image is taken to be luma already and scaled to 0-255.
    """
    x = to_unit_float(img)
    if x.ndim == 2 or x.shape[-1] == 1:
        return x.reshape(x.shape[:2]) * 255.0
    return 16.0 + x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Remove `border` pixels from every edge."""
    if border <= 0:
        return img
    return img[border:-border, border:-border]


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB between two same-shaped float arrays on a `data_range` scale."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def psnr_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """Y-channel PSNR with `scale` pixels shaved, the x2/x4 benchmark number."""
    return psnr(shave(rgb_to_y(sr), scale), shave(rgb_to_y(hr), scale))


def psnr_rgb(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """PSNR over all three RGB channels (0-255 scale) with `scale` pixels shaved."""
    return psnr(shave(to_unit_float(sr) * 255.0, scale), shave(to_unit_float(hr) * 255.0, scale))


SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1-D Gaussian of `size` taps summing to 1 (as MATLAB's fspecial / OpenCV's getGaussianKernel)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def filter_valid(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation of an HxW float array with `taps` x `taps`, 'valid' region only.

    Returns (H - k + 1) x (W - k + 1) for k taps: only windows wholly inside the image, as
    MATLAB's ``filter2(..., 'valid')``, so no border padding rule enters the result.
    """
    k = len(taps)
    h, w = img.shape
    rows = sum(taps[i] * img[i : h - k + 1 + i] for i in range(k))
    return sum(taps[j] * rows[:, j : w - k + 1 + j] for j in range(k))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two same-shaped arrays on a `data_range` scale.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population (not sample) statistics,
    averaged over the 'valid' positions of the window. HxW arrays give one SSIM; HxWxC arrays
    the mean of the per-channel SSIMs. Equals scikit-image's ``structural_similarity(a, b,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)``.
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))
    if a.ndim != 2:
        raise ValueError(f"ssim: expected HxW or HxWxC arrays, got shape {a.shape}")
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim: images must be at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape[1]}x{a.shape[0]}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    g = gaussian_window()
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = filter_valid(x, g), filter_valid(y, g)
    var_x = filter_valid(x * x, g) - mu_x**2
    var_y = filter_valid(y * y, g) - mu_y**2
    cov = filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float(np.mean(num / den))


def ssim_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """Y-channel SSIM with `scale` pixels shaved, the x2/x4 benchmark number."""
    return ssim(shave(rgb_to_y(sr), scale), shave(rgb_to_y(hr), scale))


def texture_ratio(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """Mean Y gradient magnitude of `sr` over that of `hr` (`scale` px shaved): 1.0 = as detailed as HR.

    Bicubic x4 scores ~0.3-0.5 on photos; a PSNR-trained network stays well below 1; a GAN
    restores texture towards 1. A detail measure, not a fidelity one: noise also raises it.
    """
    def mean_gradient(img: np.ndarray) -> float:
        y = shave(rgb_to_y(img), scale)
        dy, dx = np.diff(y, axis=0)[:, :-1], np.diff(y, axis=1)[:-1, :]
        return float(np.mean(np.sqrt(dx**2 + dy**2)))

    return mean_gradient(sr) / max(mean_gradient(hr), 1e-12)


def grid_level(img: np.ndarray, scale: int) -> float:
    """RMS, in Y grey levels (0-255), of the mean `scale` x `scale` block pattern of an SR output.

    Each block's mean is removed and the residuals averaged over all blocks (after shaving
    `scale` px, which keeps the blocks on the upsampling grid). Photos and a PSNR-trained
    network score ~0.1-0.3; a generator that prints a fixed sub-pixel grid (the GAN
    checkerboard) scores its amplitude, ~1 for a faint but visible grid on flat areas.
    """
    y = shave(rgb_to_y(img), scale)
    h, w = y.shape[0] - y.shape[0] % scale, y.shape[1] - y.shape[1] % scale
    blocks = y[:h, :w].reshape(h // scale, scale, w // scale, scale)
    pattern = (blocks - blocks.mean(axis=(1, 3), keepdims=True)).mean(axis=(0, 2))
    return float(np.sqrt(np.mean(pattern**2)))


STRUCTURE_SIGMA = 1.0   # the structure tensor's window: a few pixels, the scale of x4 jaggies
EDGE_COHERENCE = 0.75   # an HR pixel on a straight edge: one dominant orientation in its window
EDGE_QUANTILE = 0.9     # ... and among the 10% of the image's strongest gradients
FLAT_LEVEL = 1.5        # an HR pixel on a flat area: RMS gradient under 1.5 grey levels per pixel
MIN_PIXELS = 64         # fewer such pixels give no score (None)


def _filter_same(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an HxW array, same size, mirrored borders."""
    taps = gaussian_window(2 * int(np.ceil(3 * sigma)) + 1, sigma)
    k = len(taps) // 2
    return filter_valid(np.pad(img, k, mode="reflect"), taps)


def _structure(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel of a Y image: gradient energy (grey levels^2), coherence in [0, 1] and the
    doubled-angle orientation (radians) of its structure tensor."""
    gy, gx = np.gradient(_filter_same(y, 1.0))
    jxx, jyy, jxy = (_filter_same(a, STRUCTURE_SIGMA) for a in (gx * gx, gy * gy, gx * gy))
    energy = jxx + jyy
    aniso = np.hypot(jxx - jyy, 2 * jxy)
    return energy, aniso / np.maximum(energy, 1e-12), np.arctan2(2 * jxy, jxx - jyy)


def edge_error(sr: np.ndarray, hr: np.ndarray, scale: int) -> float | None:
    """Mean deviation, in degrees (0-90), of the SR output's local edge orientation from HR's on
    HR's strong straight edges (`scale` px shaved); None when HR has almost none.

    Jagged or wavy renderings of straight edges (window frames, brick courses, text) turn the
    orientation of the output's structure tensor away from the true one; a blur keeps it. A
    PSNR-trained network scores a few degrees on photos; staircases score far more.
    """
    return structure_scores(sr, hr, scale)[0]


def flat_texture(sr: np.ndarray, hr: np.ndarray, scale: int) -> float | None:
    """Fine detail (what a Gaussian blur of sigma 1 removes; RMS in Y grey levels) of the SR output
    minus that of HR, over HR's flat areas (walls, sky; `scale` px shaved); None when HR has none.

    Positive: the output paints texture on plain surfaces that HR does not have (the GAN's false
    texture); negative: it is smoother there than HR (a blur, or removed grain).
    """
    return structure_scores(sr, hr, scale)[1]


def structure_scores(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float | None, float | None]:
    """(edge_error, flat_texture) from one structure tensor of each image."""
    y_sr, y_hr = shave(rgb_to_y(sr), scale), shave(rgb_to_y(hr), scale)
    e_hr, c_hr, a_hr = _structure(y_hr)
    _e_sr, _c_sr, a_sr = _structure(y_sr)
    edges = (c_hr > EDGE_COHERENCE) & (e_hr >= np.quantile(e_hr, EDGE_QUANTILE)) & (e_hr > FLAT_LEVEL**2)
    edge = None
    if edges.sum() >= MIN_PIXELS:
        diff = np.abs(np.angle(np.exp(1j * (a_sr[edges] - a_hr[edges]))))  # doubled angles: 0..pi
        edge = float(np.degrees(diff.mean() / 2))
    flat_area = e_hr < FLAT_LEVEL**2
    if flat_area.sum() < MIN_PIXELS:
        return edge, None

    def detail(y: np.ndarray) -> float:
        return float(np.sqrt(np.mean((y - _filter_same(y, STRUCTURE_SIGMA))[flat_area] ** 2)))

    return edge, detail(y_sr) - detail(y_hr)
