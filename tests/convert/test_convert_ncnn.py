"""ncnn .param/.bin: converted ONNX in cv2.dnn against the ncnn package (the
reference runtime) on real image crops; float16 and float32 weight blocks;
clear errors for unsupported layers and truncated weights."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

ncnn = pytest.importorskip("ncnn")

from srzoo.convert import converter_for  # noqa: E402
from srzoo.convert.ncnn import NcnnError, run_ncnn  # noqa: E402
from srzoo.errors import SrzooError  # noqa: E402
from cvref import run_onnx  # noqa: E402


def crop(shared: Path, size: int, name: str = "baby.png") -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / name))[200:200 + size, 150:150 + size]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


def convert(param: Path):
    return converter_for("ncnn").convert(param, None, {})


@pytest.mark.parametrize("stem,scale,size", [
    ("realesr-animevideov3-x2", 2, 40), ("realesr-animevideov3-x3", 3, 40), ("realesr-animevideov3-x4", 4, 40),
    ("realesrgan-x4plus-anime", 4, 32), ("realesrgan-x4plus", 4, 24)])
def test_real_esrgan_ncnn_matches_the_ncnn_package(shared_dir, tmp_path, stem, scale, size):
    param = shared_dir / "models" / "esrgan-ncnn" / f"{stem}.param"
    conv = convert(param)
    assert conv.info["scale"] == scale and conv.info["float16"] is True
    assert conv.checked_against.startswith("ncnn") and conv.probe_error <= 1e-2
    x = crop(shared_dir, size)
    got = run_onnx(conv.onnx, x, tmp_path)
    want = run_ncnn(param, x)
    assert got.shape == want.shape == (1, 3, size * scale, size * scale)
    d = np.abs(got - want)
    assert d.max() <= 1e-2 and d.mean() <= 1e-3


def test_animevideov3_pth_and_ncnn_agree(shared_dir, tmp_path):
    """The same network published twice: .pth (float32) and ncnn (float16 weights)."""
    from_pth = converter_for("pytorch-pth").convert(shared_dir / "models" / "esrgan" / "realesr-animevideov3.pth",
                                                    None, {})
    from_ncnn = convert(shared_dir / "models" / "esrgan-ncnn" / "realesr-animevideov3-x4.param")
    x = crop(shared_dir, 40, "bird.png")
    a = run_onnx(from_pth.onnx, x, tmp_path)
    b = run_onnx(from_ncnn.onnx, x, tmp_path)
    d = np.abs(a - b)
    assert d.max() <= 1e-2 and d.mean() <= 1e-3
    assert from_pth.onnx != from_ncnn.onnx  # two conversions, not one file twice


def _tiny_model(tmp: Path, tag: int = 0) -> Path:
    """A float32 ncnn model written here: conv+ReLU, conv, pixel shuffle x2, sigmoid."""
    rng = np.random.default_rng(1)
    param = tmp / "tiny.param"
    param.write_text("7767517\n5 5\n"
                     "Input data 0 1 data 0=0 1=0 2=3\n"
                     "Convolution conv0 1 1 data c0 0=4 1=3 4=1 5=1 6=108 9=1\n"
                     "Convolution conv1 1 1 c0 c1 0=12 1=3 4=1 5=1 6=432\n"
                     "PixelShuffle ps 1 1 c1 c2 0=2\n"
                     "Sigmoid sig 1 1 c2 output\n")
    blob = b""
    for n, c in ((108, 4), (432, 12)):
        blob += struct.pack("<I", tag) + rng.normal(0, 0.3, n).astype("<f4").tobytes()
        blob += rng.normal(0, 0.1, c).astype("<f4").tobytes()
    param.with_suffix(".bin").write_bytes(blob)
    return param


def test_float32_weight_blocks(shared_dir, tmp_path):
    param = _tiny_model(tmp_path)
    conv = convert(param)
    assert conv.info["float16"] is False and conv.info["scale"] == 2 and conv.probe_error <= 1e-3
    x = crop(shared_dir, 20)
    assert np.abs(run_onnx(conv.onnx, x, tmp_path) - run_ncnn(param, x)).max() <= 1e-5


def test_unsupported_layer_is_named(tmp_path):
    param = _tiny_model(tmp_path)
    param.write_text(param.read_text().replace("PixelShuffle ps", "Deconvolution ps"))
    with pytest.raises(NcnnError, match="Deconvolution") as e:
        convert(param)
    assert "\n" not in str(e.value)


def test_truncated_bin_and_quantized_blocks_are_refused(tmp_path):
    param = _tiny_model(tmp_path)
    b = param.with_suffix(".bin")
    full = b.read_bytes()
    b.write_bytes(full[:-10])
    with pytest.raises(SrzooError, match="truncated"):
        convert(param)
    _tiny_model(tmp_path, tag=0x000D4B38)  # int8 tag
    with pytest.raises(SrzooError, match="int8/quantized"):
        convert(param)
    b.unlink()
    with pytest.raises(SrzooError, match="beside the .param"):
        convert(param)


def test_ncnn_and_keras_conversions_are_deterministic(shared_dir):
    p = shared_dir / "models" / "esrgan-ncnn" / "realesr-animevideov3-x3.param"
    assert convert(p).onnx == convert(p).onnx
    pytest.importorskip("h5py")
    h5 = shared_dir / "models" / "srcnn" / "m_model_adam_new30.h5"
    keras = converter_for("keras-h5")
    opts = {"tolerance": 1e-3}
    assert keras.convert(h5, None, opts).onnx == keras.convert(h5, None, opts).onnx


@pytest.mark.parametrize("p,q", [(1, 2), (3, 4)])
def test_cubic_resize_by_a_fraction_as_convolutions(tmp_path, p, q):
    """Bicubic by p/q (a=-0.75, half-pixel, edge clamping) on a multiple of q, emitted as edge Pad,
    a depthwise stride-q Conv and a pixel shuffle, runs in the installed cv2.dnn (4.x cannot import
    a cubic Resize) with the values of onnxruntime's cubic Resize."""
    ort = pytest.importorskip("onnxruntime")
    from srzoo.convert.onnxbuild import Graph

    def graph(rational: bool) -> bytes:
        g = Graph()
        x = g.input(3)
        y = g.resize_cubic_rational(x, p, q, 3) if rational else g.resize(x, p / q, "cubic")
        return g.finish(y, 3)

    emitted = graph(True)
    onnx = pytest.importorskip("onnx")
    assert "Resize" not in {n.op_type for n in onnx.load_from_string(emitted).graph.node}
    want_sess = ort.InferenceSession(graph(False), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(p * 10 + q)
    for h, w in ((q * 37, q * 41), (q * 19, q * 23), (q, q)):
        x = rng.random((1, 3, h, w), np.float32)
        want = want_sess.run(None, {"input": x})[0]
        got = run_onnx(emitted, x, tmp_path)
        assert got.shape == want.shape == (1, 3, h * p // q, w * p // q)
        assert np.abs(got - want).max() <= 1e-5, (h, w)  # onnxruntime's float32 coordinates: up to ~8e-6
        exact = np.einsum("ih,nchw,jw->ncij", _cubic_matrix(h, p, q), x.astype(np.float64), _cubic_matrix(w, p, q))
        assert np.abs(got - exact).max() <= 1e-6, (h, w)


def _cubic_matrix(n: int, p: int, q: int) -> np.ndarray:
    """Bicubic (a=-0.75, half-pixel, clamped at the borders) from n to n*p/q samples, in float64."""
    def weight(d: float, a: float = -0.75) -> float:
        d = abs(d)
        return ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    m = np.zeros((n * p // q, n))
    for i in range(m.shape[0]):
        c = (i + 0.5) * q / p - 0.5
        f = int(np.floor(c))
        for k in (-1, 0, 1, 2):
            m[i, min(max(f + k, 0), n - 1)] += weight(c - (f + k))
    return m


@pytest.mark.parametrize("stem", ["realesr-animevideov3-x2", "realesr-animevideov3-x3"])
def test_final_bicubic_of_animevideov3_is_emitted_without_cubic_resize(shared_dir, stem):
    """Its input is the nearest x4 upsample plus the x4 network, a multiple of 2 and 4 for every size."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(convert(shared_dir / "models" / "esrgan-ncnn" / f"{stem}.param").onnx)
    modes = [a.s for n in model.graph.node if n.op_type == "Resize" for a in n.attribute if a.name == "mode"]
    assert modes == [b"nearest"]


@pytest.mark.parametrize("s", [0.5, 0.75, 2.0])
def test_numpy_reference_bicubic_equals_onnx_resize(s):
    """The NumPy reference's bicubic (what checks an ncnn conversion when neither
    the ncnn package nor PyTorch is installed) against ONNX Runtime's cubic
    Resize (a = -0.75, half-pixel, edges repeated), odd sizes."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from srzoo.convert.reference import NumpyOps

    x = np.random.default_rng(int(s * 4)).random((1, 3, 13, 19)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic", cubic_coeff_a=-0.75,
                          coordinate_transformation_mode="half_pixel")],
        "r", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 13, 19])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, s, s], np.float32), "scales")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = NumpyOps().resize(x.astype(np.float64), s, "cubic")
    assert got.shape == ref.shape == (1, 3, int(13 * s), int(19 * s))
    assert np.abs(got - ref).max() < 2e-5
    assert np.abs(got - NumpyOps().resize(x.astype(np.float64), s, "linear")).max() > 1e-3  # not bilinear


def test_animevideov3_x2_converts_with_opencv_alone(shared_dir, monkeypatch):
    """Neither the ncnn package nor PyTorch installed (srzoo with OpenCV alone):
    the NumPy reference checks the conversion, final bicubic included."""
    import sys

    monkeypatch.setitem(sys.modules, "ncnn", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    param = shared_dir / "models" / "esrgan-ncnn" / "realesr-animevideov3-x2.param"
    conv = converter_for("ncnn").convert(param, None, {})
    assert "numpy" in conv.checked_against.lower() and conv.probe_error <= 1e-3
    assert conv.info["scale"] == 2
