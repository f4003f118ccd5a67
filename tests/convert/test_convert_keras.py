"""Keras HDF5: SRCNN (Keras 1 weights) and SRGAN/SRResNet (krasserm) converted
ONNX against Keras models built here from the h5 arrays (read with h5py by
the test, not by srzoo). Needs TensorFlow (installed by .ci/run, not by the
test extra)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from srzoo.convert import converter_for  # noqa: E402
from cvref import run_onnx  # noqa: E402


def y_crop(shared: Path, size: int) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[40:40 + size, 40:40 + size]
    return (cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[:, :, 0].astype(np.float32) / 255)[None, None]


@pytest.mark.parametrize("file,middle", [("3051crop_weight_200.h5", 3), ("m_model_adam_new30.h5", 1)])
def test_srcnn_matches_keras_and_keeps_full_size(shared_dir, tmp_path, file, middle):
    path = shared_dir / "models" / "srcnn" / file
    with h5py.File(path, "r") as f:
        w = [[np.array(f[f"convolution2d_{i}/convolution2d_{i}_{k}:0"]) for k in "Wb"] for i in (1, 2, 3)]
    model = tf.keras.Sequential([
        tf.keras.Input((None, None, 1)),
        tf.keras.layers.Conv2D(128, 9, padding="valid", activation="relu"),
        tf.keras.layers.Conv2D(64, middle, padding="same", activation="relu"),
        tf.keras.layers.Conv2D(1, 5, padding="valid"),
    ])
    model.set_weights([a for pair in w for a in pair])
    conv = converter_for("keras-h5").convert(path, None, {})
    assert conv.info["arch"] == "srcnn" and conv.info["layers"] == f"9-{middle}-5"
    assert conv.checked_against.startswith("tensorflow") and conv.probe_error <= 1e-3
    x = y_crop(shared_dir, 40)
    got = run_onnx(conv.onnx, x, tmp_path)
    assert got.shape == x.shape  # the valid border is handled: full size
    keras_out = model(x.transpose(0, 2, 3, 1)).numpy().transpose(0, 3, 1, 2)  # 12 px smaller
    assert keras_out.shape == (1, 1, 28, 28)
    # equal where the Keras model's own border (zero padding of the middle 'same' layer at the
    # edge of its valid region) does not reach: 6 + 3 px from the image border
    assert np.abs(got[:, :, 9:-9, 9:-9] - keras_out[:, :, 3:-3, 3:-3]).max() <= 1e-4
    assert np.abs(got[:, :, 6:-6, 6:-6] - keras_out).mean() <= 0.01


@pytest.mark.parametrize("file", ["pre_generator.h5", "gan_generator.h5"])
def test_srresnet_srgan_match_keras(shared_dir, tmp_path, file):
    """krasserm's generator rebuilt in Keras from the h5 layer weights."""
    path = shared_dir / "models" / "srgan" / file
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        weights = {n: [np.array(f[n][w]) for w in f[n].attrs["weight_names"]] for n in names
                   if len(f[n].attrs.get("weight_names", []))}
    L = tf.keras.layers
    x_in = L.Input((None, None, 3))
    layers = {}

    def mk(name, layer):
        layers[name] = layer
        return layer
    x = mk("conv2d", L.Conv2D(64, 9, padding="same"))(x_in)
    x = x1 = mk("p_re_lu", L.PReLU(shared_axes=[1, 2]))(x)
    ci, bi, pi = 1, 0, 1
    for _ in range(16):
        y = mk(f"conv2d_{ci}", L.Conv2D(64, 3, padding="same"))(x)
        y = mk(f"batch_normalization_v1{'_%d' % bi if bi else ''}", L.BatchNormalization(epsilon=1e-3))(y)
        y = mk(f"p_re_lu_{pi}", L.PReLU(shared_axes=[1, 2]))(y)
        y = mk(f"conv2d_{ci + 1}", L.Conv2D(64, 3, padding="same"))(y)
        y = mk(f"batch_normalization_v1_{bi + 1}", L.BatchNormalization(epsilon=1e-3))(y)
        x = L.Add()([x, y])
        ci, bi, pi = ci + 2, bi + 2, pi + 1
    y = mk(f"conv2d_{ci}", L.Conv2D(64, 3, padding="same"))(x)
    y = mk(f"batch_normalization_v1_{bi}", L.BatchNormalization(epsilon=1e-3))(y)
    x = L.Add()([x1, y])
    for _ in range(2):
        ci += 1
        x = mk(f"conv2d_{ci}", L.Conv2D(256, 3, padding="same"))(x)
        x = L.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(x)
        x = mk(f"p_re_lu_{pi}", L.PReLU(shared_axes=[1, 2]))(x)
        pi += 1
    x = mk(f"conv2d_{ci + 1}", L.Conv2D(3, 9, padding="same", activation="tanh"))(x)
    model = tf.keras.Model(x_in, x)
    assert set(layers) == set(weights)
    for name, layer in layers.items():
        layer.set_weights(weights[name])
    conv = converter_for("keras-h5").convert(path, None, {})
    assert (conv.info["arch"], conv.info["scale"], conv.info["blocks"]) == ("srresnet", 4, 16)
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "head.png"))[100:124, 100:124]
    x = (img[:, :, ::-1].astype(np.float32) / 255)[None]
    want = (model(x).numpy() + 1) / 2  # krasserm: tanh output in [-1,1] is the [0,255] image
    got = run_onnx(conv.onnx, x.transpose(0, 3, 1, 2).copy(), tmp_path).transpose(0, 2, 3, 1)
    assert got.shape == (1, 96, 96, 3)
    assert np.abs(got - want).max() <= 1e-3


def test_not_a_keras_file(tmp_path):
    from srzoo import SrzooError

    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(SrzooError, match="not a Keras weight file"):
        converter_for("keras-h5").convert(p, None, {})
