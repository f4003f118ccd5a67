"""Crafted Keras .h5 weight files, made by editing copies of the real SRCNN and SRGAN
files with h5py: HDF5 external storage and external links are refused before a byte
of the other file is read; structural damage is one ModelLoadError line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from srzoo.convert import keras  # noqa: E402
from srzoo.convert.files import convert_file, inspect_file  # noqa: E402
import hostile_files as hf  # noqa: E402
from srzoo.errors import ModelLoadError  # noqa: E402

SRCNN = "srcnn/m_model_adam_new30.h5"
SRGAN = "srgan/gan_generator.h5"


@pytest.fixture
def copy(tmp_path, shared_dir):
    def make(name: str = SRCNN) -> Path:
        dst = tmp_path / Path(name).name
        shutil.copyfile(shared_dir / "models" / name, dst)
        return dst
    return make


def refused(path: Path, *words: str) -> str:
    for fn in (inspect_file, lambda p: convert_file(p, p.with_suffix(".onnx"))):
        msg = hf.refusal(fn, path, ModelLoadError, *words)
    assert not path.with_suffix(".onnx").exists()
    return msg


def _replace(path: Path, name: str, **kw) -> None:
    with h5py.File(path, "r+") as f:
        g = f["convolution2d_1"]
        del g[name]
        g.create_dataset(name, **kw)


def test_real_files_still_read(copy):
    assert inspect_file(copy())["arch"].startswith("srcnn")
    assert inspect_file(copy(SRGAN))["arch"].startswith("srresnet")


def test_external_storage_is_refused(copy, tmp_path):
    """A dataset whose values live in another file (here a secret beside it, and /etc/passwd)."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(np.arange(64, dtype="<f4").tobytes())
    for target in (str(secret), "/etc/passwd"):
        p = copy()
        _replace(p, "convolution2d_1_b:0", shape=(64,), dtype="<f4", external=[(target, 0, 256)])
        refused(p, "refused", "external storage", "convolution2d_1_b:0")


def test_external_link_is_refused(copy, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.zeros((9, 9, 1, 64), np.float32)
    p = copy()
    with h5py.File(p, "r+") as f:
        g = f["convolution2d_1"]
        del g["convolution2d_1_W:0"]
        g["convolution2d_1_W:0"] = h5py.ExternalLink(str(other), "/w")
    refused(p, "refused", "external link")


def test_external_link_as_a_layer_group(copy, tmp_path):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["convolution2d_2"]
        f["convolution2d_2"] = h5py.ExternalLink("/etc/passwd", "/")
    refused(p, "external link", "convolution2d_2")


def test_missing_group(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["convolution2d_2"]
    refused(p, "convolution2d_2", "missing group")


def test_wrong_channel_count(copy):
    p = copy()
    _replace(p, "convolution2d_1_W:0", data=np.zeros((9, 9, 1, 32), np.float32))
    _replace(p, "convolution2d_1_b:0", data=np.zeros(32, np.float32))
    refused(p, "do not chain")


def test_bias_length(copy):
    p = copy()
    _replace(p, "convolution2d_1_b:0", data=np.zeros(63, np.float32))
    refused(p, "bias of shape (63,)")


def test_zero_size_kernel(copy):
    p = copy()
    _replace(p, "convolution2d_1_W:0", data=np.zeros((0, 9, 1, 64), np.float32))
    refused(p, "kernel of shape (0, 9, 1, 64)")


def test_text_dataset(copy):
    p = copy()
    _replace(p, "convolution2d_1_b:0", data=np.array([b"rm -rf"] * 64))
    refused(p, "not weights")


def test_srgan_batchnorm_length(copy):
    p = copy(SRGAN)
    with h5py.File(p, "r+") as f:
        root = f["model_weights"] if "model_weights" in f else f
        bn = root["batch_normalization_v1"]
        names = [n.decode() for n in bn.attrs["weight_names"]]
        gamma = next(n for n in names if "gamma" in n)
        del bn[gamma]
        bn[gamma] = np.ones(3, np.float32)
    refused(p, "BatchNormalization")


def test_dataset_over_the_bound(copy, monkeypatch):
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(1 << 20))
    p = copy()
    with h5py.File(p, "r+") as f:
        g = f["convolution2d_1"]
        del g["convolution2d_1_W:0"]
        # 4 GiB declared, stored as one chunk of a fill value: tiny on disk
        g.create_dataset("convolution2d_1_W:0", shape=(9, 9, 1 << 14, 1 << 16), dtype="<f4", chunks=(1, 1, 64, 64))
    assert p.stat().st_size < 1 << 20
    refused(p, "SRZOO_MAX_MODEL_BYTES")


def test_truncated(copy):
    p = copy()
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(keras.SrzooError) as e:
        inspect_file(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
