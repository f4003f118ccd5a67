"""srzoo.evaluate.metrics at its edges: the size limits (exact boundaries, both sides, the
message naming width x height), dtypes, closed forms of SSIM/MS-SSIM, and MS-SSIM against
an independent implementation (windows taken with numpy's sliding_window_view, not
OpenCV's filter) and the published pytorch-msssim values of test_ms_ssim.py.
Written to kill the survivors of a mutation run (docs/mutation/evaluate-metrics.md)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from srzoo.evaluate.metrics import MS_SSIM_WEIGHTS, ms_ssim, psnr, rgb2y, shave, ssim, to_y

from test_ms_ssim import REFERENCE, _pair

# --- rgb2y, shave, shapes ---------------------------------------------------------------


def test_rgb2y_refuses_what_is_not_bgr_and_returns_uint8() -> None:
    with pytest.raises(ValueError, match=re.escape("rgb2y expects an H x W x 3 BGR image, got shape (4, 5)")):
        rgb2y(np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=re.escape("got shape (4, 5, 2)")):
        rgb2y(np.zeros((4, 5, 2), np.uint8))
    px = np.array([[[255, 0, 0, 7], [0, 0, 255, 9]]], np.uint8)  # BGRA: alpha ignored
    y = rgb2y(px)
    assert y.dtype == np.uint8 and y.tolist() == [[41, 81]]


def test_shave_limits_on_each_side() -> None:
    # 2 * border must stay below both sides: 10 rows cannot lose 5 px top and bottom
    for shape, size in (((10, 20), "20x10"), ((20, 10), "10x20")):
        with pytest.raises(ValueError, match=re.escape(f"cannot shave 5 px from an image of {size}")):
            shave(np.zeros(shape), 5)
    assert shave(np.zeros((11, 40)), 5).shape == (1, 30)
    assert shave(np.zeros((40, 11)), 5).shape == (30, 1)
    assert shave(np.zeros((14, 30)), 5).shape == (4, 20)
    img = np.arange(7 * 9).reshape(7, 9)
    np.testing.assert_array_equal(shave(img, 2), img[2:5, 2:7])
    assert shave(img, -1) is img


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=re.escape("images differ in shape: (4, 4) vs (4, 5)")):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=re.escape("images differ in shape: (4, 4) vs (5, 4)")):
        ssim(np.zeros((4, 4)), np.zeros((5, 4)))


def test_psnr_peak_and_y_channel_of_one_channel_images() -> None:
    a = np.zeros((6, 6), np.float64)
    b = np.full((6, 6), 0.25)
    assert psnr(a, b, peak=1.0) == pytest.approx(10 * math.log10(1 / 0.0625), abs=1e-12)
    g = np.arange(36, dtype=np.uint8).reshape(6, 6, 1)
    assert psnr(g, g + 3, y_channel=True) == pytest.approx(10 * math.log10(255 ** 2 / 9), abs=1e-12)
    assert to_y(g).shape == (6, 6)


# --- SSIM ---------------------------------------------------------------------------------


def _ssim_windows(x: np.ndarray, y: np.ndarray, sigma: float, c1: float, c2: float,
                  size: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """SSIM and contrast-structure maps over the valid region, every window taken
    explicitly (numpy's sliding_window_view, not a filter)."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    w = np.outer(g, g)
    w /= w.sum()
    wx, wy = sliding_window_view(x, (size, size)), sliding_window_view(y, (size, size))

    def mean(v: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", v, w)

    mx, my = mean(wx), mean(wy)
    vx, vy, cxy = mean(wx * wx) - mx * mx, mean(wy * wy) - my * my, mean(wx * wy) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs, cs


def _ms_ssim_independent(x: np.ndarray, y: np.ndarray, sigma: float = 1.5, peak: float = 255.0) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    val = 1.0
    for j, wgt in enumerate(MS_SSIM_WEIGHTS):
        full, cs = _ssim_windows(x, y, sigma, c1, c2)
        term = full.mean() if j == len(MS_SSIM_WEIGHTS) - 1 else cs.mean()
        val *= max(float(term), 0.0) ** wgt
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        y = y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return val


def test_ssim_size_limit_is_exact_and_names_width_x_height() -> None:
    for shape, got in (((10, 30), "30x10"), ((30, 10), "10x30")):
        with pytest.raises(ValueError, match=re.escape(f"SSIM needs at least 11x11 pixels, got {got}")):
            ssim(np.zeros(shape), np.ones(shape))
    rng = np.random.default_rng(11)
    for shape in ((11, 11), (11, 17), (17, 11)):  # exactly one window high or wide: allowed
        x = rng.integers(0, 256, shape).astype(np.float64)
        y = np.clip(x + rng.integers(-40, 40, shape), 0, 255)
        full, _ = _ssim_windows(x, y, 1.5, (0.01 * 255) ** 2, (0.03 * 255) ** 2)
        assert ssim(x, y) == pytest.approx(full.mean(), abs=1e-10)


@pytest.mark.parametrize("sigma,window", [(1.5, 11), (3.0, 11), (0.8, 7)])
def test_ssim_window_and_sigma_take_effect(sigma: float, window: int) -> None:
    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, (24, 29)).astype(np.float64)
    y = cv2.GaussianBlur(x, (5, 5), 1.2)
    full, _ = _ssim_windows(x, y, sigma, (0.01 * 255) ** 2, (0.03 * 255) ** 2, size=window)
    got = ssim(x, y, sigma=sigma, window=window)
    assert got == pytest.approx(full.mean(), abs=1e-10)


# --- MS-SSIM ----------------------------------------------------------------------------


def test_ms_ssim_of_constant_images_is_the_luminance_term() -> None:
    # constant images: every contrast-structure term is exactly 1, so MS-SSIM is the
    # coarsest scale's luminance term to the last weight, in closed form
    for m, d, peak in ((100.0, 50.0, 255.0), (0.3, 0.1, 1.0)):
        a, b = np.full((176, 192), m), np.full((176, 192), m + d)
        c1 = (0.01 * peak) ** 2
        lum = (2 * m * (m + d) + c1) / (m * m + (m + d) ** 2 + c1)
        assert ms_ssim(a, b, peak=peak) == pytest.approx(lum ** 0.1333, rel=1e-12)


def test_ms_ssim_independent_implementation(shared_dir: Path) -> None:
    a, b = _pair(shared_dir / "datasets", "butterfly-blur")
    ya, yb = to_y(a), to_y(b)
    # the independent implementation reproduces the published value ...
    assert _ms_ssim_independent(ya, yb) == pytest.approx(REFERENCE["butterfly-blur"], abs=1e-6)
    # ... and srzoo follows it where no published value exists: another sigma, an odd size
    for sigma, crop in ((1.5, (221, 253)), (2.5, (224, 256)), (1.0, (197, 181))):
        pa, pb = ya[:crop[0], :crop[1]], yb[:crop[0], :crop[1]]
        assert ms_ssim(pa, pb, sigma=sigma) == pytest.approx(_ms_ssim_independent(pa, pb, sigma), abs=1e-12)


def test_ms_ssim_is_transpose_invariant(shared_dir: Path) -> None:
    # the published value of a wide pair holds for the same pair turned tall
    a, b = _pair(shared_dir / "datasets", "zebra-bright")
    ta, tb = np.ascontiguousarray(a.swapaxes(0, 1)), np.ascontiguousarray(b.swapaxes(0, 1))
    assert ms_ssim(ta, tb, y_channel=True) == pytest.approx(REFERENCE["zebra-bright"], abs=1e-6)


def test_ms_ssim_colour_is_the_mean_over_channels(shared_dir: Path) -> None:
    # three published pairs of the same size as the three channels of one image
    keys = ("baby-x2", "barbara-x4", "lenna-x2")
    pairs = [_pair(shared_dir / "datasets", k) for k in keys]
    a = np.stack([to_y(p[0]) for p in pairs], axis=2)
    b = np.stack([to_y(p[1]) for p in pairs], axis=2)
    want = float(np.mean([REFERENCE[k] for k in keys]))
    assert ms_ssim(a, b) == pytest.approx(want, abs=1e-6)
    # y_channel is off by default: the Y of this image is another number
    assert abs(ms_ssim(a, b, y_channel=True) - want) > 1e-3


def test_ms_ssim_size_limit_is_exact_and_names_width_x_height() -> None:
    # each halving drops an odd row, so 5 scales of an 11 px window need 11 * 16 = 176 px:
    # 161..175 px images used to pass the check and score NaN (an empty coarsest scale)
    with pytest.raises(ValueError, match=re.escape("MS-SSIM over 5 scales needs at least 176 px per "
                                                   "side, got 300x175")):
        ms_ssim(np.zeros((175, 300)), np.zeros((175, 300)))
    with pytest.raises(ValueError, match=re.escape("got 175x300")):
        ms_ssim(np.zeros((300, 175)), np.zeros((300, 175)))
    with pytest.raises(ValueError, match=re.escape("over 3 scales needs at least 44 px per side, got 45x43")):
        ms_ssim(np.zeros((43, 45, 3)), np.zeros((43, 45, 3)), weights=(0.2, 0.3, 0.5))
    rng = np.random.default_rng(13)
    for shape in ((176, 176), (44, 47)):
        a = rng.integers(0, 256, shape).astype(np.float64)
        b = np.clip(a + rng.normal(0, 9, shape), 0, 255)
        wts = MS_SSIM_WEIGHTS if shape[0] == 176 else (0.2, 0.3, 0.5)
        got = ms_ssim(a, b, weights=wts)
        assert math.isfinite(got) and 0.5 < got < 1.0
        assert ms_ssim(np.stack([a] * 3, axis=2), np.stack([a] * 3, axis=2), weights=wts) == 1.0
