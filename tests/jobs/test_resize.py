"""srzoo.jobs.resize without running a network: which model scale runs, the exact
output size, and the error for each request it refuses (fast: the mutation run
of jobs/resize uses this file first; the end-to-end cases are in test_batch.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.errors import SrzooError, UnknownModel
from srzoo.jobs import resize


@pytest.mark.parametrize("value,want", [(2, 2), ("3", 3), (3.0, 3), ("1.5", 1.5), (1, 1), (1.0001, 1.0001)])
def test_parse_scale(value, want):
    got = resize.parse_scale(value)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("value,msg", [
    ("x", "scale must be a number, got 'x'"), (None, "scale must be a number, got None"),
    (0, "scale must be a positive number, got 0"), (-2, "scale must be a positive number, got -2"),
    (float("inf"), "scale must be a positive number, got inf"), (True, "scale must be a positive number, got True"),
    (0.5, "scale 0.5 would shrink the image; srzoo only upscales (use >= 1)"),
    (0.999, "scale 0.999 would shrink"),
])
def test_parse_scale_refuses(value, msg):
    with pytest.raises(SrzooError) as e:
        resize.parse_scale(value)
    assert str(e.value).startswith(msg)


def test_target_size():
    assert resize.target_size(640, 480, scale=1.5) == (960, 720)
    assert resize.target_size(10, 7, scale=1.5) == (15, 10)  # 10.5 -> 10 (round half to even)
    assert resize.target_size(10, 7) == (20, 14)  # default x2
    assert resize.target_size(90, 70, width=100) == (100, 78)  # 77.8 rounds up
    assert resize.target_size(90, 70, height=100) == (129, 100)  # 128.6 rounds up
    assert resize.target_size(90, 70, width=120, height=50, stretch=True) == (120, 50)
    assert resize.target_size(90, 70, width=120, height=50) == (64, 50)  # fits inside both, aspect kept
    assert resize.target_size(1000, 1, width=1) == (1, 1)  # never 0 pixels
    assert resize.target_size(1, 1000, height=1) == (1, 1)
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(SrzooError, match=r"--width must be a positive whole number of pixels"):
            resize.target_size(10, 10, width=bad)
        with pytest.raises(SrzooError, match=r"--height must be a positive whole number of pixels"):
            resize.target_size(10, 10, height=bad)
    assert resize.target_size(10, 10, width=np.int64(30)) == (30, 30)


def test_pick_scale():
    assert resize.pick_scale([2, 3, 4], 1.5) == 2
    assert resize.pick_scale([4, 2, 3], 2) == 2  # sorted, smallest that fits
    assert resize.pick_scale([2, 3, 4], 2.01) == 3
    assert resize.pick_scale([2, 4, 8], 2.01) == 4
    assert resize.pick_scale([2, 4], 0.5) == 2  # below 1: the smallest
    assert resize.pick_scale([2, 4], 4 + 1e-12) == 4  # float noise is not a larger request
    assert resize.pick_scale([], 2.5) == 3 and resize.pick_scale([], 3) == 3
    assert resize.pick_scale([], 0.2) == 1 and resize.pick_scale([], 3 + 1e-12) == 3
    with pytest.raises(UnknownModel) as e:
        resize.pick_scale([2, 3], 3.5, "espcn")
    assert str(e.value).startswith("model 'espcn' has no x3.5; it has scales x2, x3 (srzoo runs a model "
                                   "scale at or above the request, then shrinks)")


def test_model_scales_and_is_native(srzoo_env):
    assert resize.model_scales("espcn") == [2, 3, 4]
    assert resize.model_scales(srzoo.get_model("espcn", 3)) == [3]
    assert resize.model_scales("bicubic") == []  # interpolation: scale-free
    assert resize.model_scales(42) == []
    assert resize.is_native([2, 3], 10, 8, (30, 24)) == 3
    assert resize.is_native([2, 3], 10, 8, (40, 32)) is None
    assert resize.is_native([], 10, 8, (50, 40)) == 5  # any integer scale (interpolation)
    assert resize.is_native([2], 10, 8, (20, 17)) is None


def test_choose():
    assert resize.choose([2, 3, 4], 64, 48, scale=1.5) == (2, (96, 72))
    assert resize.choose([2, 3, 4], 64, 48, scale=3) == (3, (192, 144))
    assert resize.choose([4], 64, 48, scale=3) == (4, (192, 144))
    assert resize.choose([2, 4], 90, 70, width=100) == (2, (100, 78))
    assert resize.choose([2, 4], 10, 10, width=30, height=21, stretch=True) == (4, (30, 21))  # the larger side's need
    assert resize.choose([2, 4], 10, 10, width=21, height=30, stretch=True) == (4, (21, 30))
    assert resize.choose([], 10, 10, scale=2.5) == (3, (25, 25))
    assert resize.choose([2], 10, 10, width=10) == (2, (10, 10))  # 1x: the smallest scale, then shrink
    with pytest.raises(SrzooError, match=r"the requested 5x5 is smaller than the 10x10 input; srzoo only upscales"):
        resize.choose([2], 10, 10, width=5)
    with pytest.raises(UnknownModel, match="model 'm' has no x5"):
        resize.choose([2, 4], 10, 10, scale=5, model="m")


def test_plan_names_the_model(srzoo_env):
    assert resize.plan("espcn", 64, 48, scale=1.5) == (2, (96, 72))
    with pytest.raises(UnknownModel, match="model 'espcn' has no x5"):
        resize.plan("espcn", 64, 48, scale=5)
    with pytest.raises(UnknownModel, match="model 'espcn' has no x5"):
        resize.plan(srzoo.get_model("espcn", 4), 64, 48, scale=5)


def test_resize_down():
    img = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    assert resize.resize_down(img, (6, 8)) is img  # the size already: untouched
    got = resize.resize_down(img, (3, 4))
    assert np.array_equal(got, cv2.resize(img, (3, 4), interpolation=cv2.INTER_AREA))
    grey = img[:, :, :1]
    out = resize.resize_down(grey, (3, 4))
    assert out.shape == (4, 3, 1) and np.array_equal(out[:, :, 0], cv2.resize(grey[:, :, 0], (3, 4),
                                                                                interpolation=cv2.INTER_AREA))
    assert resize.resize_down(img[:, :, 0], (3, 4)).shape == (4, 3)
    assert resize.DOWN_FILTER == "INTER_AREA"


def test_wants_resize(srzoo_env):
    assert resize.wants_resize("espcn", 2) is False
    assert resize.wants_resize("espcn", "3") is False
    assert resize.wants_resize("espcn", 1.5) is True
    assert resize.wants_resize("espcn", 8) is True
    assert resize.wants_resize("espcn", 2, width=100) is True
    assert resize.wants_resize("espcn", 2, height=100) is True
    assert resize.wants_resize("bicubic", 7) is False  # interpolation: any integer scale


def test_boundaries_found_by_mutation_testing(srzoo_env):
    assert resize.target_size(1, 1, scale=1.2) == (1, 1)  # 1.2 rounds to 1, never forced up
    assert resize.target_size(1, 1, scale=1.4) == (1, 1)
    with pytest.raises(UnknownModel) as e:
        resize.pick_scale([2], 3)
    assert str(e.value).startswith("model 'model' has no x3;")
    assert str(e.value).endswith("use a smaller scale or size, or a model with a larger scale")
    with pytest.raises(UnknownModel, match=r"^model 'model' has no x4\.0000001; it has scales x2, x4 "):
        resize.pick_scale([2, 4], 4.0000001)  # not shown as "x4", which the model has
    with pytest.raises(UnknownModel, match=r"^model 'model' has no x4\.5; it has scales x2, x4 "):
        resize.pick_scale([2, 4], 4.5)
    with pytest.raises(UnknownModel, match="^model 'model' has no x5"):
        resize.choose([2], 10, 10, scale=5)
    assert resize.model_scales(srzoo.get_model("bicubic")) == []  # an entry without a scale
    assert resize.is_native([], 10, 8, (10, 8)) == 1 and resize.is_native([], 1, 1, (64, 64)) == 64
    assert resize.is_native([], 1, 1, (65, 65)) is None
    # the larger of the two factors decides the model scale, each on its own axis
    assert resize.choose([2, 3, 4], 10, 20, width=40, height=22, stretch=True) == (4, (40, 22))
    with pytest.raises(SrzooError, match=r"^the requested 8x4 is smaller than the 20x10 input; srzoo only upscales$"):
        resize.choose([2], 20, 10, width=8)
    assert resize.plan("espcn", 90, 70, width=100) == (2, (100, 78))
    # both sides given, the width binds: 60/90 < 100/70, so 70 * 60/90 = 46.7 -> 47 rows
    assert resize.target_size(90, 70, width=60, height=100) == (60, 47)
    assert resize.target_size(1000, 1, width=10, height=10) == (10, 1)  # 0.01 rows: never 0, never 2
    assert resize.target_size(1, 1000, width=10, height=10) == (1, 10)
    # without stretch by default, also through choose and plan
    assert resize.choose([2, 4], 30, 20, width=120, height=50) == (4, (75, 50))  # stretch: (120, 50)
    assert resize.plan("default", 30, 20, width=120, height=50) == (3, (75, 50))  # x3: it has one
    assert resize.plan("espcn", 90, 70, height=100) == (2, (129, 100))
    img = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3) * 3
    got = resize.resize_down(img, (4, 5))  # not a whole ratio: INTER_AREA differs from the default filter
    assert np.array_equal(got, cv2.resize(img, (4, 5), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(got, cv2.resize(img, (4, 5)))



# --- upscale_to on a real network, without cv2.dnn -------------------------------------------
# The built-in ONNX model ("default", x2/x3/x4, shipped in the package: nothing to download) on
# onnxruntime with one thread. Not cv2.dnn, and no network loaded before the test: the mutation
# run of jobs/resize forks a child per mutant, and a cv2.dnn net or a thread pool inherited over
# a fork hangs there (which is why test_batch.py's end-to-end case is outside its mapping).
ORT = dict(backend="onnxruntime", threads=1)


@pytest.fixture
def bird(srzoo_env, shared_dir):
    pytest.importorskip("onnxruntime")
    from srzoo.runtime import upscaler
    upscaler.clear_cache()  # a runner loaded in another process (before a fork) is never reused
    yield np.ascontiguousarray(cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:18, :24])
    upscaler.clear_cache()


def test_upscale_to_runs_the_smallest_model_scale_then_shrinks(bird):
    x2 = srzoo.upscale(bird, "default", 2, **ORT)
    x3 = srzoo.upscale(bird, "default", 3, **ORT)
    # the network did run: its x2 is not bicubic's (measured: up to 6 levels apart on this crop)
    assert np.abs(x2.astype(int) - cv2.resize(bird, (48, 36), interpolation=cv2.INTER_CUBIC)).max() >= 4
    got = resize.upscale_to(bird, "default", 1.5, **ORT)
    assert np.array_equal(got, cv2.resize(x2, (36, 27), interpolation=cv2.INTER_AREA))
    assert np.array_equal(resize.upscale_to(bird, "default", 3, **ORT), x3)  # a model scale: untouched
    # the default model is srzoo.upscale's: the built-in one
    assert np.array_equal(resize.upscale_to(bird, scale=1.5, **ORT), got)
    # the model's own scales decide (not any integer scale, as for interpolation)
    with pytest.raises(UnknownModel, match=r"^model 'default' has no x4\.5; it has scales x2, x3, x4 "):
        resize.upscale_to(bird, "default", 4.5, **ORT)
    # 70/24 = 2.92 needs the x3 network; 18 * 70 / 24 = 52.5 -> 52
    assert np.array_equal(resize.upscale_to(bird, "default", width=70, **ORT),
                          cv2.resize(x3, (70, 52), interpolation=cv2.INTER_AREA))
    assert np.array_equal(resize.upscale_to(bird, "default", height=30, **ORT),
                          cv2.resize(x2, (40, 30), interpolation=cv2.INTER_AREA))
    # both sides: the largest that fits keeping the aspect ratio, or exactly both with stretch
    assert np.array_equal(resize.upscale_to(bird, "default", width=40, height=27, **ORT),
                          cv2.resize(x2, (36, 27), interpolation=cv2.INTER_AREA))
    assert np.array_equal(resize.upscale_to(bird, "default", width=40, height=27, stretch=True, **ORT),
                          cv2.resize(x2, (40, 27), interpolation=cv2.INTER_AREA))


def test_upscale_to_passes_every_option_on(bird):
    from srzoo.runtime import upscaler
    calls: list[tuple[int, int]] = []
    big = np.tile(bird, (4, 4, 1))  # 72x96: 8-pixel cores with the default model's 24 px of context
    got = resize.upscale_to(big, "default", 1.5, tile=8, progress=lambda d, t: calls.append((d, t)), **ORT)
    # windows of 8 + 2 x 24 = 56 px clamped inside the image: 3 down x 6 across, each reported
    assert calls == [(i, 18) for i in range(1, 19)]
    assert got.shape == (108, 144, 3)
    calls.clear()
    got = resize.upscale_to(bird, "default", 1.5, progress=lambda d, t: calls.append((d, t)), **ORT)
    assert calls == [(1, 1)]  # without tile=: one untiled run
    # the one network loaded is the x2 one on the backend, threads and precision asked for
    assert [(k[0].scale, k[1], k[3], k[4]) for k in upscaler._cache] == [(2, "onnxruntime", 1, "")]
    assert got.shape == (27, 36, 3)
    upscaler.clear_cache()
    resize.upscale_to(bird, "default", 1.5, backend="onnxruntime", threads=2, precision="fp32")
    assert [(k[0].scale, k[1], k[3], k[4]) for k in upscaler._cache] == [(2, "onnxruntime", 2, "fp32")]
    # each option reaches the layer that checks it
    with pytest.raises(SrzooError, match=r"^unknown backend 'bogus'"):
        resize.upscale_to(bird, "default", 1.5, backend="bogus")
    with pytest.raises(SrzooError, match=r"^threads must be a positive integer or None, got 0"):
        resize.upscale_to(bird, "default", 1.5, threads=0)
    with pytest.raises(SrzooError, match=r"^precision must be one of"):
        resize.upscale_to(bird, "default", 1.5, precision="bogus", **ORT)
    with pytest.raises(SrzooError, match=r"^memory='bogus' is not valid"):
        resize.upscale_to(bird, "default", 1.5, memory="bogus", **ORT)
    with pytest.raises(SrzooError, match=r"tile must be"):
        resize.upscale_to(bird, "default", 1.5, tile=-1, **ORT)


def test_upscale_to_checks_a_file_at_the_scale_it_will_run(bird, tmp_path, monkeypatch):
    path = tmp_path / "bird.png"
    cv2.imwrite(str(path), bird)
    # x1.5 runs the x2 network: a file whose x2 result is over the limit is refused before
    # decoding, with its name (the pipeline's own check would not name it)
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(48 * 36 - 1))
    with pytest.raises(srzoo.ImageError) as e:
        resize.upscale_to(path, "default", 1.5, **ORT)
    assert str(e.value).startswith(str(path)) and "gives 48x36 at x2" in str(e.value)
    # a size at the input's own size (no scale given): checked at x1, so it passes
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(24 * 18))
    assert np.array_equal(resize.upscale_to(path, "bicubic", width=24), bird)
