"""srzoo against committed cv2.dnn_superres references of the OpenCV .pb models.

OpenCV 5.1 removed the TensorFlow importer, so ``DnnSuperResImpl.upsample()``
on the upstream ``.pb`` files cannot be computed on every OpenCV the tests run
with. tests/data/dnn_superres holds its output on a 40x52 crop of monarch
(colour and grey), recorded with OpenCV 4.14 by
tools/record_dnn_superres_refs.py; refs.json lists the versions and the sha256
of every input and output. These tests check that the references are intact
and were made from the very .pb files in ../shared, re-derive them where
this OpenCV can still read .pb files, and compare srzoo's output on every
backend with them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from cvref import DNN_SUPERRES_REFS, assert_near_upsample, refs_crop

DATA = DNN_SUPERRES_REFS
REFS = json.loads((DATA / "refs.json").read_text())
MODELS = list(REFS["models"])  # "espcn_x2", ...
# every OpenCV .pb model srzoo mirrors: ESPCN, FSRCNN, FSRCNN-small x2/3/4, LapSRN x2/4/8
EXPECTED = {f"{m}_x{s}" for m in ("espcn", "fsrcnn", "fsrcnn-small") for s in (2, 3, 4)} | \
    {f"lapsrn_x{s}" for s in (2, 4, 8)}
BACKENDS = ["opencv:cpu", "onnxruntime:cpu", "openvino:cpu"]
HAS_TF_IMPORTER = hasattr(cv2.dnn, "readNetFromTensorflow")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference(key: str, grey: bool) -> np.ndarray:
    ref = cv2.imread(str(DATA / f"{key}{'_grey' if grey else ''}.png"), cv2.IMREAD_UNCHANGED)
    assert ref is not None, key
    return ref


def maxdiff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.fixture(scope="module")
def crops(shared_dir: Path) -> dict[str, np.ndarray]:
    """The colour and grey crops the references were recorded on (checked by hash)."""
    colour = refs_crop(shared_dir)
    out = {"colour": colour, "grey": cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)}
    for k, v in out.items():
        assert list(v.shape) == REFS["input_shape"][k], k
        assert sha256(v.tobytes()) == REFS["input_sha256"][k], f"the {k} crop is not the recorded input"
    return out


# --------------------------------------------------------------------------- (a) integrity
def test_refs_cover_every_opencv_model():
    assert set(MODELS) == EXPECTED
    pngs = {p.name for p in DATA.glob("*.png")}
    assert pngs == set(REFS["outputs"]) == {f"{k}{g}.png" for k in EXPECTED for g in ("", "_grey")}
    total = sum(p.stat().st_size for p in DATA.iterdir())
    assert total < 1_000_000, total  # committed test data stays small


@pytest.mark.parametrize("fname", sorted(REFS["outputs"]))
def test_png_matches_recorded_hash(fname):
    rec = REFS["outputs"][fname]
    data = (DATA / fname).read_bytes()
    assert sha256(data) == rec["sha256"], f"{fname} changed since refs.json was written"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint8 and list(img.shape) == rec["shape"]
    assert sha256(img.tobytes()) == rec["pixels_sha256"]


def test_shared_files_match_recorded_hashes(shared_dir, crops):
    """The .pb files and the image in ../shared are the ones the references were made from."""
    assert sha256((shared_dir / REFS["image"]).read_bytes()) == REFS["image_sha256"]
    for key, m in REFS["models"].items():
        pb = shared_dir / m["pb"]
        assert sha256(pb.read_bytes()) == m["pb_sha256"], f"{pb} is not the file {key} was recorded from"


# --------------------------------------------------------------------------- (b) re-derive
@pytest.mark.skipif(not HAS_TF_IMPORTER,
                    reason=f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromTensorflow (the "
                           "TensorFlow importer was removed in 5.1), so dnn_superres cannot read the "
                           ".pb files to re-derive the committed references here")
@pytest.mark.parametrize("key", MODELS)
def test_dnn_superres_reproduces_refs(shared_dir, crops, key):
    m = REFS["models"][key]
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(shared_dir / m["pb"]))
    sr.setModel(m["algorithm"], m["scale"])
    for kind, img in crops.items():
        assert maxdiff(sr.upsample(img), reference(key, kind == "grey")) <= 1, (key, kind)


# --------------------------------------------------------------------------- (c) srzoo
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key", MODELS)
def test_upscaler_equals_refs(models_env, crops, key, backend):
    m = REFS["models"][key]
    up = srzoo.Upscaler(m["model"], m["scale"], backend=backend)
    assert up.backend == backend
    out = up(crops["colour"])
    assert_near_upsample(out, reference(key, False), f"{key} {backend}")
    grey = up(crops["grey"])
    d = maxdiff(grey, reference(key, True))  # no chroma: the same arithmetic
    assert d <= 1, (key, backend, "grey", d)
