"""Tiled inference: no seams (tiled == untiled within 1 grey level), automatic
tiling above the pixel budget, and refusal of absurd sizes before allocating."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import pipeline
from standin import _standin_dir, edsr_standin  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def image(shared_dir: Path) -> np.ndarray:
    """A 70x90 textured crop of Set14 baboon (sizes not multiples of the tiles)."""
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(img[200:270, 150:240])


def maxdiff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("name,scale", [("espcn", 4), ("fsrcnn", 3), ("fsrcnn-small", 2), ("lapsrn", 4)])
def test_tiled_equals_untiled(models_env, image, name, scale):
    up = srzoo.Upscaler(name, scale)
    whole = up(image, tile=0)
    assert whole.shape == (70 * scale, 90 * scale, 3)
    for tile in (32, 41):
        tiled = up(image, tile=tile)
        assert maxdiff(tiled, whole) <= 1
    # without context the seams show: the test can tell tiling apart
    assert maxdiff(up(image, tile=32, overlap=0), whole) > 8


def test_tiled_edsr_standin_grey_uint16_bgra(edsr_standin, image):
    up = srzoo.Upscaler("edsr", 3)
    assert maxdiff(up(image, tile=30), up(image, tile=0)) <= 1
    grey16 = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    assert maxdiff(up(grey16, tile=25), up(grey16, tile=0)) <= 257
    bgra = np.dstack((image, image[:, :, 1]))
    t, w = up(bgra, tile=25), up(bgra, tile=0)
    assert t.shape == (210, 270, 4) and maxdiff(t, w) <= 1


def test_lapsrn_pyramid_tiled(models_env, image):
    up = srzoo.Upscaler("lapsrn", 4)
    small = image[:40, :50]
    a, b = up.upscale_all(small, tile=24), up.upscale_all(small, tile=0)
    assert sorted(a) == [2, 4]
    for s in (2, 4):
        assert a[s].shape == (40 * s, 50 * s, 3) and maxdiff(a[s], b[s]) <= 1


def test_default_overlap_follows_the_manifest():
    get = srzoo.get_model
    assert pipeline.default_overlap(get("espcn", 4)) == 4
    assert pipeline.default_overlap(get("lapsrn", 8)) == 24
    assert pipeline.default_overlap(get("edsr", 2)) == 68  # under the cap
    assert pipeline.default_overlap(get("realesrgan-x4plus-ncnn", 4)) == pipeline.MAX_OVERLAP == 96
    assert pipeline.default_overlap(get("realesr-animevideov3-ncnn", 2)) == pipeline.DEFAULT_OVERLAP
    assert pipeline.default_overlap(get("nearest", 2)) == pipeline.MIN_OVERLAP  # 1: bilinear chroma needs 2


def test_tiles_cover_every_pixel_once_with_one_input_shape():
    h, w, tile, ov = 70, 93, 32, 5
    seen = np.zeros((h, w), int)
    shapes = set()
    for (y0, y1, x0, x1), (py0, py1, px0, px1) in pipeline.tiles(h, w, tile, ov):
        seen[y0:y1, x0:x1] += 1
        # at least `ov` of context wherever the core is not at the image's edge
        assert py0 <= max(0, y0 - ov) and py1 >= min(h, y1 + ov)
        assert px0 <= max(0, x0 - ov) and px1 >= min(w, x1 + ov)
        assert 0 <= py0 and py1 <= h and 0 <= px0 and px1 <= w
        shapes.add((py1 - py0, px1 - px0))
    assert (seen == 1).all()
    # one network-input shape, never larger than tile + 2 overlap: 70 = 2 windows
    # of 40 (edge cores 35), 93 = 3 windows of 38
    assert shapes == {(40, 38)}
    assert [c for c, _ in pipeline.tiles(70, 93, 32, 5)][:3] == \
        [(0, 35, 0, 32), (0, 35, 32, 60), (0, 35, 60, 93)]
    # no overlap: equal tiles; an image no larger than one window: one tile
    assert {(b - a, d - c) for _, (a, b, c, d) in pipeline.tiles(100, 90, 30, 0)} == {(25, 30)}
    assert list(pipeline.tiles(50, 60, 20, 20)) == [((0, 50, 0, 60), (0, 50, 0, 60))]


def test_automatic_tiling_above_budget(models_env, image, monkeypatch):
    up = srzoo.Upscaler("fsrcnn", 2)
    whole = up(image, tile=0)
    shapes: list[tuple[int, ...]] = []
    real_run = up.runner.run

    def counting(blob):  # our own runner wrapped to count calls; OpenCV still runs
        shapes.append(blob.shape)
        return real_run(blob)

    monkeypatch.setattr(up.runner, "run", counting)
    up(image)
    assert len(shapes) == 1  # 6300 px: under the default budget
    monkeypatch.setenv("SRZOO_AUTO_TILE_PIXELS", "1000")
    monkeypatch.setattr(pipeline, "AUTO_TILE", 32)
    shapes.clear()
    out = up(image)
    # the overlap is FSRCNN's receptive field from its manifest, not the 24-px default
    assert up.entry.receptive_field == 8 and pipeline.default_overlap(up.entry) == 8
    # 2 x 3 windows of at most 32 + 2 x 8, every one the same shape: engines that
    # allocate per input shape allocate once (70 = 2 x 43 - 16, 90 = 3 x 41 - 2 x 16)
    assert len(shapes) == 6 and set(shapes) == {(1, 43, 41, 1)}  # NHWC (TF graph)
    assert maxdiff(out, whole) <= 1


def test_absurd_sizes_are_refused_without_allocating(models_env):
    # zero-stride views: 3.6 G pixels that take no memory
    huge_grey = np.broadcast_to(np.zeros(1, np.uint8), (60000, 60000))
    with pytest.raises(srzoo.ImageError, match=r"60000x60000 input at x2 gives 120000x120000 .*SRZOO_MAX_PIXELS"):
        srzoo.upscale(huge_grey, "bicubic", 2)
    big_bgr = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (12000, 16000, 3))
    with pytest.raises(srzoo.ImageError, match=r"above the limit of 1074 MP"):
        srzoo.upscale(big_bgr, "espcn", 3)


def test_size_limit_is_configurable(models_env, image, monkeypatch):
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "10000")
    with pytest.raises(srzoo.ImageError, match=r"90x70 input at x2 gives 180x140"):
        srzoo.upscale(image, "bicubic", 2)
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "1000000")
    assert srzoo.upscale(image, "bicubic", 2).shape == (140, 180, 3)


def test_bad_tile_arguments(models_env, image):
    up = srzoo.Upscaler("fsrcnn-small", 2)
    with pytest.raises(srzoo.SrzooError, match="tile must be a positive"):
        up(image, tile=-4)
    with pytest.raises(srzoo.SrzooError, match="overlap must be >= 0"):
        up(image, tile=16, overlap=-1)


def test_result_larger_than_free_memory_is_refused(models_env, image, monkeypatch):
    # pretend the machine has 100 kB left (half of it free, the rest reclaimable cache):
    # the 180x140x3 result (75 kB) fits, x4 (302 kB) does not
    monkeypatch.setattr(pipeline, "free_memory", lambda: 50_000)
    monkeypatch.setattr(pipeline, "available_memory", lambda: 100_000)
    assert srzoo.upscale(image, "bicubic", 2).shape == (140, 180, 3)
    with pytest.raises(srzoo.ImageError, match=r"x4 result of a 90x70 input needs 0.3 MiB but only 0.1 MiB of memory"):
        srzoo.upscale(image, "bicubic", 4)


def test_memory_refusal_bites_just_above_one_times(models_env, image, monkeypatch):
    """The refusal compares the result's bytes with what is available, not a multiple:
    the x2 result of the 90x70 BGR input is 180*140*3 = 75600 bytes."""
    monkeypatch.setattr(pipeline, "free_memory", lambda: 0)  # always ask available_memory
    monkeypatch.setattr(pipeline, "available_memory", lambda: 75_600)
    assert srzoo.upscale(image, "bicubic", 2).shape == (140, 180, 3)
    monkeypatch.setattr(pipeline, "available_memory", lambda: 75_599)
    with pytest.raises(srzoo.ImageError, match=r"x2 result of a 90x70 input needs 0.1 MiB but only 0.1 MiB"):
        srzoo.upscale(image, "bicubic", 2)
    # MemFree alone large enough: accepted without asking for MemAvailable
    monkeypatch.setattr(pipeline, "free_memory", lambda: 75_600)
    assert srzoo.upscale(image, "bicubic", 2).shape == (140, 180, 3)


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_available_memory_counts_reclaimable_cache():
    """MemAvailable (free + reclaimable cache), never the smaller MemFree."""
    info = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if ":" in l}
    got = pipeline.available_memory()
    assert abs(got - info["MemAvailable"]) < 256 * 2**20
    assert got >= info["MemFree"] - 256 * 2**20
