"""srzoo.evaluate.metrics.ms_ssim against a published implementation.

Reference values: pytorch-msssim 1.0.0 (https://github.com/VainF/pytorch-msssim),
``pytorch_msssim.ms_ssim(X, Y, data_range=255)`` with its defaults (11x11
Gaussian, sigma 1.5, K = (0.01, 0.03), weights 0.0448/0.2856/0.3001/0.2363/0.1333),
on the float64 Y planes (MATLAB rgb2ycbcr, ``srzoo.evaluate.metrics.to_y``) of the pairs
below, computed once on 2026-11-22 and written here; pytorch-msssim is not a
dependency. All sides are multiples of 16 so that no scale has an odd size
(implementations differ in how they pool an odd row). Its Gaussian window is
float32, hence the 1e-6 tolerance.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from srzoo.evaluate.metrics import imresize, ms_ssim, ssim

REFERENCE = {
    "baby-x2": 0.9947560927154414,
    "bird-x3": 0.9862844607137841,
    "barbara-x4": 0.9398357696341175,
    "lenna-x2": 0.9911387632187677,
    "butterfly-blur": 0.946289477037448,
    "zebra-bright": 0.9979440640201099,
}


def _pair(ds: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    if key == "butterfly-blur":
        hr = cv2.imread(str(ds / "Set5/butterfly.png"))[:224, :256]
        return hr, cv2.GaussianBlur(hr, (7, 7), 2.0)
    if key == "zebra-bright":
        hr = cv2.imread(str(ds / "Set14/zebra.png"))[:192, :320]
        return hr, cv2.add(hr, (20, 20, 20, 0))
    name, s = key.split("-x")
    s = int(s)
    folder = "Set5" if name in ("baby", "bird") else "Set14"
    hr = cv2.imread(str(ds / folder / f"{name}.png"))
    hr = hr[:240, :240] if s == 3 else hr[:256, :256]
    return hr, imresize(imresize(hr, 1 / s), s)


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_ms_ssim_matches_pytorch_msssim(shared_dir: Path, key: str) -> None:
    a, b = _pair(shared_dir / "datasets", key)
    assert ms_ssim(a, b, y_channel=True) == pytest.approx(REFERENCE[key], abs=1e-6)


def test_ms_ssim_identity_order_and_size_limit(shared_dir: Path) -> None:
    hr = cv2.imread(str(shared_dir / "datasets/Set5/baby.png"))
    assert ms_ssim(hr, hr, y_channel=True, shave=2) == 1.0
    x2 = imresize(imresize(hr, 0.5), 2)
    x4 = imresize(imresize(hr, 0.25), 4)
    # worse degradation scores lower, and MS-SSIM is not plain SSIM
    m2, m4 = ms_ssim(hr, x2, y_channel=True, shave=2), ms_ssim(hr, x4, y_channel=True, shave=4)
    assert 0.5 < m4 < m2 < 1.0
    assert m2 != pytest.approx(ssim(hr, x2, y_channel=True, shave=2), abs=1e-3)
    with pytest.raises(ValueError, match="at least 176 px"):
        ms_ssim(hr[:175, :300], x2[:175, :300], y_channel=True)


def test_torch_twin_equals_numpy(shared_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    from srzoo.evaluate.metrics import to_y
    from srzoo.train.losses import ms_ssim_torch

    a, b = _pair(shared_dir / "datasets", "barbara-x4")
    ya, yb = (torch.from_numpy(to_y(v).astype(np.float64))[None, None] for v in (a, b))
    got = float(ms_ssim_torch(ya, yb, data_range=255.0)[0])
    assert got == pytest.approx(ms_ssim(a, b, y_channel=True), abs=1e-9)
