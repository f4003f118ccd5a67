"""srzoo.evaluate.metrics: hand-computed MATLAB values, and the published bicubic baselines."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from srzoo.evaluate.metrics import (cubic_kernel, imresize, modcrop, psnr, resize_weights, rgb2y, shave,
                           ssim, to_y)

# --- imresize ---------------------------------------------------------------


def test_cubic_kernel_is_matlab_a_minus_half() -> None:
    x = np.array([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5])
    expect = [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0]
    np.testing.assert_allclose(cubic_kernel(x), expect, atol=1e-15)


def test_imresize_shrink_matches_matlab() -> None:
    # MATLAB: imresize([1 2 3 4], 0.5) -> [1.4609 3.5391] (antialiased, symmetric border)
    out = imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), output_shape=(1, 2))
    # only columns shrink here; rows stay (scale 1 on that axis)
    np.testing.assert_allclose(out, [[1.4609375, 3.5390625]], atol=1e-12)


def test_imresize_enlarge_matches_matlab() -> None:
    # MATLAB: imresize([1 2 3 4], 2), hand computed. Samples whose 4 taps lie inside
    # are exact for a ramp (2.25, 2.75); at 1.75 the tap at position 0 reads the
    # mirrored 1 instead of 0: 1.75 - 0.0234375 * 1 = 1.7265625.
    out = imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), output_shape=(1, 8))
    expect = [0.90625, 1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125, 4.09375]
    np.testing.assert_allclose(out[0], expect, atol=1e-12)


def test_resize_weights_rows_sum_to_one_and_mirror() -> None:
    w, idx = resize_weights(4, 2, 0.5)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # first output: taps at 1-based positions -2..5 mirror to [3,2,1,1,2,3,4,4]
    assert idx[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 3]
    assert idx.min() >= 0 and idx.max() <= 3


def test_imresize_is_separable_and_keeps_channels() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(12), rng.random(9)
    img = np.outer(a, b)
    out = imresize(img, 1 / 3)
    expect = np.outer(imresize(a[:, None], output_shape=(4, 1))[:, 0],
                      imresize(b[None, :], output_shape=(1, 3))[0])
    np.testing.assert_allclose(out, expect, atol=1e-12)
    colour = np.stack([img, 2 * img, 3 * img], axis=2)
    outc = imresize(colour, 1 / 3)
    assert outc.shape == (4, 3, 3)
    np.testing.assert_allclose(outc[..., 2], 3 * out, atol=1e-12)


def test_imresize_uint8_rounds_and_clips() -> None:
    img = np.array([[0, 255, 0, 255]], dtype=np.uint8).repeat(4, axis=0)
    up = imresize(img, 2)
    assert up.dtype == np.uint8 and up.shape == (8, 8)
    f = imresize(img.astype(np.float64), 2)
    # overshoot of the cubic kernel is clipped; the rest rounded half away from zero
    np.testing.assert_array_equal(up, np.floor(np.clip(f, 0, 255) + 0.5).astype(np.uint8))
    assert f.min() < 0 and f.max() > 255


def test_imresize_sizes() -> None:
    img = np.zeros((255, 120, 3), np.uint8)
    assert imresize(img, 1 / 3).shape == (85, 40, 3)
    assert imresize(img, 4).shape == (1020, 480, 3)
    assert imresize(img, output_shape=(10, 7)).shape == (10, 7, 3)
    with pytest.raises(ValueError):
        imresize(img)


def test_imresize_differs_from_opencv_cubic() -> None:
    """cv2.INTER_CUBIC (a = -0.75, no antialiasing) is not MATLAB's bicubic."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    ours = imresize(img, 0.5)
    cv = cv2.resize(img, (24, 24), interpolation=cv2.INTER_CUBIC)
    assert np.abs(ours.astype(int) - cv.astype(int)).max() > 10


def test_imresize_constant_image_stays_constant() -> None:
    img = np.full((30, 21), 77, np.uint8)
    for s in (1 / 4, 1 / 3, 2, 3):
        assert np.all(imresize(img, s) == 77)


# --- colour, cropping -------------------------------------------------------


def test_rgb2y_bgr_order() -> None:
    px = np.array([[[255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 255], [0, 0, 0]]], np.uint8)
    # BGR: pure blue -> 16 + 24.966 = 40.966, pure red -> 81.481, green -> 144.553
    assert rgb2y(px).tolist() == [[41, 81, 145, 235, 16]]
    np.testing.assert_allclose(rgb2y(px, round=False)[0, :3], [40.966, 81.481, 144.553])


def test_to_y_keeps_grey() -> None:
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_y(g) is g
    np.testing.assert_array_equal(to_y(g[..., None]), g)


def test_modcrop_and_shave() -> None:
    img = np.zeros((17, 23, 3))
    assert modcrop(img, 4).shape == (16, 20, 3)
    assert modcrop(img, 1).shape == img.shape
    assert shave(img, 2).shape == (13, 19, 3)
    assert shave(img, 0) is img


# --- PSNR / SSIM ------------------------------------------------------------


def test_psnr_known_values() -> None:
    a = np.zeros((8, 8), np.uint8)
    b = np.full((8, 8), 16, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 256), abs=1e-12)
    assert psnr(a, a) == math.inf
    c = b.copy()
    c[0, 0] = 0  # border pixel: shaved away
    assert psnr(b, c, shave=1) == math.inf
    # multi-channel: MSE over all channels, as cv2.PSNR
    x = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    y = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert psnr(x, y) == pytest.approx(cv2.PSNR(x, y), abs=1e-9)
    assert psnr(x, y, y_channel=True) == pytest.approx(psnr(rgb2y(x), rgb2y(y)), abs=1e-12)


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_ssim_identical_and_luminance_only() -> None:
    x = np.random.default_rng(4).integers(0, 200, (32, 32), dtype=np.uint8)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    # constant images: only the luminance term remains
    a = np.full((20, 20), 100, np.uint8)
    b = np.full((20, 20), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    expect = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    assert ssim(a, b) == pytest.approx(expect, abs=1e-12)


def _ssim_bruteforce(x: np.ndarray, y: np.ndarray) -> float:
    """Direct ssim_index.m: explicit 11x11 window at every valid position."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = x.astype(float), y.astype(float)
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * px * px).sum() - mx * mx
            vy = (w * py * py).sum() - my * my
            cxy = (w * px * py).sum() - mx * my
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_direct_window_computation() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (19, 23), dtype=np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-30, 30, x.shape), 0, 255).astype(np.uint8)
    ref = _ssim_bruteforce(x, y)
    assert 0.3 < ref < 0.99
    assert ssim(x, y) == pytest.approx(ref, abs=1e-10)
    # colour: mean of the per-channel values
    xc = np.stack([x, y, x], axis=2)
    yc = np.stack([y, y, np.flipud(x)], axis=2)
    per = [_ssim_bruteforce(xc[..., k], yc[..., k]) for k in range(3)]
    assert ssim(xc, yc) == pytest.approx(np.mean(per), abs=1e-10)


def test_ssim_too_small() -> None:
    with pytest.raises(ValueError):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


# --- the published bicubic baselines (REFERENCE.md) -------------------------

PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
}


def _baseline(folder: Path, scale: int) -> tuple[float, float, int]:
    ps, ss = [], []
    for f in sorted(folder.glob("*.png")):
        hr = modcrop(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), scale)
        lr = imresize(hr, 1 / scale)
        sr = imresize(lr, scale)
        ps.append(psnr(hr, sr, shave=scale, y_channel=True))
        ss.append(ssim(hr, sr, shave=scale, y_channel=True))
    return float(np.mean(ps)), float(np.mean(ss)), len(ps)


@pytest.mark.parametrize("dataset,scale", sorted(PUBLISHED))
def test_bicubic_baseline_matches_literature(shared_dir: Path, dataset: str, scale: int) -> None:
    p, s, n = _baseline(shared_dir / "datasets" / dataset, scale)
    assert n == {"Set5": 5, "Set14": 14}[dataset]
    ref_p, ref_s = PUBLISHED[(dataset, scale)]
    assert abs(p - ref_p) <= 0.03, f"{dataset} x{scale}: PSNR {p:.4f} vs published {ref_p}"
    assert abs(s - ref_s) <= 0.001, f"{dataset} x{scale}: SSIM {s:.5f} vs published {ref_s}"


def test_opencv_cubic_misses_the_baseline(shared_dir: Path) -> None:
    """The protocol matters: cv2.resize degradation does not reproduce the table."""
    ps = []
    for f in sorted((shared_dir / "datasets" / "Set5").glob("*.png")):
        hr = modcrop(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), 4)
        h, w = hr.shape[:2]
        lr = cv2.resize(hr, (w // 4, h // 4), interpolation=cv2.INTER_CUBIC)
        sr = cv2.resize(lr, (w, h), interpolation=cv2.INTER_CUBIC)
        ps.append(psnr(hr, sr, shave=4, y_channel=True))
    assert abs(float(np.mean(ps)) - 28.42) > 0.1
