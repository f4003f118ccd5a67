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
