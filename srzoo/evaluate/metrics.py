"""Image-quality metrics and the resampling of the standard SR evaluation protocol.

Everything here is plain numpy (plus OpenCV for the Gaussian filter of SSIM) and
matches the reference implementations the super-resolution literature reports
its numbers with:

* :func:`imresize` -- MATLAB ``imresize(A, scale, 'bicubic')`` (a = -0.5 cubic,
  antialiasing when shrinking, symmetric borders), the degradation that makes
  the low-resolution inputs of Set5/Set14/... and the "bicubic" baseline.
* :func:`rgb2y` -- the Y channel of MATLAB ``rgb2ycbcr`` on uint8 (BT.601,
  studio swing 16..235), computed from an OpenCV **BGR** image.
* :func:`modcrop`, :func:`shave` -- cropping steps of the protocol.
* :func:`psnr` -- peak signal-to-noise ratio (peak 255 by default).
* :func:`ssim` -- Wang et al. 2004 (``ssim_index.m``): 11x11 Gaussian window,
  sigma 1.5, K1 = 0.01, K2 = 0.03, statistics over the 'valid' region only.
* :func:`ms_ssim` -- multi-scale SSIM of Wang, Simoncelli & Bovik 2003: five
  scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 mean
  downsampling, the same window and constants as :func:`ssim`.

Images are numpy arrays as OpenCV uses them: ``H x W`` (grey) or ``H x W x C``
with channels in BGR order.

>>> import numpy as np
>>> from srzoo.evaluate.metrics import imresize, psnr, ssim
>>> hr = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
>>> lr = imresize(hr, 0.5)
>>> lr.shape
(4, 4)
>>> round(ssim(hr, hr), 6)
1.0
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# the resampling of the protocol lives below the layers that share it (converters,
# the pipeline, training): srzoo.resample; re-exported here, where users find it
from srzoo.resample import cubic_kernel, imresize, modcrop, resize_weights

__all__ = ["imresize", "rgb2y", "modcrop", "shave", "psnr", "ssim", "ms_ssim", "MS_SSIM_WEIGHTS", "to_y",
           "cubic_kernel", "resize_weights"]


def rgb2y(img_bgr: np.ndarray, *, round: bool = True) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` for an OpenCV **BGR** image.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for 8-bit values
    (BT.601 studio swing, 16..235). With ``round`` (MATLAB on uint8 input) the
    result is rounded to uint8; otherwise float64 is returned. Note the channel
    order: index 2 is red, index 0 is blue.
    """
    arr = np.asarray(img_bgr)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"rgb2y expects an H x W x 3 BGR image, got shape {arr.shape}")
    f = arr[..., :3].astype(np.float64)
    y = 16.0 + (65.481 * f[..., 2] + 128.553 * f[..., 1] + 24.966 * f[..., 0]) / 255.0
    if round:
        return np.floor(y + 0.5).astype(np.uint8)
    return y


def to_y(img: np.ndarray) -> np.ndarray:
    """The plane the standard protocol scores: :func:`rgb2y` of a colour image,
    a one-channel image as it is (``H x W`` or ``H x W x 1``)."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[..., 0]
    return rgb2y(arr)


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from every side (no-op for 0)."""
    b = int(border)
    if b <= 0:
        return img
    if 2 * b >= img.shape[0] or 2 * b >= img.shape[1]:
        raise ValueError(f"cannot shave {b} px from an image of {img.shape[1]}x{img.shape[0]}")
    return img[b:-b, b:-b]


def _prepare(a: np.ndarray, b: np.ndarray, shave_px: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if y_channel:
        a, b = to_y(a), to_y(b)
    return shave(a, shave_px).astype(np.float64), shave(b, shave_px).astype(np.float64)


# ---------------------------------------------------------------------------
# PSNR and SSIM
# ---------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0, shave: int = 0,
         y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak^2 / MSE)``.

    The MSE is over every pixel and channel that is compared (``cv2.PSNR``
    does the same on colour images). ``y_channel`` scores :func:`to_y` of both
    images (the standard SR protocol); ``shave`` drops that many border pixels
    first. Identical images give ``inf``.
    """
    x, y = _prepare(a, b, shave, y_channel)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """1-D Gaussian taps; their outer product is MATLAB ``fspecial('gaussian')``."""
    r = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _ssim_plane(x: np.ndarray, y: np.ndarray, c1: float, c2: float, win: np.ndarray) -> float:
    size = win.size
    if x.shape[0] < size or x.shape[1] < size:
        raise ValueError(f"SSIM needs at least {size}x{size} pixels, got {x.shape[1]}x{x.shape[0]}")
    mu_x2, mu_y2, mu_xy, s_x, s_y, s_xy = _local_stats(x, y, win)
    ssim_map = ((2.0 * mu_xy + c1) * (2.0 * s_xy + c2)) / ((mu_x2 + mu_y2 + c1) * (s_x + s_y + c2))
    return float(ssim_map.mean())


def _local_stats(x: np.ndarray, y: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gaussian-window statistics over the 'valid' region: mu_x², mu_y², mu_x·mu_y,
    sigma_x², sigma_y², sigma_xy."""
    import cv2

    r = win.size // 2

    def filt(img: np.ndarray) -> np.ndarray:
        # separable Gaussian (exactly the normalised 2-D window); keep the valid part
        out = cv2.sepFilter2D(img, cv2.CV_64F, win, win, borderType=cv2.BORDER_REFLECT)
        return out[r: img.shape[0] - r, r: img.shape[1] - r]

    mu_x, mu_y = filt(x), filt(y)
    mu_x2, mu_y2, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    return mu_x2, mu_y2, mu_xy, filt(x * x) - mu_x2, filt(y * y) - mu_y2, filt(x * y) - mu_xy


def ssim(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0, shave: int = 0,
         y_channel: bool = False, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Structural similarity of Wang et al. (IEEE TIP 2004, ``ssim_index.m``).

    Gaussian window ``window x window`` with ``sigma``, ``C1 = (k1 peak)^2``,
    ``C2 = (k2 peak)^2``, mean of the SSIM map over the 'valid' region (no
    padding, no downsampling). Multi-channel images: the mean over channels of
    the per-channel SSIM (as OpenCV's ``quality::QualitySSIM`` reports it, but
    OpenCV keeps the padded border). ``y_channel`` and ``shave`` as in
    :func:`psnr`. Identical images give 1.0.
    """
    x, y = _prepare(a, b, shave, y_channel)
    c1 = (k1 * peak) ** 2
    c2 = (k2 * peak) ** 2
    win = _gaussian_window(window, sigma)
    if x.ndim == 2:
        return _ssim_plane(x, y, c1, c2, win)
    vals = [_ssim_plane(np.ascontiguousarray(x[..., c]), np.ascontiguousarray(y[..., c]), c1, c2, win)
            for c in range(x.shape[2])]
    return float(np.mean(vals))


# ---------------------------------------------------------------------------
# MS-SSIM
# ---------------------------------------------------------------------------

#: the five scale weights of Wang, Simoncelli & Bovik (2003)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ssim_terms(x: np.ndarray, y: np.ndarray, c1: float, c2: float,
                win: np.ndarray) -> tuple[float, float]:
    """Means over the 'valid' region of the SSIM map and of its contrast-structure map."""
    mu_x2, mu_y2, mu_xy, s_x, s_y, s_xy = _local_stats(x, y, win)
    cs_map = (2.0 * s_xy + c2) / (s_x + s_y + c2)
    lum_map = (2.0 * mu_xy + c1) / (mu_x2 + mu_y2 + c1)
    return float((lum_map * cs_map).mean()), float(cs_map.mean())


def _halve(img: np.ndarray) -> np.ndarray:
    """2x2 block mean (an odd last row/column is dropped)."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    a = img[:h, :w]
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def ms_ssim(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0, shave: int = 0,
            y_channel: bool = False, weights: Sequence[float] = MS_SSIM_WEIGHTS,
            window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> float:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik, Asilomar 2003).

    ``prod_j cs_j ** w_j`` over the scales, times the luminance term at the
    coarsest scale: scale 1 is the image, each next scale the 2x2 block mean of
    the previous one; ``cs_j`` is the mean contrast-structure term and the last
    factor the mean SSIM of the coarsest scale, each computed as :func:`ssim`
    (Gaussian ``window`` with ``sigma``, 'valid' region) and clipped at 0 (as
    common implementations do, so that the power is defined). With the default
    five weights the image needs at least ``window * 16`` = 176 pixels on each
    side (smaller ones raise ValueError). ``y_channel`` and ``shave`` as in :func:`psnr` (the standard
    protocol: Y, ``scale`` px shaved). Multi-channel images: the mean over
    channels. Identical images give 1.0.
    """
    x, y = _prepare(a, b, shave, y_channel)
    levels = len(weights)
    # each 2x2 halving drops an odd row/column: the coarsest scale, min side >> (levels - 1),
    # must still hold one window
    need = window * 2 ** (levels - 1)
    if min(x.shape[:2]) < need:
        raise ValueError(f"MS-SSIM over {levels} scales needs at least {need} px per side, "
                         f"got {x.shape[1]}x{x.shape[0]}")
    c1 = (k1 * peak) ** 2
    c2 = (k2 * peak) ** 2
    win = _gaussian_window(window, sigma)

    def plane(p: np.ndarray, q: np.ndarray) -> float:
        val = 1.0
        for j, w in enumerate(weights):
            full, cs = _ssim_terms(p, q, c1, c2, win)
            term = full if j == levels - 1 else cs
            val *= max(term, 0.0) ** float(w)
            if j < levels - 1:
                p, q = _halve(p), _halve(q)
        return float(val)

    if x.ndim == 2:
        return plane(x, y)
    return float(np.mean([plane(np.ascontiguousarray(x[..., c]), np.ascontiguousarray(y[..., c]))
                          for c in range(x.shape[2])]))
