"""Architecture bugs caught WITHOUT PyTorch: every .pth/.safetensors architecture of
srzoo/convert/arch/ against outputs recorded once with PyTorch (tests/torch_archs.py,
spandrel's SPAN) by tools/record_golden.py, stored in tests/data/golden/.

The converter's own check compares its ONNX with the same ``arch.forward`` run
eagerly, so it only catches graph-emission bugs; these goldens are the
independent forward pass. PyTorch is hidden from srzoo here (``sys.modules``), so
the converter checks against its NumPy reference, as it does on a machine
without PyTorch.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

import golden
from srzoo.convert import arch as archs
from srzoo.convert import converter_for
from srzoo.convert.onnxbuild import run_cv2
from srzoo.convert.reference import NumpyOps

NAMES = golden.names()
#: every architecture module has at least one golden
ARCH_OF = {"rrdbnet": "rrdbnet", "srvgg": "srvgg", "carn-m": "carn", "rfdn": "rfdn", "vdsr": "vdsr",
           "span": "span", "plksr": "plksr", "omnisr": "omnisr", "swinir": "swinir", "drct": "drct",
           "dat": "dat", "rgt": "rgt", "hat": "hat", "swin2sr": "swin2sr", "rcan": "rcan", "safmn": "safmn",
           "spsr": "spsr", "srformer": "srformer", "realcugan": "realcugan", "mosr": "mosr",
           "swiftsrgan": "swiftsrgan", "atd": "atd"}
# measured (numpy 2, OpenCV 4.12, torch 2.13 recording): largest |ONNX - golden| / max(1, max|golden|)
# is at most 1.5e-6 (rfdn_x4), the NumPy reference's 1.1e-6 (rrdbnet_x4); 1e-4 leaves ~70x headroom
# for other BLAS/CPUs, and is >100x below what one wrong weight moves (test_golden_catches_a_wrong_weight)
REL_TOL = 1e-4
#: the architecture name a conversion reports, where it is not the golden's prefix
REPORTED_AS = {"plksr": {"plksr", "realplksr"}}
#: families whose graphs compute shapes at run time (OpenCV 5 imports them, 4.x does not)
RUNTIME_SHAPES = {"dat", "rgt", "realcugan", "atd"}


def state_dict(g: dict) -> dict[str, np.ndarray]:
    sd = golden.weights(g["spec"], gain=g["meta"].get("gain", 1.0))
    for k in g["meta"]["buffers"]:
        sd[k] = np.asarray(g[f"buffer:{k}"])
    for k, a in g["meta"].get("alias", {}).items():  # one weight under a second name (SPSR)
        sd[k] = sd[a]
    return sd


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))


def test_every_architecture_has_a_golden():
    assert {ARCH_OF[n.split("_")[0]] for n in NAMES} == set(archs.MODULES)


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_conversion_matches_the_pytorch_golden(name, tmp_path, no_torch):
    st = pytest.importorskip("safetensors.numpy")
    g = golden.load(name)
    path = tmp_path / f"{name}.safetensors"
    st.save_file(state_dict(g), str(path))
    conv = converter_for("safetensors").convert(path, None, {"scale": g["meta"]["scale"]})
    assert conv.checked_against.startswith("numpy reference")
    family = name.split("_")[0].split("-")[0]
    assert conv.info["arch"].split("-")[0] in REPORTED_AS.get(family, {family})
    try:
        got = run_cv2(conv.onnx, g["x"])
    except cv2.error:
        # OpenCV 4.x's importer cannot take graphs with run-time shapes (DAT's windows): the
        # converter checks them, and the engines run them, with ONNX Runtime there
        if family not in RUNTIME_SHAPES or not cv2.__version__.startswith("4."):
            raise
        import onnxruntime as ort

        got = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": g["x"]})[0]
    assert rel_err(got, g["y"]) <= REL_TOL


@pytest.mark.parametrize("name", NAMES)
def test_numpy_reference_matches_the_pytorch_golden(name):
    g = golden.load(name)
    sd = state_dict(g)
    a = archs.detect(sd, g["meta"]["scale"])
    ops = NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(g["x"])))
    assert rel_err(got, g["y"]) <= REL_TOL


@pytest.mark.parametrize("name", NAMES)
def test_golden_catches_a_wrong_weight(name):
    """The comparison can fail: one weight of the first convolution moved by 0.1 moves the
    output by 1.2e-2 (vdsr) to 1.2e-1 (span) relative, measured: > 100x REL_TOL. DAT's and
    RGT's first conv is followed by a LayerNorm and attention that average it out: 6.1e-3
    (dat_2x4-ps-x2), 1.1e-2 (dat_8x16), 7.7e-3 (rgt_2x4-x2), so 50x there."""
    g = golden.load(name)
    sd = state_dict(g)
    first = [k for k, s in g["spec"] if len(s) == 4][0]
    sd[first] = sd[first].copy()
    sd[first].flat[0] += 0.1
    a = archs.detect(sd, g["meta"]["scale"])
    ops = NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(g["x"])))
    assert rel_err(got, g["y"]) > (50 if name.startswith(("dat", "rgt")) else 100) * REL_TOL
