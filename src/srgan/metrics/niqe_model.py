"""NIQE (Mittal et al., IEEE SPL 2013), the no-reference "naturalness" score; lower is better.

A numpy port of the MATLAB release (`computequality.m`), as BasicSR and pyiqa report it: the
image goes to gray with MATLAB's `rgb2gray` (rounded to integers), is cut to whole 96x96 blocks,
and at two scales (full, and MATLAB `imresize` by 0.5) every block gives 18 statistics of its
mean-subtracted contrast-normalised coefficients (an asymmetric generalised Gaussian fit of the
coefficients and of their products with four neighbours). The multivariate Gaussian of those
block features is compared with the pristine model fitted by the authors on natural photos
(`niqe_pris_params.npz`, found or downloaded by `srgan.metrics.weights`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from .protocol import shave as shave_border
from .weights import NIQE_PARAMS, MetricWeightsError, find_metric_file

BLOCK = 96
FLAT = 1e-8  # |coefficient| below this is rounding noise of a flat area (see niqe_gray)
# MATLAB rgb2gray's exact coefficients (the inverse of the NTSC YIQ matrix's first row).
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
# Shape parameters searched by the moment-matching AGGD fit, as in the MATLAB code.
_GAM = np.arange(0.2, 10.001, 0.001)
_GAMMA = np.vectorize(math.gamma)
_R_GAM = _GAMMA(2 / _GAM) ** 2 / (_GAMMA(1 / _GAM) * _GAMMA(3 / _GAM))


def matlab_rgb2gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float64 gray on 0-255, rounded like MATLAB's uint8 `rgb2gray`."""
    x = img.astype(np.float64)
    if img.dtype == np.uint16:
        x = x / 257.0
    gray = x[..., 0] * RGB2GRAY[0] + x[..., 1] * RGB2GRAY[1] + x[..., 2] * RGB2GRAY[2]
    return np.floor(gray + 0.5)  # MATLAB rounds half away from zero


def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return ((1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1)
            + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2)))


def imresize_matrix(n_in: int, scale: float) -> np.ndarray:
    """The (n_out, n_in) matrix of MATLAB's antialiased bicubic `imresize` along one axis. Pure.

    n_out = ceil(n_in * scale); when shrinking, the cubic kernel is widened by 1/scale;
    samples outside the image are mirrored (MATLAB's symmetric padding).
    """
    n_out = math.ceil(n_in * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]  # 1-based source positions
    dist = u[:, None] - taps
    weights = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    index = mirror[(taps.astype(np.int64) - 1) % (2 * n_in)]
    out = np.zeros((n_out, n_in))
    np.add.at(out, (np.repeat(np.arange(n_out), taps.shape[1]), index.ravel()), weights.ravel())
    return out


def matlab_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB `imresize(img, scale)` (bicubic, antialiased) of an (H, W) float array, unrounded."""
    return imresize_matrix(img.shape[0], scale) @ img @ imresize_matrix(img.shape[1], scale).T


def filter_nearest(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Correlation with a small odd window, edges replicated (MATLAB's imfilter 'replicate')."""
    k = window.shape[0] // 2
    padded = np.pad(img, k, mode="edge")
    h, w = img.shape
    return sum(window[i, j] * padded[i:i + h, j:j + w] for i in range(window.shape[0]) for j in range(window.shape[1]))


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian (shape, left scale, right scale) by moment matching."""
    x = x.ravel()
    neg, pos = x[x < 0], x[x > 0]
    if neg.size == 0 or pos.size == 0:  # a flat or one-sided block: no fit (MATLAB gives NaN too)
        return float(_GAM[0]), math.nan, math.nan
    left, right = np.sqrt(np.mean(neg**2)), np.sqrt(np.mean(pos**2))
    gammahat = left / right
    rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = float(_GAM[np.argmin((_R_GAM - rhatnorm) ** 2)])
    factor = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, float(left * factor), float(right * factor)


def block_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE statistics of one block of normalised coefficients."""
    alpha, bl, br = aggd_fit(block)
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, bl, br = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        feats += [alpha, (br - bl) * math.gamma(2 / alpha) / math.gamma(1 / alpha), bl, br]
    return feats


def niqe_features(gray: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(blocks, 36) NIQE features of an (H, W) float gray image on 0-255: 18 per block at each of
    two scales. Pure. A pristine model is the mean and covariance of these over clean photos.
    """
    rows, cols = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks, got a {gray.shape[1]}x{gray.shape[0]} image")
    img = gray[: rows * BLOCK, : cols * BLOCK]
    per_scale = []
    for scale in (1, 2):
        mu = filter_nearest(img, window)
        sigma = np.sqrt(np.abs(filter_nearest(img * img, window) - mu * mu))
        norm = (img - mu) / (sigma + 1)
        # On flat areas the exact coefficient is 0, but the filtered mean misses the pixel value by
        # rounding error, leaving +-1e-14 noise. The AGGD fit splits coefficients by sign, so such
        # noise counts as data and moves the score of images with flat regions (0.39 on one
        # calibration image); zeroing it reproduces MATLAB's figure to 0.03.
        norm[np.abs(norm) < FLAT] = 0.0
        b = BLOCK // scale
        per_scale.append([block_features(norm[r * b:(r + 1) * b, c * b:(c + 1) * b])
                          for c in range(cols) for r in range(rows)])
        if scale == 1:
            img = matlab_imresize(img / 255.0, 0.5) * 255.0
    return np.concatenate([np.asarray(f) for f in per_scale], axis=1)


def niqe_gray(gray: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray, window: np.ndarray) -> float:
    """NIQE of an (H, W) float gray image on 0-255 against a pristine model. Pure."""
    feats = niqe_features(gray, window)
    mu_dist = np.nanmean(feats, axis=0)
    cov_dist = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
    diff = mu_pris - mu_dist
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff))


@lru_cache(maxsize=4)
def load_niqe_params(weights: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, cov, gaussian window) of the pristine model, from `srgan.metrics.weights`."""
    path = find_metric_file(NIQE_PARAMS, weights)
    try:
        with np.load(path, allow_pickle=False) as z:
            mu, cov, window = z["mu_pris_param"].ravel(), z["cov_pris_param"], z["gaussian_window"]
    except Exception as exc:  # noqa: BLE001 - a bad file is one line naming it
        raise MetricWeightsError(f"NIQE parameters {path} could not be read: {exc}") from None
    if mu.shape != (36,) or cov.shape != (36, 36) or window.ndim != 2 or window.shape[0] % 2 == 0:
        raise MetricWeightsError(f"NIQE parameters {path}: unexpected shapes {mu.shape}, {cov.shape}, {window.shape}")
    return mu.astype(np.float64), cov.astype(np.float64), window.astype(np.float64)


def niqe(img: np.ndarray, *, shave: int = 0, weights: str | Path | None = None) -> float:
    """NIQE of an (H, W, 3) RGB or (H, W) gray uint8/uint16 image, `shave` px cut from each border.

    Needs at least two 96x96 blocks after the shave (ValueError otherwise). An RGBA image is
    refused: drop or composite its alpha first, as the result depends on the choice.
    """
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"NIQE needs uint8 or uint16 images, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] != 3:
        raise ValueError(f"NIQE needs RGB or gray images, got {img.shape[2]} channels")
    img = shave_border(img, shave)
    if img.ndim == 3:
        gray = matlab_rgb2gray(img)
    else:
        gray = img.astype(np.float64) / (257.0 if img.dtype == np.uint16 else 1.0)
        gray = np.floor(gray + 0.5)
    return niqe_gray(gray, *load_niqe_params(None if weights is None else str(weights)))
