"""TensorFlow SavedModel (folder and .tar.gz, ESRGAN-shaped: NHWC RGB [0,255]
in and out) converted through tf2onnx, checked against TensorFlow and run by
the ordinary pipeline. Needs tensorflow and tf2onnx (the tensorflow extra)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from srzoo.cli import main  # noqa: E402


def make_savedmodel(folder: Path) -> tf.Module:
    rng = np.random.default_rng(0)

    class Tiny(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = tf.Variable(rng.normal(0, 0.2, (3, 3, 3, 8)).astype(np.float32))
            self.w2 = tf.Variable(rng.normal(0, 0.2, (3, 3, 8, 48)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, x):
            t = tf.nn.leaky_relu(tf.nn.conv2d(x / 255.0, self.w1, 1, "SAME"), 0.2)
            t = tf.nn.depth_to_space(tf.nn.conv2d(t, self.w2, 1, "SAME"), 4)
            return tf.clip_by_value(tf.sigmoid(t) * 255.0, 0, 255)

    m = Tiny()
    tf.saved_model.save(m, str(folder), signatures={"serving_default": m.__call__})
    return m


def test_savedmodel_targz_convert_manifest_upscale(tmp_path, shared_dir, monkeypatch, capsys):
    sm = tmp_path / "esrgan-tiny"
    model = make_savedmodel(sm)
    arc = tmp_path / "esrgan-tiny.tar.gz"
    with tarfile.open(arc, "w:gz") as t:
        t.add(sm, arcname="esrgan-tiny")
    man = tmp_path / "m.toml"
    assert main(["convert", str(arc), "-o", str(tmp_path / "t.onnx"), "--manifest", str(man),
                 "--name", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "format:       tf-savedmodel" in out and "scale:        4" in out and "tensorflow" in out
    assert 'layout = "nchw"' in man.read_text() and "range = 255.0" in man.read_text()
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))[:40, :48]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img)
    monkeypatch.setenv("SRZOO_REGISTRY", str(man))
    assert main(["upscale", str(src), "-m", "tiny", "-s", "4", "-o", str(tmp_path / "o.png"), "-q"]) == 0
    got = cv2.imread(str(tmp_path / "o.png"))
    want = model(tf.constant(img[None, :, :, ::-1].astype(np.float32))).numpy()[0, :, :, ::-1]
    assert got.shape == (160, 192, 3)
    assert np.abs(got.astype(np.float32) - np.round(want)).max() <= 1.0


def test_savedmodel_folder(tmp_path):
    from srzoo.convert.files import convert_file

    make_savedmodel(tmp_path / "sm")
    done = convert_file(tmp_path / "sm", tmp_path / "a.onnx")
    assert done.format == "tf-savedmodel" and done.conversion.probe_error <= 1e-3
    assert done.info["scale"] == 4 and done.info["layout"] == "nchw"
