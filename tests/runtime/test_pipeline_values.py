"""Exact values through the real image pipeline (srzoo.runtime.pipeline), end to end.

Tiny ONNX networks with a known function run on onnxruntime through srzoo.Upscaler: a per-channel
affine map ``g * x + b`` of the network's own input (in its channel order, range and mean)
repeated over each s x s block (1x1 convolution + DepthToSpace). The expected results are
computed here in NumPy from the manifest's io rules (RGB/BGR order, range, mean, rounding,
clipping), independently of the pipeline's code: NCHW and NHWC, RGB and BGR, with and without
a mean, uint8/uint16/float32/grey/BGRA inputs, float results outside [0, 1], pyramids (one
output per scale), bands of one row.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from standin import write_manifest  # noqa: E402

BACKEND = "onnxruntime:cpu"
#: per network channel (in the network's order): gains and offsets (network units of range 1)
GAIN = (1.25, 0.6, 0.8)
OFFSET = (0.017, 0.04, 0.04)
MEAN = (0.25, 0.5, 0.125)


def _affine_onnx(path: Path, scales: tuple[int, ...], gain, offset, layout: str,
                 out_channels: int = 3, in_channels: int = 3) -> None:
    """Input x (1xCxHxW, or 1xHxWxC for ``nhwc``); one output ``o{s}`` per scale:
    ``gain[c] * x[c] + offset[c]`` copied to every pixel of each s x s block (channel c of
    the output; ``out_channels=1``: channel 0 only; a scale of 1: no upscaling)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, outs = [], [], []
    src = "x"
    shape = [1, in_channels, "h", "w"]
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]))
        src = "xt"
        shape = [1, "h", "w", in_channels]
    for s in scales:
        w = np.zeros((out_channels * s * s, in_channels, 1, 1), np.float32)
        b = np.zeros(out_channels * s * s, np.float32)
        for k in range(s * s):  # DCR: channel (i * s + j) * C + c
            for c in range(out_channels):
                w[k * out_channels + c, c, 0, 0] = gain[c]
                b[k * out_channels + c] = offset[c]
        inits += [numpy_helper.from_array(w, f"W{s}"), numpy_helper.from_array(b, f"B{s}")]
        nodes += [helper.make_node("Conv", [src, f"W{s}", f"B{s}"], [f"f{s}"], kernel_shape=[1, 1]),
                  helper.make_node("DepthToSpace", [f"f{s}"], [f"o{s}"], blocksize=s, mode="DCR")]
        outs.append(helper.make_tensor_value_info(f"o{s}", TensorProto.FLOAT, [1, out_channels, "H", "W"]))
    g = helper.make_graph(nodes, "affine", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())


@pytest.fixture
def models(models_env, mirror, tmp_path, monkeypatch):
    """``models(name, scales=(2,), layout=..., color=..., range=..., mean=..., gain=..., offset=...)``
    registers a network under ``name`` (served from a mirror folder) and returns an Upscaler
    for its largest scale (``threads``: post-processing threads)."""
    folder = tmp_path / "files"
    folder.mkdir()
    manifests: list[str] = []
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")

    def make(name: str, scales: tuple[int, ...] = (2,), *, layout: str = "nchw", color: str = "bgr",
             range: float = 1.0, mean=(0.0, 0.0, 0.0), gain=GAIN, offset=OFFSET,
             out_channels: int = 3, threads: int | None = 1,
             pre_upsample: str | None = None) -> srzoo.Upscaler:
        f = folder / f"{name}_x{max(scales)}.onnx"
        chans = 1 if color == "y" else 3
        net_scales = (1,) if pre_upsample else scales
        _affine_onnx(f, net_scales, gain, offset, layout, min(out_channels, chans), chans)
        io = dict(color=color, range=range, mean=tuple(mean), layout=layout, input="x",
                  outputs=tuple(f"o{s}" for s in net_scales))
        if len(scales) > 1:
            io["output_scales"] = scales
        if pre_upsample:
            io["pre_upsample"] = pre_upsample
        manifests.append(str(write_manifest(tmp_path / f"{name}.toml", f, name, max(scales), **io)))
        monkeypatch.setenv("SRZOO_REGISTRY", ",".join(manifests))
        return srzoo.Upscaler(name, max(scales), backend=BACKEND, threads=threads, tile=0)

    return make


MAXV = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def expect(img: np.ndarray, s: int, *, color: str = "bgr", range: float = 1.0, mean=(0.0, 0.0, 0.0),
           gain=GAIN, offset=OFFSET) -> np.ndarray:
    """What the manifest's io rules give for an H x W x 3 BGR image (float64 before rounding):
    the network sees ``v * range / max - mean`` per channel in its order (RGB: reversed), gives
    ``g x + b``; the mean is added back and the value scaled back to the image's units; integers
    are rounded and saturated, floats clipped to [0, 1]; each pixel fills an s x s block."""
    top = MAXV[img.dtype]
    k = range / top
    v = img.astype(np.float64)
    res = np.empty_like(v)
    for c in (0, 1, 2):  # network channel c
        slot = 2 - c if color == "rgb" else c
        x = v[:, :, slot] * k - mean[c]
        res[:, :, slot] = (gain[c] * x + offset[c] + mean[c]) / k
    res = np.clip(np.rint(res) if img.dtype != np.float32 else res, 0, top)
    return np.repeat(np.repeat(res, s, 0), s, 1)


def texture(h: int, w: int, dtype, seed: int = 0) -> np.ndarray:
    """A random BGR image using the whole range of ``dtype`` (odd sizes: every row differs)."""
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.random((h, w, 3), dtype=np.float32)
    return rng.integers(0, int(MAXV[np.dtype(dtype)]) + 1, (h, w, 3)).astype(dtype)


def same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    else:
        bad = np.argwhere(got.astype(np.float64) != want)
        assert bad.size == 0, (len(bad), bad[:5], got[tuple(bad[0])], want[tuple(bad[0])])


# --------------------------------------------------------------------------- layouts, order, mean
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("color", ["rgb", "bgr"])
@pytest.mark.parametrize("with_mean", [False, True])
def test_layout_order_and_mean(models, layout, color, with_mean):
    mean = MEAN if with_mean else (0.0, 0.0, 0.0)
    up = models(f"aff-{layout}-{color}-{int(with_mean)}", layout=layout, color=color, mean=mean)
    assert up.pipeline.layout == layout
    for dtype in (np.uint8, np.uint16, np.float32):
        img = texture(7, 9, dtype)
        out = up(img)
        assert out.dtype == dtype
        same(out, expect(img, 2, color=color, mean=mean))


def test_range_255_uint16_grey_and_one_channel(models):
    """A [0, 255] network fed uint16 and grey images (grey goes through as BGR: equal gains keep
    the three channels equal, so the grey result is that value)."""
    up = models("aff-255", layout="nhwc", color="rgb", range=255.0, mean=(60.0, 100.0, 30.0))
    img = texture(5, 11, np.uint16, seed=1)
    same(up(img), expect(img, 2, color="rgb", range=255.0, mean=(60.0, 100.0, 30.0)))
    flat = models("aff-flat", layout="nchw", color="rgb", gain=(0.8,) * 3, offset=(0.04,) * 3)
    for dtype in (np.uint8, np.uint16, np.float32):
        grey = texture(5, 7, dtype, seed=2)[:, :, 0]
        want = expect(np.dstack([grey] * 3), 2, gain=(0.8,) * 3, offset=(0.04,) * 3)[:, :, 0]
        same(flat(grey), want)
        one = flat(grey[:, :, None])
        assert one.shape == want.shape + (1,)
        same(one[:, :, 0], want)


# --------------------------------------------------------------------------- float results
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_float_results_clipped_to_unit_before_the_span_comes_back(models, layout):
    """Float input outside [0, 1] is scaled from [lo, hi] into [0, 1]; the network's result is
    clipped to [0, 1] there, then mapped back to [lo, hi]: with lo > 0 a negative network value
    gives lo (not a value below it), with hi < 1 a value above 1 gives hi."""
    img = texture(6, 5, np.float32, seed=3)
    for lo, hi, off in ((0.5, 3.0, -0.2), (-1.0, 0.5, 0.2)):
        hdr = img * np.float32(hi - lo) + np.float32(lo)
        hdr[0, 0] = (lo, lo, lo)
        hdr[0, 1] = (hi, hi, hi)
        up = models(f"hdr-{layout}-{off}", layout=layout, gain=(1.0,) * 3, offset=(off,) * 3)
        unit = (hdr.astype(np.float64) - lo) / (hi - lo)
        want = np.clip(unit + off, 0.0, 1.0) * (hi - lo) + lo
        got = up(hdr)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, np.repeat(np.repeat(want, 2, 0), 2, 1), rtol=0, atol=1e-5)
        assert (got.min() == np.float32(lo)) if off < 0 else (got.max() == np.float32(hi))
    # in [0, 1]: values the network pushes out of [0, 1] come back clipped
    up = models(f"unit-{layout}", layout=layout, gain=(1.5, 1.0, 0.5), offset=(-0.2, 0.3, 0.0))
    same(up(img), expect(img, 2, gain=(1.5, 1.0, 0.5), offset=(-0.2, 0.3, 0.0)))


# --------------------------------------------------------------------------- bands, pyramids
@pytest.mark.parametrize("threads", [1, 2])
def test_one_row_bands_cover_every_row(models, monkeypatch, threads):
    """Post-processing in bands of one input row (BAND_PIXELS below one output row of two):
    every row is written once with its own values."""
    monkeypatch.setattr(pipeline, "BAND_PIXELS", 50)  # rows of 9 * 2 * 2 = 36 pixels: one per band
    seen: list[tuple[int, int]] = []
    strips = pipeline._in_strips

    def spy(h, fn, workers, row_pixels):
        def rec(r0, r1):
            seen.append((r0, r1))
            fn(r0, r1)
        strips(h, rec, workers, row_pixels)

    monkeypatch.setattr(pipeline, "_in_strips", spy)
    for dtype in (np.uint8, np.float32):
        up = models(f"band-{threads}-{np.dtype(dtype).name}", layout="nhwc", color="rgb", mean=MEAN,
                    threads=threads)
        img = texture(13, 9, dtype, seed=4)
        seen.clear()
        same(up(img), expect(img, 2, color="rgb", mean=MEAN))
        assert sorted(seen) == [(r, r + 1) for r in range(13)]


@pytest.mark.parametrize("color", ["rgb", "bgr"])
def test_pyramid_gives_each_level_and_the_asked_one(models, color):
    up = models(f"pyr-{color}", (2, 4), color=color, layout="nchw")
    assert up.scales == (2, 4)
    img = texture(5, 6, np.uint8, seed=5)
    levels = up.upscale_all(img)
    assert sorted(levels) == [2, 4]
    for s in (2, 4):
        same(levels[s], expect(img, s, color=color))
    same(up(img), expect(img, 4, color=color))  # x2 is not asked for: skipped, x4 still comes


def test_one_channel_output_for_a_colour_model(models):
    up = models("mono-out", out_channels=1, color="rgb")
    with pytest.raises(srzoo.SrzooError,
                       match=r"^mono-out x2: io.color = 'rgb' but the network gives 1-channel outputs$"):
        up(texture(4, 4, np.uint8))


# --------------------------------------------------------------------------- alpha
def test_float_alpha_outside_unit_is_clipped_and_the_input_left_alone(models):
    """A float BGRA image whose alpha goes below 0 and above 1: alpha counts as clipped to
    [0, 1] (colour premultiplied by it, the network upscales it), and the caller's array is not
    modified."""
    up = models("alpha-f", gain=(1.0,) * 3, offset=(0.0,) * 3)
    rng = np.random.default_rng(6)
    bgr = (0.1 + 0.8 * rng.random((6, 7, 3))).astype(np.float32)
    alpha = np.array([-0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0], np.float32)[None].repeat(6, 0)
    bgra = np.dstack((bgr, alpha))
    keep = bgra.copy()
    out = up(bgra)
    assert np.array_equal(bgra, keep)
    a = np.clip(alpha, 0.0, 1.0)
    colour = np.where((a > 0)[:, :, None], bgr, 0.0)
    want = np.dstack((colour, a)).repeat(2, 0).repeat(2, 1)
    np.testing.assert_allclose(out, want, rtol=0, atol=2e-6)
    # an offset the network adds to every value: alpha below 0 counts as 0, so its colour is
    # offset / offset = 1 (the colour under alpha 0 is lost, the network's output is what
    # comes back), not the colour of a negative alpha
    up = models("alpha-off", gain=(1.0,) * 3, offset=(0.1,) * 3)
    out = up(bgra)
    assert np.array_equal(bgra, keep)
    ua = np.clip(a + 0.1, 0.0, 1.0)
    colour = np.clip(np.clip(bgr * a[:, :, None] + 0.1, 0, 1) / ua[:, :, None], 0.0, 1.0)
    want = np.dstack((colour, ua)).repeat(2, 0).repeat(2, 1)
    np.testing.assert_allclose(out, want, rtol=0, atol=2e-6)


def test_uint_alpha_premultiplied(models):
    """uint8/uint16 BGRA with partial alpha: colour premultiplied, divided back after the
    network, alpha upscaled by the network (here: copied), rounded to the input's dtype."""
    up = models("alpha-u", gain=(1.0,) * 3, offset=(0.0,) * 3)
    for dtype in (np.uint8, np.uint16):
        top = MAXV[np.dtype(dtype)]
        bgr = texture(4, 6, dtype, seed=7)
        alpha = (np.array([0, 0.2, 0.4, 0.6, 0.8, 1.0])[None].repeat(4, 0) * top).astype(dtype)
        out = up(np.dstack((bgr, alpha)))
        a = alpha / top
        pre = (bgr / top * a[:, :, None]).astype(np.float32).astype(np.float64)
        colour = np.where((a > 0)[:, :, None], np.clip(pre / np.maximum(a, 1e-6)[:, :, None], 0, 1), 0.0)
        want = np.dstack((np.rint(colour * top), alpha)).repeat(2, 0).repeat(2, 1)
        assert out.dtype == dtype
        assert np.abs(out.astype(np.float64) - want).max() <= 0, dtype


def test_pools_work_again_after_a_fork_reset():
    """What a forked child runs (os.register_at_fork): fresh pools and lock, and bands on
    several threads still run."""
    pipeline._forget_pools()
    done: list[int] = []
    pipeline._in_strips(6, lambda r0, r1: done.extend(range(r0, r1)), 3, 1)
    assert sorted(done) == list(range(6))


# --------------------------------------------------------------------------- Y-channel models
def _bilinear(plane: np.ndarray, s: int) -> np.ndarray:
    """cv2.resize's bilinear x``s`` (pixel centres, edges repeated), exactly, in float64."""
    p = plane.astype(np.float64)

    def axis(n: int):
        x = (np.arange(n * s) + 0.5) / s - 0.5
        x0 = np.floor(x)
        return np.clip(x0, 0, n - 1).astype(int), np.clip(x0 + 1, 0, n - 1).astype(int), x - x0

    a, b, f = axis(p.shape[0])
    p = p[a] * (1 - f)[:, None] + p[b] * f[:, None]
    a, b, f = axis(p.shape[1])
    return p[:, a] * (1 - f) + p[:, b] * f


def _y_candidates(img: np.ndarray, s: int, g: float, b: float, tie: float | None) -> list[np.ndarray]:
    """The BGR results a Y model ``g * Y + b`` (range 1) may give: Y through the network,
    chroma resized bilinearly from OpenCV's YCrCb and rounded (``tie=None``: ties round up,
    as INTER_LINEAR_EXACT does at power-of-two scales; else values within ``tie`` of a half
    level may round either way: one candidate per choice of Cr and Cb)."""
    top = MAXV[img.dtype]
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb).astype(np.float64)
    y = np.clip(np.rint(g * ycc[:, :, 0] + b * top), 0, top).repeat(s, 0).repeat(s, 1)
    ups = [_bilinear(ycc[:, :, c], s) for c in (1, 2)]
    if tie is None:
        choices = [[np.floor(u + 0.5)] for u in ups]
    else:
        choices = [[np.floor(u + 0.5 - tie), np.floor(u + 0.5 + tie)] for u in ups]
    return [cv2.cvtColor(np.dstack((y, cr, cb)).astype(img.dtype), cv2.COLOR_YCrCb2BGR)
            for cr in choices[0] for cb in choices[1]]


def _one_of(got: np.ndarray, candidates: list[np.ndarray]) -> None:
    ok = np.zeros(got.shape[:2], bool)
    for c in candidates:
        ok |= (got == c).all(axis=2)
    assert ok.all(), (int((~ok).sum()), np.argwhere(~ok)[:5])


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_y_model_power_of_two_chroma_ties_round_up(models, layout):
    """x2 and x4: the chroma planes are the exact bilinear values rounded half up (the
    1/16 and 1/64 weights give many exact half levels: checked below)."""
    for s in (2, 4):
        up = models(f"y-{layout}-{s}", (s,), color="y", layout=layout, gain=(0.9,), offset=(0.03,))
        for dtype in (np.uint8, np.uint16):
            img = texture(7, 9, dtype, seed=8)
            ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
            ex = _bilinear(ycc[:, :, 1], s)
            assert (ex - np.floor(ex) == 0.5).sum() > 5  # ties are there to be rounded
            got = up(img)
            assert got.dtype == dtype and got.shape == (7 * s, 9 * s, 3)
            (want,) = _y_candidates(img, s, 0.9, 0.03, None)
            same(got, want)


def test_y_model_x3_chroma_rounded_from_exact_bilinear(models):
    """x3: the chroma planes are bilinear values computed in float and rounded (within
    float error of a half level either side is right), not 8-bit fixed-point weights (off
    by up to 0.8 of a level)."""
    up = models("y-x3", (3,), color="y", gain=(0.9,), offset=(0.03,))
    img = texture(8, 10, np.uint8, seed=9)
    _one_of(up(img), _y_candidates(img, 3, 0.9, 0.03, 1e-3))


def test_y_model_float_and_grey(models):
    up = models("y-f", (2,), color="y", gain=(1.3,), offset=(-0.1,))
    img = texture(5, 6, np.float32, seed=10)
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb).astype(np.float64)
    y = (1.3 * ycc[:, :, 0] - 0.1).repeat(2, 0).repeat(2, 1)
    planes = np.dstack([y] + [_bilinear(ycc[:, :, c], 2) for c in (1, 2)]).astype(np.float32)
    want = np.clip(cv2.cvtColor(planes, cv2.COLOR_YCrCb2BGR), 0.0, 1.0)
    np.testing.assert_allclose(up(img), want, rtol=0, atol=2e-6)
    grey = img[:, :, 1]
    np.testing.assert_allclose(up(grey), np.clip(1.3 * grey.astype(np.float64) - 0.1, 0, 1).repeat(2, 0).repeat(2, 1),
                               rtol=0, atol=2e-6)


def test_y_model_pre_upsampled(models):
    """A network fed the image already resized (bicubic) to the output size: its chroma is
    that of the resized image, untouched."""
    up = models("y-pre", (2,), color="y", gain=(0.9,), offset=(0.03,), pre_upsample="bicubic")
    img = texture(6, 7, np.uint8, seed=11)
    big = cv2.resize(img, (14, 12), interpolation=cv2.INTER_CUBIC)
    ycc = cv2.cvtColor(big, cv2.COLOR_BGR2YCrCb).astype(np.float64)
    y = np.clip(np.rint(0.9 * ycc[:, :, 0] + 0.03 * 255), 0, 255)
    want = cv2.cvtColor(np.dstack((y, ycc[:, :, 1], ycc[:, :, 2])).astype(np.uint8), cv2.COLOR_YCrCb2BGR)
    same(up(img), want)


@pytest.mark.parametrize("threads", [1, 2])
def test_y_model_one_row_bands(models, monkeypatch, threads):
    """Y model, bands of one input row (each band resizes its chroma rows from the rows
    around them only): the same values as the whole image in one band."""
    monkeypatch.setattr(pipeline, "BAND_PIXELS", 30)  # an output row of x2: 2 * 11 * 2 = 44 pixels
    for s, dtype in ((2, np.uint8), (4, np.uint16)):
        up = models(f"y-band-{threads}-{s}", (s,), color="y", gain=(0.9,), offset=(0.03,), threads=threads)
        img = texture(9, 11, dtype, seed=12)
        (want,) = _y_candidates(img, s, 0.9, 0.03, None)
        same(up(img), want)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_blob_layouts(layout):
    """ModelPipeline.blob: a plane or an H x W x C image as the runner's 4-D input."""
    from srzoo.hub.manifest import IOSpec

    class Runner:
        input_layout = layout

        def run(self, blob):  # pragma: no cover - never run here
            raise AssertionError

    entry = type("E", (), dict(io=IOSpec(layout=layout), scale=2, name="t", manifest="m"))()
    pipe = pipeline.ModelPipeline(entry, Runner())
    img = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    nchw = layout == "nchw"
    b = pipe.blob(img)
    assert b.flags.c_contiguous
    assert np.array_equal(b, img.transpose(2, 0, 1)[None] if nchw else img[None])
    b = pipe.blob(img[:, :, 1])
    assert b.shape == ((1, 1, 2, 3) if nchw else (1, 2, 3, 1))
    assert np.array_equal(b.reshape(2, 3), img[:, :, 1])


def test_y_model_float_results_clipped_to_unit_before_the_span_comes_back(models):
    """As for colour models: a Y model's float result (grey, or colour after YCrCb -> BGR) is
    clipped to [0, 1] before [lo, hi] of an input outside [0, 1] is restored."""
    img = texture(6, 5, np.float32, seed=13)
    for lo, hi, off in ((0.5, 3.0, -0.2), (-1.0, 0.5, 0.2)):
        up = models(f"y-hdr-{off}", (2,), color="y", gain=(1.0,), offset=(off,))
        hdr = img * np.float32(hi - lo) + np.float32(lo)
        hdr[0, 0] = (lo, lo, lo)
        hdr[0, 1] = (hi, hi, hi)
        unit = (hdr.astype(np.float64) - lo) / (hi - lo)
        grey = up(hdr[:, :, 0])
        want = np.clip(unit[:, :, 0] + off, 0.0, 1.0).repeat(2, 0).repeat(2, 1) * (hi - lo) + lo
        np.testing.assert_allclose(grey, want, rtol=0, atol=1e-5)
        ycc = cv2.cvtColor(unit.astype(np.float32), cv2.COLOR_BGR2YCrCb).astype(np.float64)
        y = (ycc[:, :, 0] + off).repeat(2, 0).repeat(2, 1)
        planes = np.dstack([y] + [_bilinear(ycc[:, :, c], 2) for c in (1, 2)]).astype(np.float32)
        want = np.clip(cv2.cvtColor(planes, cv2.COLOR_YCrCb2BGR), 0.0, 1.0) * (hi - lo) + lo
        got = up(hdr)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert (got.min() == np.float32(lo)) if off < 0 else (got.max() == np.float32(hi))


def _y_pyramid_pre_upsampled(models, tmp_path, monkeypatch, name: str, gain: float,
                              offset: float) -> srzoo.Upscaler:
    """A pre-upsampled (bicubic) Y pyramid registered as ``name``: x4 input, outputs x4
    (``gain * y + offset`` per pixel) and x2 (the same, strided)."""
    from onnx import TensorProto, helper, numpy_helper

    models(f"{name}-dummy", (2,), color="y")  # the registry fixture's folder and mirror
    folder = tmp_path / "files"
    w = numpy_helper.from_array(np.full((1, 1, 1, 1), gain, np.float32), "W")
    b = numpy_helper.from_array(np.full(1, offset, np.float32), "B")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["o4"], kernel_shape=[1, 1]),
         helper.make_node("Conv", ["x", "W", "B"], ["o2"], kernel_shape=[1, 1], strides=[2, 2])],
        "pyr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "h", "w"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, "H", "W"]) for n in ("o2", "o4")], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    f = folder / f"{name}_x4.onnx"
    f.write_bytes(m.SerializeToString())
    man = write_manifest(tmp_path / f"{name}.toml", f, name, 4, color="y", range=1.0, layout="nchw",
                         input="x", outputs=("o2", "o4"), output_scales=(2, 4), pre_upsample="bicubic")
    monkeypatch.setenv("SRZOO_REGISTRY", str(man))
    return srzoo.Upscaler(name, 4, backend=BACKEND, threads=1, tile=0)


def test_y_pyramid_pre_upsampled_level_below_the_input(models, tmp_path, monkeypatch):
    """A pre-upsampled pyramid (x4 input; outputs x4 and, strided, x2): the x2 level's chroma is
    the pre-upsampled chroma resized to its size (bilinear, here the mean of 2 x 2 pixels,
    rounded half to even), not chroma of another size."""
    up = _y_pyramid_pre_upsampled(models, tmp_path, monkeypatch, "y-pyr-pre", 0.9, 0.03)
    img = texture(5, 6, np.uint8, seed=14)
    levels = up.upscale_all(img)
    big = cv2.cvtColor(cv2.resize(img, (24, 20), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2YCrCb).astype(np.float64)
    y4 = np.clip(np.rint(0.9 * big[:, :, 0] + 0.03 * 255), 0, 255)
    want4 = cv2.cvtColor(np.dstack((y4, big[:, :, 1], big[:, :, 2])).astype(np.uint8), cv2.COLOR_YCrCb2BGR)
    same(levels[4], want4)
    y2 = y4[::2, ::2]
    c2 = [np.rint(big[:, :, c].reshape(10, 2, 12, 2).mean(axis=(1, 3))) for c in (1, 2)]
    want2 = cv2.cvtColor(np.dstack([y2] + c2).astype(np.uint8), cv2.COLOR_YCrCb2BGR)
    same(levels[2], want2)


def test_y_pyramid_pre_upsampled_float32_chroma_resized_in_float32(models, tmp_path, monkeypatch):
    """The same pyramid on a float32 image, through an identity network (Y out = Y in, exactly):
    the x2 level's chroma is the pre-upsampled chroma resized as float32 planes, to the last bit
    (resized as float64 and cast back, 56 of its 240 chroma values differ in the last bit)."""
    up = _y_pyramid_pre_upsampled(models, tmp_path, monkeypatch, "y-pyr-id", 1.0, 0.0)
    img = texture(5, 6, np.float32, seed=3)
    got = up.upscale_all(img)[2]
    big = cv2.cvtColor(cv2.resize(img, (24, 20), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2YCrCb)
    assert big.dtype == np.float32
    planes = [big[::2, ::2, 0]] + [cv2.resize(np.ascontiguousarray(big[:, :, c]), (12, 10),
                                              interpolation=cv2.INTER_LINEAR) for c in (1, 2)]
    want = np.clip(cv2.cvtColor(cv2.merge(planes), cv2.COLOR_YCrCb2BGR), 0.0, 1.0)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want), np.abs(got - want).max()
