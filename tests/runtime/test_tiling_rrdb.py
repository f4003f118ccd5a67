"""Tiled = untiled within one grey level for the RRDB family (Real-ESRGAN x4plus).

Their theoretical receptive field (350 px) is far larger than any tile overlap
that is worth computing; the overlap rule (:data:`srzoo.runtime.pipeline.MAX_OVERLAP`,
96 px) is the context beyond which the output moves by less than a level
(measured in the docstring there). The old 24 px cap gave up to ~90 levels.

A real photo strip (Set14 baboon, the hardest texture of the set) 352x48, in
64 px tiles: the third and fourth tiles get their context cut 96 px inside the
image, so the rule is what is tested, not the image border. ~70k network
pixels on onnxruntime: about 30 s on 2 cores.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import pipeline

pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_realesrgan_x4plus_tiled_equals_untiled_within_one_level(models_env, shared_dir):
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[200:248, 100:452]
    up = srzoo.Upscaler("realesrgan-x4plus-ncnn", 4, backend="onnxruntime:cpu")
    assert pipeline.default_overlap(up.entry) == 96
    boxes = [pad for _, pad in pipeline.tiles(48, 352, 64, 96)]
    # windows of one size clamped inside the image (edge cores get their context inward)
    assert boxes == [(0, 48, 0, 246), (0, 48, 53, 299), (0, 48, 106, 352)]
    whole = up.upscale(img, tile=0).astype(int)
    tiled = up.upscale(img, tile=64).astype(int)
    assert tiled.shape == whole.shape == (192, 1408, 3)
    d = np.abs(tiled - whole)
    assert d.max() <= 1, (d.max(), d.mean())
    # the old 24 px overlap is measurably wrong on the same strip (what the rule fixes)
    old = np.abs(up.upscale(img, tile=64, overlap=24).astype(int) - whole)
    assert old.max() > 8, old.max()
