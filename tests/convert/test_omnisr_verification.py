"""OmniSR's conversion check must be able to fail (torch-free, like
test_verification_negative.py): the network of the committed golden ``omnisr_w4-x2``
(tests/data/golden) converts against the numpy reference, and a reference that is
wrong only in a transformer part (one weight of the first attention's v projection, or the
grid windows put back as block windows) is refused with the verification error.
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
def omnisr_file(tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.numpy")
    monkeypatch.setitem(sys.modules, "torch", None)  # the check of a machine without PyTorch
    g = golden.load("omnisr_w4-x2")
    path = tmp_path / "omnisr.safetensors"
    st.save_file(golden.weights(g["spec"]), str(path))
    return path


class WrongOps:
    """NumpyOps with one transformer operation changed."""

    def __init__(self, what: str) -> None:
        self._ops, self._what, self._calls = reference.NumpyOps(), what, 0
        self.name = self._ops.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)

    def linear(self, t: Any, w: np.ndarray, b: Any = None) -> Any:
        self._calls += 1
        if self._what == "linear" and self._calls == 3:  # q, k, then v of the first attention
            w = np.array(w, np.float32, copy=True)
            w.flat[0] += 0.05
        return self._ops.linear(t, w, b)

    def grid_reverse(self, t: Any, wh: int, ww: int, like: Any) -> Any:
        if self._what == "grid":
            return self._ops.window_reverse(t, wh, ww, like)
        return self._ops.grid_reverse(t, wh, ww, like)


def test_omnisr_converts_against_numpy_and_records_it(omnisr_file):
    conv = converter_for("safetensors").convert(omnisr_file, None, {})
    assert conv.checked_against.startswith("numpy reference") and conv.checked_against.endswith("32x32 probe")
    assert conv.info["arch"] == "omnisr" and conv.info["window"] == 4 and conv.probe_error <= 5e-5


@pytest.mark.parametrize("what", ["linear", "grid"])
def test_omnisr_with_a_wrong_reference_fails(omnisr_file, monkeypatch, what):
    # measured: the probe error is 8.8e-6; these references are off by 0.011 (v weight +0.05) and 6.0 (grid)
    monkeypatch.setattr(reference, "best", lambda: WrongOps(what))
    with pytest.raises(check.VerificationFailed, match=r"converted graph differs from the reference by .* "
                                                       r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(omnisr_file, None, {})
