"""srzoo.upscale / Upscaler against the real cv2.dnn_superres, on real model files.

Models are downloaded through the local HTTP mirror of ../shared (models_env);
the reference is ``DnnSuperResImpl.upsample`` loaded from the same cached file.
Crops are small: two CPU cores, and LapSRN x8 is slow.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import upscaler as upscaler_mod
from standin import _standin_dir, edsr_standin, write_standins  # noqa: F401  (fixtures)
from cvref import assert_near_upsample, dnn_superres_upsample

# (srzoo name, dnn_superres algorithm, scale): every OpenCV file mirrored in ../shared
@pytest.fixture(scope="module")
def monarch(shared_dir: Path) -> np.ndarray:
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "monarch.png"), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (512, 768, 3)
    return img


@pytest.fixture(scope="module")
def crop(monarch: np.ndarray) -> np.ndarray:
    """A 40x52 textured crop (odd sizes on purpose)."""
    return np.ascontiguousarray(monarch[180:220, 300:352])


def maxdiff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


# --------------------------------------------------------------------------- equality
# srzoo against dnn_superres upsample() on every .pb model and engine:
# tests/runtime/test_dnn_superres_refs.py (references recorded where OpenCV still reads .pb files)


def test_lapsrn_pyramid_in_one_call(models_env, crop, tmp_path):
    img = crop[:24, :30]
    up = srzoo.Upscaler("lapsrn", 8)
    assert up.scales == (2, 4, 8)
    levels = up.upscale_all(img)
    assert sorted(levels) == [2, 4, 8]
    for s, out in levels.items():
        assert out.shape == (24 * s, 30 * s, 3)
    assert_near_upsample(levels[8], dnn_superres_upsample(srzoo.fetch("lapsrn", 8), "lapsrn", 8, img,
                                                          tmp_path), "lapsrn x8")
    # each level is the right tensor of the x8 graph: on grey input the result is
    # the raw output x255 (upsampleMultioutput has no usable Python binding); the raw
    # outputs from TensorFlow's semantics in NumPy (OpenCV 5.1 cannot read the .pb)
    from srzoo.convert.graphdef import read_graphdef
    from srzoo.convert.graphdef_eval import evaluate

    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    glevels = up.upscale_all(grey)
    x = (grey.astype(np.float32) * np.float32(1 / 255))[None, :, :, None]
    raws = evaluate(read_graphdef(srzoo.fetch("lapsrn", 8).read_bytes()), {"IteratorGetNext": x},
                    ["NCHW_output_2x", "NCHW_output_4x", "NCHW_output_8x"])
    for s, raw in zip((2, 4, 8), raws):
        expect = np.clip(np.rint(raw[0, 0] * 255), 0, 255).astype(np.uint8)
        assert glevels[s].shape == (24 * s, 30 * s)
        assert maxdiff(glevels[s], expect) <= 1
    assert maxdiff(glevels[2], glevels[4][::2, ::2]) > 0  # really different tensors
    # the final level is what upscale() returns
    assert maxdiff(levels[8], up(img)) == 0


def test_edsr_standin_equals_dnn_superres(edsr_standin, crop, tmp_path):
    for scale in (2, 3, 4):
        entry = srzoo.get_model("edsr", scale)
        assert entry.file == f"EDSR-standin_x{scale}.pb"  # the stand-in, not the real EDSR
        ref = dnn_superres_upsample(edsr_standin / entry.file, "edsr", scale, crop, tmp_path,
                                    entry.io.export_layout)
        out = srzoo.upscale(crop, "edsr", scale, backend="cpu")
        assert out.shape == (40 * scale, 52 * scale, 3)
        assert maxdiff(out, ref) <= 1
        # the stand-in is a real upscaler: close to nearest neighbour, not a constant
        near = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        assert np.abs(out.astype(int) - near).mean() < 20
        assert out.std() > 20


def test_edsr_standin_grey_and_bgra(edsr_standin, crop):
    up = srzoo.Upscaler("edsr", 2)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    out = up(grey)
    assert out.shape == (80, 104) and out.dtype == np.uint8
    via_bgr = cv2.cvtColor(up(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)), cv2.COLOR_BGR2GRAY)
    assert maxdiff(out, via_bgr) == 0


# --------------------------------------------------------------------------- layouts & dtypes
def test_grey_layouts(models_env, crop):
    up = srzoo.Upscaler("espcn", 3)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    flat = up(grey)
    assert flat.shape == (120, 156)
    chan = up(grey[:, :, None])
    assert chan.shape == (120, 156, 1)
    assert np.array_equal(chan[:, :, 0], flat)


def test_bgra_alpha_is_upscaled_and_reattached(models_env, crop):
    alpha = np.tile(np.linspace(0, 255, crop.shape[1], dtype=np.float32), (crop.shape[0], 1)).astype(np.uint8)
    bgra = np.dstack((crop, alpha))
    out = srzoo.upscale(bgra, "fsrcnn", 2)
    assert out.shape == (80, 104, 4) and out.dtype == np.uint8
    # alpha with edges: upscaled by the model too (as a grey image), colour premultiplied
    a_net = srzoo.upscale(alpha, "fsrcnn", 2).astype(int)
    assert np.abs(out[:, :, 3].astype(int) - a_net).max() <= 1
    premult = (crop.astype(np.float32) * (alpha[:, :, None] / np.float32(255))).round().astype(np.uint8)
    want = srzoo.upscale(premult, "fsrcnn", 2).astype(np.float64)
    got = out[:, :, :3] * (out[:, :, 3:] / 255.0)
    assert np.abs(got - want).mean() < 1.0
    # a constant alpha: the colour exactly as without alpha, the alpha resized
    flat = srzoo.upscale(np.dstack((crop, np.full(alpha.shape, 200, np.uint8))), "fsrcnn", 2)
    assert np.array_equal(flat[:, :, :3], srzoo.upscale(crop, "fsrcnn", 2))
    assert (flat[:, :, 3] == 200).all()


def test_uint16_and_float32(models_env, crop):
    up = srzoo.Upscaler("espcn", 2)
    ref8 = up(crop).astype(np.float64)
    out16 = up(crop.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16 and out16.shape == (80, 104, 3)
    # uint8 rounds YCrCb to 8 bits (as dnn_superres does): a couple of levels apart
    # (measured: max 2.44, mean 0.55 8-bit levels)
    assert np.abs(out16 / 257.0 - ref8).max() <= 3.0
    assert np.abs(out16 / 257.0 - ref8).mean() < 1.0
    assert out16.max() > 255 * 100  # really on the 16-bit scale
    outf = up(crop.astype(np.float32) / 255.0)
    assert outf.dtype == np.float32 and outf.shape == (80, 104, 3)
    assert 0.0 <= outf.min() and outf.max() <= 1.0
    assert np.abs(outf * 255.0 - ref8).max() <= 3.0  # measured 2.45
    # the two high-precision paths agree far more closely: measured 3.44 16-bit levels
    # (float32 arithmetic and the uint16 rounding), so 8 levels, not 1 % (655 levels)
    assert np.abs(outf * 65535.0 - out16).max() <= 8
    # grey uint16 and BGRA float32 too
    g16 = up(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    assert g16.dtype == np.uint16 and g16.shape == (80, 104)
    bgra = np.dstack((crop, np.full(crop.shape[:2], 255, np.uint8))).astype(np.float32) / 255
    fo = up(bgra)
    assert fo.dtype == np.float32 and fo.shape == (80, 104, 4)
    assert np.allclose(fo[:, :, 3], 1.0, atol=1e-6)


def test_float64_input_comes_back_float64(models_env, crop):
    out = srzoo.upscale(crop.astype(np.float64) / 255, "bicubic", 2)
    assert out.dtype == np.float64 and out.shape == (80, 104, 3)
    # the values are the float32 path's (computed in float32, measured identical) and
    # the 8-bit path's before its rounding (measured within 0.49999 levels)
    f32 = srzoo.upscale(crop.astype(np.float32) / 255, "bicubic", 2)
    assert np.array_equal(out, f32.astype(np.float64))
    assert np.abs(out * 255 - srzoo.upscale(crop, "bicubic", 2)).max() <= 0.5 + 1e-5


def test_path_input(models_env, crop, tmp_path):
    p = tmp_path / "in.png"
    cv2.imwrite(str(p), crop)
    assert np.array_equal(srzoo.upscale(p, "espcn", 2), srzoo.upscale(crop, "espcn", 2))
    assert np.array_equal(srzoo.upscale(str(p), "espcn", 2), srzoo.upscale(crop, "espcn", 2))
    # a 16-bit grey PNG stays 16-bit grey
    p16 = tmp_path / "g16.png"
    cv2.imwrite(str(p16), np.full((9, 11), 40000, np.uint16))
    out = srzoo.upscale(p16, "nearest", 2)
    assert out.dtype == np.uint16 and out.shape == (18, 22) and int(out[0, 0]) == 40000


def test_bad_images_give_image_errors(models_env, tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(srzoo.ImageError, match="missing.png: no such file"):
        srzoo.upscale(missing, "bicubic", 2)
    junk = tmp_path / "junk.png"
    junk.write_text("not a png")
    with pytest.raises(srzoo.ImageError, match=r"junk.png: not an image OpenCV can decode"):
        srzoo.upscale(junk, "bicubic", 2)
    with pytest.raises(srzoo.ImageError, match="unsupported dtype int32"):
        srzoo.upscale(np.zeros((4, 4), np.int32), "bicubic", 2)
    with pytest.raises(srzoo.ImageError, match="unsupported shape"):
        srzoo.upscale(np.zeros((4, 4, 2), np.uint8), "bicubic", 2)
    with pytest.raises(srzoo.ImageError, match="empty image"):
        srzoo.upscale(np.zeros((0, 4, 3), np.uint8), "bicubic", 2)


# --------------------------------------------------------------------------- models & scales
def test_missing_scale_lists_the_scales(models_env):
    with pytest.raises(srzoo.UnknownModel, match=r"no x5; it has scales x2, x3, x4"):
        srzoo.upscale(np.zeros((4, 4, 3), np.uint8), "espcn", 5)
    with pytest.raises(srzoo.UnknownModel, match=r"x2, x4, x8"):
        srzoo.Upscaler("lapsrn", 3)
    with pytest.raises(srzoo.SrzooError, match="positive integer"):
        srzoo.Upscaler("bicubic", 0)


@pytest.mark.parametrize("method,flag", [("nearest", cv2.INTER_NEAREST), ("bilinear", cv2.INTER_LINEAR),
                                         ("bicubic", cv2.INTER_CUBIC), ("lanczos", cv2.INTER_LANCZOS4)])
def test_interpolation_models(srzoo_env, crop, method, flag):
    for scale in (2, 3, 5):
        out = srzoo.upscale(crop, method, scale)
        assert np.array_equal(out, cv2.resize(crop, (52 * scale, 40 * scale), interpolation=flag))
    bgra16 = np.dstack((crop, crop[:, :, 0])).astype(np.uint16) * 257
    out = srzoo.upscale(bgra16, method, 3)
    assert out.dtype == np.uint16 and out.shape == (120, 156, 4)
    assert np.array_equal(out, cv2.resize(bgra16, (156, 120), interpolation=flag))
    assert srzoo.Upscaler(method, 2).backend == "interpolation:cpu"
    assert srzoo.Upscaler(method, 2).path is None  # nothing fetched


def test_unconverted_model_is_refused_before_download(srzoo_env, mirror, monkeypatch):
    # a format no converter reaches: take the .pth converter out of the registry for this test
    from srzoo import convert

    convert.converter_for("pytorch-pth")  # load the built-in converters first
    monkeypatch.delitem(convert._REGISTRY, "pytorch-pth")
    with pytest.raises(srzoo.SrzooError, match=r"esrgan x4: no engine runs format 'pytorch-pth' and no "
                                                r"converter turns it into ONNX"):
        srzoo.Upscaler("esrgan", 4)
    assert not any(srzoo_env.rglob("*.pth"))


def test_upscale_reuses_loaded_networks(models_env, crop):
    upscaler_mod.clear_cache()
    before = upscaler_mod.load_count
    a = srzoo.upscale(crop, "fsrcnn-small", 3)
    b = srzoo.upscale(crop[:20], "fsrcnn-small", 3)
    c = srzoo.upscale(crop, "fsrcnn-small", 3)
    assert upscaler_mod.load_count == before + 1
    assert np.array_equal(a, c) and b.shape == (60, 156, 3)
    assert upscaler_mod.get_upscaler("fsrcnn-small", 3) is upscaler_mod.get_upscaler("FSRCNN-small", 3)
    srzoo.upscale(crop, "fsrcnn-small", 2)  # another scale is another network
    assert upscaler_mod.load_count == before + 2


def test_threads_and_backend_are_part_of_the_cache_key(models_env):
    """An Upscaler is built for its thread count: asking for other threads must not
    hand back one loaded for the default (None), nor another count."""
    upscaler_mod.clear_cache()
    default = upscaler_mod.get_upscaler("bicubic", 2)
    one = upscaler_mod.get_upscaler("bicubic", 2, threads=1)
    two = upscaler_mod.get_upscaler("bicubic", 2, threads=2)
    assert (default.threads, one.threads, two.threads) == (None, 1, 2)
    assert len({id(default), id(one), id(two)}) == 3
    assert upscaler_mod.get_upscaler("bicubic", 2, threads=1) is one
    assert upscaler_mod.get_upscaler("bicubic", 2, backend="opencv") is not default


def test_auto_backend_reports_its_choice(models_env):
    up = srzoo.Upscaler("espcn", 2)  # SRZOO_AUTOTUNE=0 here (conftest): the static order
    expected = srzoo.backends.resolve("auto", up.entry).name
    assert up.backend == expected
    assert up.backend.endswith(":cpu") and "static order" in up.backend_reason
    assert "backend=" in repr(up)


def test_load_prints_no_opencv_errors(models_env, capfd):
    upscaler_mod.clear_cache()
    srzoo.Upscaler("espcn", 4)(np.zeros((8, 8, 3), np.uint8))
    err = capfd.readouterr().err
    assert "ERROR" not in err and "WARN" not in err


# --------------------------------------------------------------------------- broken files
def test_corrupt_model_file_names_file_and_fix(models_env, mirror, tmp_path, monkeypatch):
    folder = tmp_path / "mirror"
    folder.mkdir()
    data = b"\x08\x01garbage that is not a GraphDef" * 50
    (folder / "BROKEN_x2.pb").write_bytes(data)
    import hashlib

    (tmp_path / "broken.toml").write_text(
        'schema = 1\n[[model]]\nname = "broken"\nscale = 2\nformat = "tf-graphdef"\nlicense = "MIT"\n'
        f'file = "BROKEN_x2.pb"\nsize = {len(data)}\nsha256 = "{hashlib.sha256(data).hexdigest()}"\n'
        'urls = ["https://example.invalid/BROKEN_x2.pb"]\nio.color = "y"\nio.range = 1.0\n')
    monkeypatch.setenv("SRZOO_REGISTRY", str(tmp_path / "broken.toml"))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    with pytest.raises(srzoo.ModelLoadError) as ei:
        srzoo.Upscaler("broken", 2)
    msg = str(ei.value)
    assert "BROKEN_x2.pb" in msg and str(models_env) in msg  # the cached file's full path
    assert "srzoo fetch broken --scale 2 --force" in msg
    assert "\n" not in msg


def test_truncated_real_model_in_cache(srzoo_env, monkeypatch):
    path = srzoo.fetch("espcn", 2, quiet=True)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:5000])
    # the cache trusts its verified copy: loading is what notices the damage
    monkeypatch.setattr("srzoo.hub.api.fetch_entry", lambda entry, **kw: path)
    with pytest.raises(srzoo.ModelLoadError, match=r"ESPCN_x2\.pb: cannot load espcn x2.*srzoo fetch espcn --scale 2 --force"):
        srzoo.Upscaler("espcn", 2)


def test_standin_manifest_is_valid(tmp_path):
    m = write_standins(tmp_path, (2,))
    from srzoo.hub.manifest import parse_manifest

    models, _ = parse_manifest(m)
    assert [(e.name, e.scale, e.io.algorithm, e.io.mean[0]) for e in models] == [("edsr", 2, "edsr", 103.1545782)]


# --------------------------------------------------------------------------- ONNX
def _numpy_onnx_standin(img_bgr: np.ndarray, scale: int, mean: np.ndarray) -> np.ndarray:
    """The ONNX stand-in computed independently in numpy (RGB, range 1, mean)."""
    from standin import onnx_standin_weights

    w, b = onnx_standin_weights(scale)
    x = img_bgr[:, :, ::-1].astype(np.float64) / 255.0 - mean
    h, wd = x.shape[:2]
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    feats = np.zeros((h, wd, w.shape[0])) + b
    for dy in range(3):
        for dx in range(3):
            feats += xp[dy:dy + h, dx:dx + wd, :] @ w[:, :, dy, dx].T
    out = feats.reshape(h, wd, scale, scale, 3).transpose(0, 2, 1, 3, 4).reshape(h * scale, wd * scale, 3)
    return np.clip(np.rint((out + mean) * 255.0), 0, 255).astype(np.uint8)[:, :, ::-1]


@pytest.mark.parametrize("scale", [2, 3])
def test_onnx_model_through_readNetFromONNX(models_env, mirror, crop, tmp_path, monkeypatch, scale):
    from standin import write_onnx_standin

    mean = (0.45, 0.5, 0.4)
    manifest = write_onnx_standin(tmp_path, scale, mean=mean)
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{tmp_path}")
    up = srzoo.Upscaler("onnx-standin", scale, backend="cpu")
    assert up.runner.output_names == ("output",)
    out = up(crop)
    assert out.shape == (40 * scale, 52 * scale, 3)
    assert maxdiff(out, _numpy_onnx_standin(crop, scale, np.array(mean))) <= 1
    # colour order matters: the same image with R and B swapped gives another result
    assert maxdiff(up(crop[:, :, ::-1].copy())[:, :, ::-1], out) > 2
    assert maxdiff(up(crop, tile=17), out) <= 1


def test_non_contiguous_views(models_env, crop):
    up = srzoo.Upscaler("espcn", 2)
    for view in (crop[:, ::-1], crop[:, :, ::-1], crop[::2, ::3], np.asfortranarray(crop)):
        assert np.array_equal(up.upscale(view), up(np.ascontiguousarray(view)))
