"""Swift-SRGAN's conversion check must be able to fail (torch-free, like
test_verification_negative.py): the committed golden ``swiftsrgan_x4`` converts against
the numpy reference, and a reference without the BatchNorm folding, or one weight off,
is refused with the verification error.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import golden
from srzoo.convert import check, converter_for, reference
from srzoo.convert.arch import swiftsrgan


@pytest.fixture
def swift_file(tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.numpy")
    monkeypatch.setitem(sys.modules, "torch", None)  # the check of a machine without PyTorch
    g = golden.load("swiftsrgan_x4")
    sd = golden.weights(g["spec"])
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    path = tmp_path / "swift.safetensors"
    st.save_file(sd, str(path))
    return path


class OneWeightOff:
    def __init__(self) -> None:
        self._ops, self._done = reference.NumpyOps(), False
        self.name = self._ops.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)

    def conv(self, x: Any, w: np.ndarray, *a: Any, **k: Any) -> Any:
        if not self._done:
            w = np.array(w, np.float32, copy=True)
            w.flat[0] += 0.05
            self._done = True
        return self._ops.conv(x, w, *a, **k)


def test_swiftsrgan_converts_against_numpy(swift_file):
    conv = converter_for("safetensors").convert(swift_file, None, {})
    assert conv.checked_against.startswith("numpy reference")
    assert (conv.info["arch"], conv.info["scale"]) == ("swiftsrgan", 4) and conv.probe_error <= 1e-5


def test_a_wrong_reference_is_refused(swift_file, monkeypatch):
    # measured: the first weight +0.05 moves the probe output by 5.6e-2 (56x the tolerance)
    monkeypatch.setattr(reference, "best", OneWeightOff)
    with pytest.raises(check.VerificationFailed, match=r"swift.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(swift_file, None, {})


def test_a_reference_without_batchnorm_is_refused(swift_file, monkeypatch):
    """The graph folds BatchNorm into the pointwise convs; a reference that leaves it out
    (bn None) must disagree (measured: 0.99)."""
    real = swiftsrgan._sep

    def sep(F: Any, sd: Any, p: str, x: Any, bn: Any = None) -> Any:
        return real(F, sd, p, x, bn if isinstance(F, check.Graph) else None)
    monkeypatch.setattr(swiftsrgan, "_sep", sep)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(swift_file, None, {})
