"""Real-CUGAN's conversion check must be able to fail (torch-free, like
test_verification_negative.py): the network of the committed golden ``realcugan_3x-pro``
(tests/data/golden) converts against the numpy reference, and a reference that is wrong
in one weight, or in Real-CUGAN's own parts (the reflect padding replaced by edge
padding, one transposed-convolution tap of the emitted graph moved), is refused with the
verification error.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import golden
from srzoo.convert import check, converter_for, reference

TOL = 1e-3  # the converters' default


@pytest.fixture
def cugan_file(tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.numpy")
    monkeypatch.setitem(sys.modules, "torch", None)  # the check of a machine without PyTorch
    g = golden.load("realcugan_3x-pro")
    sd = golden.weights(g["spec"])
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    path = tmp_path / "cugan.safetensors"
    st.save_file(sd, str(path))
    return path


class WrongOps:
    """NumpyOps with one Real-CUGAN operation changed."""

    def __init__(self, what: str) -> None:
        self._ops, self._what, self._done = reference.NumpyOps(), what, False
        self.name = self._ops.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)

    def conv(self, x: Any, w: np.ndarray, *a: Any, **k: Any) -> Any:
        if self._what == "weight" and not self._done:
            w = np.array(w, np.float32, copy=True)
            w.flat[0] += 0.05
            self._done = True
        return self._ops.conv(x, w, *a, **k)

    def pad_reflect_multiple(self, x: Any, p: int, m: int) -> Any:
        if self._what == "edge":
            eh, ew = (-x.shape[2]) % m, (-x.shape[3]) % m
            return np.pad(x, ((0, 0), (0, 0), (p, p + eh), (p, p + ew)), mode="edge")
        return self._ops.pad_reflect_multiple(x, p, m)


def test_cugan_converts_against_numpy_and_records_it(cugan_file):
    conv = converter_for("safetensors").convert(cugan_file, None, {})
    assert conv.checked_against.startswith("numpy reference") and conv.checked_against.endswith("36x36 probe")
    assert (conv.info["arch"], conv.info["variant"], conv.info["pro"]) == ("realcugan", "3x", True)
    assert conv.probe_error <= 1e-4  # measured 1.1e-5 (outputs reach about 10 with these weights)


@pytest.mark.parametrize("what", ["weight", "edge"])
def test_a_wrong_reference_is_refused(cugan_file, monkeypatch, what):
    # measured: probe error 1e-6 when right; the first weight +0.05 gives ~0.1, edge padding ~1
    monkeypatch.setattr(reference, "best", lambda: WrongOps(what))
    with pytest.raises(check.VerificationFailed, match=r"cugan.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(cugan_file, None, {})


def test_one_wrong_transposed_convolution_weight_in_the_graph_is_refused(cugan_file, monkeypatch):
    """One tap of unet1's 5x5 stride-3 ConvTranspose (the 3x upsampling) moved by 0.05 in the
    emitted ONNX: the check must see it."""
    import onnx
    from onnx import numpy_helper

    real = check.build

    def one_weight_off(*a: Any, **k: Any) -> tuple[bytes, int]:
        data, params = real(*a, **k)
        m = onnx.load_from_string(data)
        tw = [n.input[1] for n in m.graph.node if n.op_type == "ConvTranspose"]
        init = next(t for t in m.graph.initializer if t.name in tw and tuple(t.dims[2:]) == (5, 5))
        w = numpy_helper.to_array(init).copy()
        w[0, 0, 2, 2] += 0.05
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        return m.SerializeToString(), params

    monkeypatch.setattr(check, "build", one_weight_off)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(cugan_file, None, {})
