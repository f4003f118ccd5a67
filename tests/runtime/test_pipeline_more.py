"""More exact values through srzoo.runtime.pipeline, for what test_pipeline_values.py leaves open:
network outputs of other shapes (H x W, flat, the wrong scale: exact error lines), a range of 2
and a mean of 1 (the two values where ``_to_depth`` could skip its work), the alpha clip of
``finish``, the bands and threads of ``_in_strips`` and the default number of threads.

The networks are the tiny ONNX ones of test_pipeline_values.py (1x1 convolution ``g * x + b``,
then DepthToSpace), registered through a manifest and run on onnxruntime by srzoo.Upscaler;
expected values are computed here from the io rules.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import srzoo
from srzoo.hub.manifest import IOSpec
from srzoo.runtime import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from standin import write_manifest  # noqa: E402
from test_pipeline_values import (BACKEND, GAIN, MAXV, OFFSET, _y_candidates, expect,  # noqa: E402
                                  models, same, texture)  # noqa: F401 (models: a fixture)


def _y_net(path: Path, s: int, gain: float, offset: float, tail: str | None) -> None:
    """A Y network (1 x 1 x h x w in): ``gain * x + offset`` over each s x s block, its output
    1 x 1 x sh x sw, or ``tail="hw"``: squeezed to sh x sw, ``tail="flat"``: one axis."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.full((s * s, 1, 1, 1), gain, np.float32), "W"),
             numpy_helper.from_array(np.full(s * s, offset, np.float32), "B")]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["f"], kernel_shape=[1, 1]),
             helper.make_node("DepthToSpace", ["f"], ["d"], blocksize=s, mode="DCR")]
    shape: list = [1, 1, "H", "W"]
    if tail == "hw":
        inits.append(numpy_helper.from_array(np.array([0, 1], np.int64), "axes"))
        nodes.append(helper.make_node("Squeeze", ["d", "axes"], ["y"]))
        shape = ["H", "W"]
    elif tail == "flat":
        inits.append(numpy_helper.from_array(np.array([-1], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["d", "shape"], ["y"]))
        shape = ["N"]
    else:
        nodes.append(helper.make_node("Identity", ["d"], ["y"]))
    g = helper.make_graph(nodes, "ynet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "h", "w"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())


@pytest.fixture
def ynet(models, tmp_path, monkeypatch):
    """``ynet(name, scale, net_scale, tail, **io)``: a Y model registered as x``scale`` whose
    network upscales x``net_scale`` (0.9 x + 0.03), its output shaped by ``tail`` (see _y_net)."""
    models("ynet-dummy")  # the fixture's mirror folder (tmp_path / "files") is served from here on
    folder = tmp_path / "files"

    def make(name: str, scale: int, net_scale: int, tail: str | None, **io) -> srzoo.Upscaler:
        f = folder / f"{name}_x{scale}.onnx"
        _y_net(f, net_scale, 0.9, 0.03, tail)
        man = write_manifest(tmp_path / f"{name}.toml", f, name, scale, color="y", range=1.0,
                             layout="nchw", input="x", outputs=("y",), **io)
        monkeypatch.setenv("SRZOO_REGISTRY", str(man))
        return srzoo.Upscaler(name, scale, backend=BACKEND, threads=1, tile=0)

    return make


# --------------------------------------------------------------------------- output shapes
def test_a_two_dimensional_output_is_one_plane(ynet):
    """A network whose output is H x W (no batch or channel axis) gives that plane, for a grey
    image and for the Y of a colour one."""
    up = ynet("y-hw", 2, 2, "hw")
    grey = texture(5, 7, np.uint8, seed=20)[:, :, 0]
    want = np.clip(np.rint(0.9 * grey.astype(np.float64) + 0.03 * 255), 0, 255).repeat(2, 0).repeat(2, 1)
    same(up(grey), want)
    img = texture(5, 7, np.uint8, seed=21)
    (want,) = _y_candidates(img, 2, 0.9, 0.03, None)
    same(up(img), want)


def test_output_of_an_unexpected_rank_is_refused_with_its_shape(ynet):
    up = ynet("y-flat", 2, 2, "flat")
    with pytest.raises(srzoo.SrzooError) as e:
        up(texture(3, 4, np.uint8, seed=22)[:, :, 0])
    assert str(e.value) == "y-flat x2: unexpected output shape (48,)"


def test_output_of_the_wrong_scale_is_refused_with_the_input_size(ynet):
    """A network that upscales x3 registered as x2: the message gives the output's shape and
    the input as width x height (not square here: the two sides are told apart)."""
    up = ynet("y-x3-as-x2", 2, 3, None)
    with pytest.raises(srzoo.SrzooError) as e:
        up(texture(5, 7, np.uint8, seed=23)[:, :, 0])
    assert str(e.value) == "y-x3-as-x2 x2: network output (1, 15, 21) for a 7x5 input is not x2"


def test_pre_upsampled_model_of_the_wrong_scale_names_the_input_size(ynet):
    """A pre-upsampled model (its network should keep the size) whose network upscales x2 too:
    the message gives the size of the input before pre-upsampling, in whole pixels."""
    up = ynet("y-pre-x2", 2, 2, None, pre_upsample="bicubic")
    with pytest.raises(srzoo.SrzooError) as e:
        up(texture(5, 6, np.uint8, seed=32)[:, :, 0])
    assert str(e.value) == "y-pre-x2 x2: network output (1, 20, 24) for a 6x5 input is not x2"


# --------------------------------------------------------------------------- _to_depth's shortcut
def test_range_two_scales_float_input(models):
    """io.range = 2 with float32 input: the network input is 2 x the image (the one factor
    other than 1 where _to_depth could keep its input as it is), the result is halved."""
    up = models("range-2", layout="nhwc", range=2.0, gain=(0.5, 0.25, 0.4), offset=(0.3, 0.5, 0.1))
    img = texture(5, 6, np.float32, seed=24)
    same(up(img), expect(img, 2, range=2.0, gain=(0.5, 0.25, 0.4), offset=(0.3, 0.5, 0.1)))


def test_a_mean_of_one_is_added_back(models):
    """A float32 image, range 1, a mean of exactly 1 in one channel: the network's result gets
    1 added back (an offset of 1 with a factor of 1 is still work to do)."""
    mean = (1.0, 0.5, 0.125)
    up = models("mean-1", layout="nchw", mean=mean)
    img = texture(6, 5, np.float32, seed=25)
    want = expect(img, 2, mean=mean)
    assert want[:, :, 0].max() > 0.5  # channel 0 is not all clipped away
    same(up(img), want)


# --------------------------------------------------------------------------- pre_upsample
def _cubic_axis(n: int, s: int, a: float, symmetric: bool) -> np.ndarray:
    """The (n*s) x n matrix of an x``s`` cubic upscale along one axis: Keys' kernel with ``a``,
    pixel centres; borders mirrored (``symmetric``, MATLAB) or repeated (OpenCV)."""
    x = (np.arange(n * s) + 0.5) / s - 0.5
    x0 = np.floor(x)
    m = np.zeros((n * s, n))
    for k in (-1, 0, 1, 2):
        d = np.abs(x - x0 - k)
        wk = np.where(d <= 1, (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1,
                      a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a)
        i = (x0 + k).astype(int)
        i = np.where(i < 0, -i - 1, np.where(i >= n, 2 * n - i - 1, i)) if symmetric else np.clip(i, 0, n - 1)
        np.add.at(m, (np.arange(n * s), i), wk)
    return m


def _matlab_bicubic(img: np.ndarray, s: int) -> np.ndarray:
    """MATLAB's imresize(img, s, 'bicubic') for an upscale (a = -0.5, pixel centres, symmetric
    border), float64, unrounded."""
    rows, cols = (_cubic_axis(n, s, -0.5, True) for n in img.shape[:2])
    return np.einsum("ij,jkc,lk->ilc", rows, img.astype(np.float64), cols)


def test_pre_upsample_bicubic_matlab(models):
    """pre_upsample = "bicubic-matlab": the network (x1 here) is fed the image resized by MATLAB's
    bicubic, rounded (uint8: half away from zero; uint16: to the nearest level) and clipped
    to the dtype's range for integers, as it is (overshoot kept) for float32."""
    up = models("pre-matlab", (2,), pre_upsample="bicubic-matlab", gain=(1.0, 0.9, 1.1), offset=(0.0, 0.05, -0.021))
    for dtype in (np.uint8, np.uint16, np.float32):
        img = texture(5, 6, dtype, seed=31)
        big = _matlab_bicubic(img, 2)
        if dtype == np.uint8:
            big = np.clip(np.floor(big + 0.5), 0, 255)
        elif dtype == np.uint16:
            big = np.clip(np.rint(big), 0, 65535)
            assert (np.abs(big - _matlab_bicubic(img, 2)) > 0.25).sum() > 50  # rounding matters
        else:
            assert big.min() < 0 and big.max() > 1  # the overshoot the network sees
        got = up(img)
        assert got.dtype == dtype and got.shape == (10, 12, 3)
        same(got, expect(big.astype(dtype), 1, gain=(1.0, 0.9, 1.1), offset=(0.0, 0.05, -0.021)))


# --------------------------------------------------------------------------- finish: alpha
def test_finish_clips_the_network_alpha_at_both_ends():
    """finish() is given the network's result for the alpha plane. Through srzoo.Upscaler it is
    already in [0, 1] (float results are clipped per band), so this calls finish() directly,
    as for an engine whose alpha result is not: below 0 counts as 0 (no colour), above 1 as 1
    (the colour is not divided by more than 1), and the alpha returned is clipped; the colour
    divided by alpha is clipped to [0, 1] too."""
    bgr = np.array([[[0.2, 0.4, 0.6], [0.8, 0.1, 0.3]]], np.float32)  # 1 x 2
    bgra = np.dstack((bgr, np.array([[0.5, 1.0]], np.float32)))
    p = pipeline.prepare(bgra)
    assert p.premultiplied
    colour = p.color.repeat(2, 0).repeat(2, 1)  # what an identity x2 network gives
    colour[1, 0] = (-0.25, 0.5, 0.1)  # a result below 0, one above its alpha (0.25)
    alpha = np.array([[-0.5, 0.5, 1.0, 1.5], [0.25, 0.5, 2.0, 1.0]], np.float32)
    got = pipeline.finish(p, colour, 2, alpha)
    ua = np.clip(alpha.astype(np.float64), 0.0, 1.0)
    c = np.where((ua > 0)[:, :, None], np.clip(colour / np.maximum(ua, 1e-6)[:, :, None], 0.0, 1.0), 0.0)
    want = np.dstack((c, ua))
    assert got.dtype == np.float32 and got.shape == (2, 4, 4)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-7)
    assert got[0, 0, 3] == 0.0 and got[0, 3, 3] == 1.0 and got[1, 2, 3] == 1.0
    assert np.array_equal(got[0, 0, :3], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(got[1, 0], [0.0, 1.0, 0.4, 0.25], rtol=0, atol=1e-7)  # divided, clipped
    # lo > 0: a result below 0, divided, is clipped to 0 before [lo, hi] comes back (lo, not
    # below it: float results are only clipped to [min(0, lo), max(1, hi)] after that)
    q = pipeline.prepare(np.dstack((bgr * 2 + 0.5, np.array([[0.5, 1.0]], np.float32))))
    f32 = np.float32
    assert q.premultiplied and q.span == (float(f32(0.1) * 2 + f32(0.5)), float(f32(0.8) * 2 + f32(0.5)))
    hdr = pipeline.finish(q, np.full((2, 4, 3), -0.1, np.float32), 2, np.full((2, 4), 0.5, np.float32))
    assert np.array_equal(hdr[:, :, :3], np.full((2, 4, 3), q.span[0], np.float32))
    # alpha 1.5 and 2 count as 1: the premultiplied colour (x 0.5 and x 1) comes back as it is
    np.testing.assert_allclose(got[0, 3, :3], colour[0, 3], rtol=0, atol=0)
    np.testing.assert_allclose(got[1, 2, :3], colour[1, 2], rtol=0, atol=0)


def test_premultiplied_float_result_stays_within_the_input_span(models):
    """A float BGRA image outside [0, 1] with partial alpha: the colour divided by alpha and
    mapped back to [lo, hi] is clipped there. With these lo and hi, 1 maps to
    float32(hi - lo) + lo, one step above hi in float32 and in float64 alike: the clip to
    [lo, hi] must still apply (the result never goes above the input's largest value)."""
    lo, hi = np.float32(-0.57663846), np.float32(1.8478032)
    assert np.float32(np.float64(np.float32(float(hi) - float(lo))) + np.float64(lo)) > hi
    rng = np.random.default_rng(26)
    unit = rng.random((5, 6, 3), dtype=np.float32)
    unit[0, 0], unit[0, 1] = 0.0, 1.0
    bgr = unit * (hi - lo) + lo
    bgr[0, 0], bgr[0, 1] = lo, hi
    alpha = np.linspace(0.2, 1.0, 6, dtype=np.float32)[None].repeat(5, 0)
    up = models("hdr-alpha", gain=(1.0,) * 3, offset=(0.9,) * 3)
    got = up(np.dstack((bgr, alpha)))
    assert got.dtype == np.float32 and got.shape == (10, 12, 4)
    # alpha + 0.9 >= 1: alpha comes back 1, the colour is the network's value clipped to 1
    assert np.array_equal(got[:, :, 3], np.ones((10, 12), np.float32))
    u = (bgr.astype(np.float64) - lo) / (float(hi) - float(lo))
    want = np.minimum(u * alpha[:, :, None] + 0.9, 1.0) * (float(hi) - float(lo)) + lo
    np.testing.assert_allclose(got[:, :, :3], want.repeat(2, 0).repeat(2, 1), rtol=0, atol=1e-5)
    full = (u * alpha[:, :, None] >= 0.1 + 1e-6).repeat(2, 0).repeat(2, 1)
    assert full.sum() > 100
    assert (got[:, :, :3][full] == hi).all()
    assert got[:, :, :3].max() == hi


#: cv2's BGR -> grey weights (B, G, R): the alpha plane goes through a colour network as grey
GREY = (0.114, 0.587, 0.299)


@pytest.mark.parametrize("dtype, lo, hi", [(np.float32, 0.0, 1.0), (np.float64, 0.0, 1.0),
                                           (np.float32, -1.0, 0.5)])
def test_premultiplied_colour_divided_by_the_network_alpha_is_clipped(models, dtype, lo, hi):
    """Partial alpha through a network with other gains per channel: the alpha plane comes back
    as the grey of the network's three results for it, the colour (premultiplied) is divided by
    it and clipped to [0, 1] (channel 0's gain of 1.25 against ~0.7 for alpha: above 1 before
    the clip), then mapped back to [lo, hi] (-1, 0.5: above 1 would come back between 0.5 and 1,
    inside the clip to [min(0, lo), max(1, hi)] of float results). float64 comes back float64."""
    up = models("alpha-gains")  # GAIN, OFFSET
    rng = np.random.default_rng(29)
    unit = rng.random((5, 6, 3))
    unit[0, 0], unit[0, 1] = 0.0, 1.0
    bgr = (unit * (hi - lo) + lo).astype(dtype)
    alpha = np.linspace(0.2, 0.9, 6).astype(dtype)[None].repeat(5, 0)
    got = up(np.dstack((bgr, alpha)))
    assert got.dtype == dtype and got.shape == (10, 12, 4)
    a = alpha.astype(np.float32).astype(np.float64)
    g, b = np.array(GAIN), np.array(OFFSET)
    ua = sum(w * np.clip(g[c] * a + b[c], 0, 1) for c, w in enumerate(GREY))
    u = (bgr.astype(np.float32).astype(np.float64) - lo) / (hi - lo)
    colour = np.clip(np.clip(g * u * a[:, :, None] + b, 0, 1) / ua[:, :, None], 0, 1)
    want = np.dstack((colour * (hi - lo) + lo, ua)).repeat(2, 0).repeat(2, 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert (got[:, :, 0] == np.float32(hi)).sum() > 20  # clipped there: 1.25 * c / ~0.7 above 1


def test_uint_alpha_divides_by_the_network_alpha_not_its_rounding(models):
    """uint8/uint16 BGRA, small alpha levels, a network that adds a third of a level to every
    value: the colour is divided by the network's alpha as it is (a + 0.0013), not by that alpha
    rounded to the image's levels (a, for 8 bits: several levels off at these alphas)."""
    up = models("alpha-small", gain=(1.0,) * 3, offset=(0.0013,) * 3)
    for dtype in (np.uint8, np.uint16):
        top = MAXV[np.dtype(dtype)]
        bgr = texture(4, 6, dtype, seed=30)
        levels = np.array([1, 2, 3, 5, 8, 13]) * (1 if dtype == np.uint8 else 257)
        alpha = levels.astype(dtype)[None].repeat(4, 0)
        out = up(np.dstack((bgr, alpha)))
        a = alpha / top
        ua = a + 0.0013
        colour = np.clip((bgr / top * a[:, :, None] + 0.0013) / ua[:, :, None], 0, 1)
        want = np.dstack((np.rint(colour * top), np.rint(ua * top))).repeat(2, 0).repeat(2, 1)
        assert out.dtype == dtype
        # 16 bits: the pipeline's float32 arithmetic is finer than a level only up to one level
        assert np.abs(out.astype(np.float64) - want).max() <= (0 if dtype == np.uint8 else 1), dtype


def _constant_alpha(up, dtype, level) -> np.ndarray:
    bgr = texture(5, 7, dtype, seed=27)
    out = up(np.dstack((bgr, np.full((5, 7), level, dtype))))
    assert out.dtype == dtype and out.shape == (10, 14, 4)
    same(out[:, :, :3], expect(bgr, 2, gain=(1.0,) * 3, offset=(0.0,) * 3))
    return out[:, :, 3]


def test_constant_alpha_comes_back_at_its_level(models):
    """A constant alpha is not premultiplied: the colour goes through the network alone and the
    alpha comes back at the same level everywhere (float alpha clipped to [0, 1])."""
    up = models("alpha-const", gain=(1.0,) * 3, offset=(0.0,) * 3)
    for dtype, level, want in ((np.float32, 1.5, 1.0), (np.float32, -0.5, 0.0), (np.float32, 1.0, 1.0),
                               (np.uint8, 100, 100), (np.uint16, 40000, 40000)):
        a = _constant_alpha(up, dtype, level)
        assert np.array_equal(a, np.full((10, 14), want, dtype)), (dtype, level, np.unique(a))


def test_constant_float_alpha_keeps_its_exact_value(models):
    """Bicubic resizing of a constant float plane of 0.7 gave 0.70000005 and 0.7000001 in
    places (its weights sum to 1 only up to float error); fixed: the level is copied."""
    up = models("alpha-const-f", gain=(1.0,) * 3, offset=(0.0,) * 3)
    for level in (0.7, 0.123456):
        a = _constant_alpha(up, np.float32, level)
        assert np.array_equal(a, np.full((10, 14), level, np.float32)), (level, np.unique(a))


def _bicubic(plane: np.ndarray, s: int) -> np.ndarray:
    """cv2.resize's bicubic x``s`` (Keys, a = -0.75; pixel centres, edges repeated) in float64."""
    rows, cols = (_cubic_axis(n, s, -0.75, False) for n in plane.shape[:2])
    return rows @ plane.astype(np.float64) @ cols.T


def test_finish_without_the_network_alpha_resizes_it_bicubically():
    """finish() with no alpha result for a premultiplied image: its alpha is resized bicubically
    (the overshoot at edges clipped to [0, 1]) and the colour divided by it (0 where it is 0)."""
    rng = np.random.default_rng(28)
    bgr = rng.random((4, 6, 3), dtype=np.float32)
    alpha = np.array([0.0, 1.0, 1.0, 0.25, 0.25, 1.0], np.float32)[None].repeat(4, 0)
    alpha[3] = alpha[3, ::-1]
    p = pipeline.prepare(np.dstack((bgr, alpha)))
    assert p.premultiplied
    colour = p.color.repeat(2, 0).repeat(2, 1)
    got = pipeline.finish(p, colour, 2)
    ua = _bicubic(alpha, 2)
    assert ua.min() < -0.05 and ua.max() > 1.05  # overshoot both ways, to be clipped
    ua = np.clip(ua, 0.0, 1.0)
    np.testing.assert_allclose(got[:, :, 3], ua, rtol=0, atol=3e-7)
    c = np.clip(colour / np.maximum(ua, 1e-6)[:, :, None], 0.0, 1.0)
    seen = ua > 0.05
    np.testing.assert_allclose(got[:, :, :3][seen], c[seen], rtol=0, atol=1e-5)
    assert (got[:, :, :3][ua == 0] == 0).all() and (ua == 0).sum() >= 4


# --------------------------------------------------------------------------- bands and threads
def _record():
    seen: list[tuple[int, int, int]] = []  # (r0, r1, thread ident)

    def fn(r0: int, r1: int) -> None:
        seen.append((r0, r1, threading.get_ident()))
    return seen, fn


def test_bands_one_per_worker():
    """One band per worker, rounded up (the last shorter); never an empty band."""
    for h, workers, want in ((10, 4, [(0, 3), (3, 6), (6, 9), (9, 10)]),
                             (3, 4, [(0, 1), (1, 2), (2, 3)]),  # fewer rows than workers
                             (10, 1, [(0, 10)]),
                             (7, 2, [(0, 4), (4, 7)])):
        seen, fn = _record()
        pipeline._in_strips(h, fn, workers, 1)
        assert sorted(b[:2] for b in seen) == want, (h, workers)


def test_bands_capped_by_band_pixels(monkeypatch):
    monkeypatch.setattr(pipeline, "BAND_PIXELS", 10)
    seen, fn = _record()
    pipeline._in_strips(10, fn, 1, 1)  # 10 rows of 1 pixel: exactly BAND_PIXELS, one band
    assert [b[:2] for b in seen] == [(0, 10)]
    seen, fn = _record()
    pipeline._in_strips(10, fn, 1, 3)  # 3 rows of 3 pixels per band
    assert [b[:2] for b in seen] == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_bands_run_on_the_caller_thread_with_one_worker_or_one_band(monkeypatch):
    me = threading.get_ident()
    monkeypatch.setattr(pipeline, "BAND_PIXELS", 10)
    seen, fn = _record()
    pipeline._in_strips(10, fn, 1, 3)  # one worker, 4 bands: in order, here
    assert seen == [(0, 3, me), (3, 6, me), (6, 9, me), (9, 10, me)]
    seen, fn = _record()
    pipeline._in_strips(1, fn, 3, 1)  # 3 workers, one band: here
    assert seen == [(0, 1, me)]


def test_bands_run_on_the_pool_of_that_many_threads(monkeypatch):
    """Several bands and workers: the bands run on the threads of the pool made for that
    number of workers (not on the caller's thread, not on a pool of another size)."""
    monkeypatch.setattr(pipeline, "_pools", {})  # this test's pools only (shut down below)
    try:
        for workers, h in ((2, 4), (3, 6)):
            seen, fn = _record()
            pipeline._in_strips(h, fn, workers, 1)
            assert sorted(b[:2] for b in seen) == [(r, r + h // workers) for r in range(0, h, h // workers)]
            pool = pipeline._pools[workers]
            assert pool._max_workers == workers
            threads = {t.ident for t in pool._threads}
            assert threading.get_ident() not in threads
            assert {b[2] for b in seen} <= threads
        assert sorted(pipeline._pools) == [2, 3]
    finally:
        for pool in pipeline._pools.values():
            pool.shutdown()


# --------------------------------------------------------------------------- threads
class _Runner:
    input_layout = "nchw"

    def run(self, blob):  # pragma: no cover - never run here
        raise AssertionError


def test_default_threads_follow_the_cpu_count(monkeypatch):
    """threads=None (or 0): one per CPU, at least 1 (also when the count is unknown), at
    most 8. os.cpu_count is replaced: this machine has one count only."""
    entry = type("E", (), dict(io=IOSpec(layout="nchw"), scale=2, name="t", manifest="m"))()
    for cpus, want in ((1, 1), (None, 1), (2, 2), (8, 8), (9, 8), (16, 8)):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        assert pipeline.ModelPipeline(entry, _Runner()).workers == want, cpus
        assert pipeline.ModelPipeline(entry, _Runner(), threads=0).workers == want, cpus
        assert pipeline.ModelPipeline(entry, _Runner(), threads=3).workers == 3


# --------------------------------------------------------------------------- memory probes
def test_free_memory_is_free_pages_times_the_page_size(monkeypatch):
    real = pipeline.free_memory()  # this machine (Linux): a whole number of pages
    assert isinstance(real, int) and real > 0 and real % os.sysconf("SC_PAGE_SIZE") == 0
    # a known page count cannot be set here: os.sysconf is replaced (unknown names raise
    # ValueError, as os.sysconf does)
    table = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}

    def sysconf(name):
        if name not in table:
            raise ValueError("unrecognized configuration name")
        return table[name]

    monkeypatch.setattr(os, "sysconf", sysconf)
    assert pipeline.free_memory() == 4_096_000
    del table["SC_PAGE_SIZE"]
    assert pipeline.free_memory() is None


def _proc(monkeypatch, path: str, text: str | None) -> None:
    """/proc's files cannot be given chosen values here: open() as pipeline sees it serves
    ``text`` for ``path`` (None: OSError)."""
    import io

    def fake_open(name, *a, **k):
        assert name == path, name
        if text is None:
            raise OSError(2, "No such file or directory", name)
        return io.StringIO(text)

    monkeypatch.setattr(pipeline, "open", fake_open, raising=False)


def test_available_memory_reads_memavailable_else_memfree(monkeypatch):
    monkeypatch.setattr(pipeline, "free_memory", lambda: 777)
    for text, want in (("MemTotal:  9000 kB\nMemFree:   10 kB\nMemAvailable:  123456 kB\nCached: 1 kB\n",
                        123456 * 1024),
                       ("MemTotal:  9000 kB\nMemFree:   10 kB\n", 777),      # an old kernel: MemFree
                       ("MemAvailable:  lots kB\n", 777),                      # unreadable: MemFree
                       ("MemAvailable:\n", 777),
                       (None, 777)):                                           # no /proc: MemFree
        _proc(monkeypatch, "/proc/meminfo", text)
        assert pipeline.available_memory() == want, text


def test_resident_memory_reads_vmrss(monkeypatch):
    for text, want in (("Name: python\nVmPeak:  9999 kB\nVmRSS:  2048 kB\nRssAnon: 5 kB\n", 2048 * 1024),
                       ("Name: python\n", None), ("VmRSS: many kB\n", None), ("VmRSS:\n", None),
                       (None, None)):
        _proc(monkeypatch, "/proc/self/status", text)
        assert pipeline.resident_memory() == want, text


def test_default_memory_budget_rules(monkeypatch):
    """SRZOO_MEMORY unset: a quarter of the available memory (whole bytes), at most
    DEFAULT_MEMORY; with the resident memory known, at most DEFAULT_PEAK - resident - reserve
    but not below 3/4 of the first rule (whole bytes); never below MIN_MEMORY. The machine's
    memory cannot be chosen here: available_memory and resident_memory are replaced."""
    monkeypatch.delenv("SRZOO_MEMORY", raising=False)
    G, M = 2 ** 30, 2 ** 20
    state = {}
    monkeypatch.setattr(pipeline, "available_memory", lambda: state["avail"])
    monkeypatch.setattr(pipeline, "resident_memory", lambda: state["rss"])
    for avail, rss, reserve, want in (
            (None, None, 0, pipeline.DEFAULT_MEMORY),  # unknown: the default
            (0, None, 0, pipeline.DEFAULT_MEMORY),
            (4 * G + 3, None, 0, G),  # a quarter, rounded down
            (5 * G, None, 0, 5 * G // 4),
            (7 * G, None, 0, pipeline.DEFAULT_MEMORY),  # at most DEFAULT_MEMORY
            (100 * M, None, 0, pipeline.MIN_MEMORY),  # 25 MiB: raised to MIN_MEMORY
            (8 * G, 512 * M, 0, pipeline.DEFAULT_MEMORY),  # 2G - 512M = 1.5G exactly: no byte less
            (8 * G, 512 * M, 100 * M, 1436 * M),  # 2048 - 512 - 100
            (8 * G, 512 * M, -5, pipeline.DEFAULT_MEMORY),  # a negative reserve counts 0
            (8 * G, G, 100 * M, 1152 * M),  # 924 MiB left: 3/4 of 1.5G instead
            (4 * (G + 1), 3 * G // 2, 0, (G + 1) * 3 // 4)):  # 3/4 of an odd budget, rounded down
        state.update(avail=avail, rss=rss)
        got = pipeline.memory_budget(None, reserve) if reserve else pipeline.memory_budget()
        assert type(got) is int and got == want, (avail, rss, reserve, got, want)


def test_memory_budget_refuses_what_is_not_a_byte_count():
    for bad in (True, False, 1.5, -1, [1]):
        with pytest.raises(srzoo.SrzooError) as e:
            pipeline.memory_budget(bad)
        assert str(e.value) == f"memory must be a number of bytes >= 0 or a size such as '1.5G', got {bad!r}"
    assert pipeline.memory_budget(np.int64(5 * 2 ** 20)) == 5 * 2 ** 20


def test_automatic_tiling_starts_above_the_pixel_limit(models, monkeypatch):
    """tile=None: tiles of AUTO_TILE (512) once the input has more pixels than
    SRZOO_AUTO_TILE_PIXELS (not at exactly that many): progress tells the tiles; the values
    are the same either way."""
    up = models("auto-tile")
    img = texture(20, 600, np.uint8, seed=33)  # 12000 pixels, wider than one tile
    want = expect(img, 2)
    for limit, calls in ((12000, [(1, 1)]), (11999, [(1, 2), (2, 2)]), (2 ** 20, [(1, 1)])):
        monkeypatch.setenv("SRZOO_AUTO_TILE_PIXELS", str(limit))
        seen: list[tuple[int, int]] = []
        out = up.pipeline.run(img, (2,), None, progress=lambda d, t: seen.append((d, t)))
        same(out[2], want)
        assert seen == calls, limit


def test_explicit_tiles_down_to_one_pixel(models):
    """tile=1 is a tile size like any other (one input pixel per tile, no overlap: a 1x1
    network gives the same values); below 1 is refused with the value."""
    up = models("tile-one")
    img = texture(3, 4, np.uint8, seed=34)
    seen: list[tuple[int, int]] = []
    out = up.pipeline.run(img, (2,), 1, 0, progress=lambda d, t: seen.append((d, t)))
    same(out[2], expect(img, 2))
    assert seen == [(i, 12) for i in range(1, 13)]
    with pytest.raises(srzoo.SrzooError) as e:
        up.pipeline.run(img, (2,), -1)
    assert str(e.value) == "tile must be a positive number of pixels, got -1"


# --------------------------------------------------------------------------- prepare
def test_prepare_refusals_name_the_image_and_say_what_works():
    """prepare()'s one-line errors, with its default name ("image") and a given one."""
    cases = (([[1, 2]], "expected a numpy array, got list"),
             (np.zeros((2, 2), np.int32), "unsupported dtype int32 (use uint8, uint16, or float32 in [0, 1])"),
             (np.zeros((2, 2, 2), np.uint8),
              "unsupported shape (2, 2, 2) (use H×W grey, H×W×3 BGR or H×W×4 BGRA)"),
             (np.zeros((2, 2, 3, 1), np.uint8),
              "unsupported shape (2, 2, 3, 1) (use H×W grey, H×W×3 BGR or H×W×4 BGRA)"),
             (np.zeros((0, 3), np.uint8), "empty image of shape (0, 3)"),
             (np.full((2, 2, 3), np.nan, np.float32),
              "holds NaN or infinite values; replace them (e.g. numpy.nan_to_num) before upscaling"),
             (np.dstack((np.zeros((2, 2, 3), np.float32), np.full((2, 2), np.inf, np.float32))),
              "its alpha channel holds NaN or infinite values"))
    for image, message in cases:
        for what in (None, "a.png"):
            with pytest.raises(srzoo.ImageError) as e:
                pipeline.prepare(image) if what is None else pipeline.prepare(image, what)
            assert str(e.value) == f"{what or 'image'}: {message}"


def test_prepare_splits_alpha_by_default_and_keeps_the_layout():
    bgr = texture(3, 4, np.uint8, seed=35)
    alpha = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    bgra = np.dstack((bgr, alpha))
    p = pipeline.prepare(bgra)
    assert p.premultiplied and np.array_equal(p.alpha, alpha) and p.color.shape == (3, 4, 3)
    assert p.keepdim is False and p.dtype == np.uint8 and p.span is None and p.clip is None
    whole = pipeline.prepare(bgra, split_alpha=False)  # what models that take the image whole get
    assert whole.alpha is None and not whole.premultiplied and whole.color is bgra
    one = pipeline.prepare(bgr[:, :, :1])
    assert one.keepdim is True and one.color.shape == (3, 4)
    for opaque in (bgr, np.dstack((bgr, np.full((3, 4), 255, np.uint8)))):  # nothing to premultiply
        q = pipeline.prepare(opaque)
        assert q.premultiplied is False and q.color.shape == (3, 4, 3)


def test_prepare_edges_of_what_is_accepted(models):
    """One pixel wide or tall is an image; a float image reaching 1.0 exactly (and not 0) is
    in [0, 1]: not rescaled (the network sees its values as they are)."""
    for shape in ((3, 1), (1, 3), (1, 1), (3, 1, 3)):
        assert pipeline.prepare(np.zeros(shape, np.uint8)).color.shape == shape
    img = texture(4, 5, np.float32, seed=36) * np.float32(0.8) + np.float32(0.2)
    img[0, 0, 0] = 1.0
    p = pipeline.prepare(img)
    assert p.span is None and p.clip == (0.0, 1.0) and p.color is img
    up = models("unit-top")
    same(up(img), expect(img, 2))
    # just above 1 (and not below 0) is outside [0, 1]: scaled from [lo, hi] into it
    hdr = img * np.float32(1.25)
    p = pipeline.prepare(hdr)
    assert p.span == (float(hdr.min()), 1.25) and p.clip == (0.0, 1.25)
    np.testing.assert_allclose(p.color, (hdr - hdr.min()) / (1.25 - hdr.min()), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- ModelPipeline's scales
def _pipe(scale, outputs: tuple[str, ...], output_scales: tuple[int, ...] = (), **kw):
    """A ModelPipeline for a stand-in entry and runner (nothing is run): its scales."""
    class Runner:
        input_layout = "nchw"
        output_names = outputs

        def run(self, blob):  # pragma: no cover - never run here
            raise AssertionError

    io = IOSpec(layout="nchw", outputs=outputs, output_scales=output_scales)
    entry = type("E", (), dict(io=io, scale=scale, name="net", manifest="m.toml"))()
    return pipeline.ModelPipeline(entry, Runner(), **kw)


def test_output_scales_from_the_manifest_or_the_model_scale():
    assert _pipe(2, ("o",)).scales == (2,)
    assert _pipe(2, ("o",), (2,)).scales == (2,)  # one output, its scale given
    assert _pipe(4, ("a", "b"), (2, 4)).scales == (2, 4)  # a pyramid
    assert _pipe(3, ("a", "b")).scales == (3, 3)  # two outputs, no scales given: both the model's
    assert _pipe(2, ()).scales == (2,)  # a runner that names no outputs: one
    p = _pipe(None, ("o",))  # no scale in the entry: x1
    assert p.scale == 1 and p.scales == (1,)
    assert _pipe(2, ("o",), threads=3).workers == 3
    with pytest.raises(srzoo.SrzooError) as e:
        _pipe(4, ("o",), (2, 4))
    assert str(e.value) == "m.toml: net x4: io.output_scales has 2 values for 1 outputs"
    with pytest.raises(srzoo.SrzooError) as e:
        _pipe(3, ("a", "b"), (2, 4))
    assert str(e.value) == "m.toml: net x3: no output gives x3 (io.output_scales = [2, 4])"


def test_one_mean_value_serves_three_channels(models):
    """io.mean with one value: that value for each of the three channels (float32, the
    network's dtype), the same results as the three values written out."""
    class Runner:  # no input_layout: NCHW
        def run(self, blob):  # pragma: no cover - never run here
            raise AssertionError

    entry = type("E", (), dict(io=IOSpec(mean=(0.3,)), scale=2, name="t", manifest="m"))()
    pipe = pipeline.ModelPipeline(entry, Runner())
    assert pipe.mean.dtype == np.float32 and pipe.mean.tolist() == [np.float32(0.3).item()] * 3
    assert pipe.layout == "nchw" and pipe.blob(np.zeros((2, 3), np.float32)).shape == (1, 1, 2, 3)
    up = models("mean-one", layout="nhwc", mean=(0.3,))
    img = texture(4, 5, np.float32, seed=37)
    same(up(img), expect(img, 2, mean=(0.3,) * 3))
