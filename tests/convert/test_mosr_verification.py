"""MoSR's conversion check must be able to fail (torch-free, like
test_verification_negative.py): the network of the committed golden ``mosr_dys-x3-e2``
(tests/data/golden) converts against the numpy reference, and a reference or graph that
is wrong in MoSR's own parts (one weight of the reference's first conv; DySample's
channels resampled in one group instead of four; one tap of a block's depthwise kernel
in the emitted ONNX) is refused with the verification error.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import golden
from srzoo.convert import check, converter_for, reference


@pytest.fixture
def mosr_file(tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.numpy")
    monkeypatch.setitem(sys.modules, "torch", None)  # the check of a machine without PyTorch
    g = golden.load("mosr_dys-x3-e2")
    # unit-scale weights of either sign, LayerNorm scales around 1 (golden.weights draws 1-D
    # weights in [0.05, 0.3], which would damp every block to a whisper)
    rng = np.random.default_rng(3)
    sd = {}
    for key, shape in g["spec"]:
        v = rng.standard_normal(shape)
        if len(shape) >= 2:
            v /= np.sqrt(np.prod(shape[1:]))
        else:
            v = 1 + 0.3 * v if key.endswith("weight") else 0.1 * v
        sd[key] = v.astype(np.float32)
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    path = tmp_path / "mosr.safetensors"
    st.save_file(sd, str(path))
    return path


class WrongOps:
    """NumpyOps with one MoSR operation changed."""

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

    def dysample(self, x: Any, offset: Any, r: int, groups: int, channels: int) -> Any:
        if self._what == "groups":  # every channel moved by the first group's offsets
            n = groups * r * r
            one = np.concatenate([offset[:, :r * r], offset[:, n:n + r * r]], 1)
            return self._ops.dysample(x, one, r, 1, channels)
        return self._ops.dysample(x, offset, r, groups, channels)


def test_mosr_converts_against_numpy_and_records_it(mosr_file):
    conv = converter_for("safetensors").convert(mosr_file, None, {})
    assert conv.checked_against.startswith("numpy reference") and conv.checked_against.endswith("32x32 probe")
    assert (conv.info["arch"], conv.info["upsampler"], conv.info["hidden"], conv.info["conv_channels"]) == (
        "mosr", "dys", 32, 8)
    assert conv.probe_error <= 1e-5


@pytest.mark.parametrize("what", ["weight", "groups"])
def test_a_wrong_reference_is_refused(mosr_file, monkeypatch, what):
    # measured: probe error 1.4e-6 when right; the first weight +0.05 gives 1.1e-2, one group 0.58
    monkeypatch.setattr(reference, "best", lambda: WrongOps(what))
    with pytest.raises(check.VerificationFailed, match=r"mosr.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(mosr_file, None, {})


def test_one_wrong_depthwise_weight_in_the_graph_is_refused(mosr_file, monkeypatch):
    """One tap of the first gated block's 7x7 depthwise kernel moved by 0.05 in the emitted
    ONNX (measured: the probe error goes from 1.4e-6 to 5.4e-3)."""
    import onnx
    from onnx import numpy_helper

    real = check.build

    def one_weight_off(*a: Any, **k: Any) -> tuple[bytes, int]:
        data, params = real(*a, **k)
        m = onnx.load_from_string(data)
        dw = next(n.input[1] for n in m.graph.node if n.op_type == "Conv"
                  and any(at.name == "group" and at.i > 1 for at in n.attribute))
        init = next(t for t in m.graph.initializer if t.name == dw)
        w = numpy_helper.to_array(init).copy()
        w[0, 0, 3, 3] += 0.05
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        return m.SerializeToString(), params

    monkeypatch.setattr(check, "build", one_weight_off)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(mosr_file, None, {})
