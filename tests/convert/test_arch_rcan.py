"""RCAN (srzoo.convert.arch.rcan) against spandrel's implementation.

Randomly initialised networks of every variant spandrel loads (with and without the
MeanShift normalisation, x1 to x8 through pixel-shuffle steps of 2 and one of 3, the
"PixelUnshuffle" variant at x1 and x2, 3x3 and 5x5 kernels, grey and colour) are saved
by torch, converted without torch in the graph path, and the ONNX is run by ONNX
Runtime and cv2.dnn on a real image crop of odd size (the unshuffle variant pads it
in the graph, as spandrel's check_img_size does): within 1e-4 of spandrel's module.
No real community RCAN file is available here (they are GitHub release assets outside
this machine), so these random-network checks are the parity evidence.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import spandrel_src
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload
from srzoo.convert.onnxbuild import run_cv2

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4


def rcan_class():
    pad = spandrel_src.load("__arch_helpers/padding.py")["pad_to_multiple"]
    return spandrel_src.load("RCAN/__arch/rcan_arch.py", pad_to_multiple=pad)["RCAN"]


def _randomise(net, seed: int):
    """Unit-scale weights (convs ~ 1/sqrt(fan_in)); the MeanShift convolutions keep their values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "_mean." in name:
                continue
            if p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23, channels: int = 3) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x[:, :channels])


CASES = {  # id: (RCAN keyword arguments, the scale the file stands for)
    "norm-x4": (dict(scale=4, n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4), 4),
    "norm-x3-k5": (dict(scale=3, n_resgroups=1, n_resblocks=3, n_feats=16, reduction=8, kernel_size=5), 3),
    "nonorm-x2": (dict(scale=2, n_resgroups=2, n_resblocks=1, n_feats=16, reduction=4, norm=False), 2),
    "norm-x8": (dict(scale=8, n_resgroups=1, n_resblocks=1, n_feats=8, reduction=2), 8),
    "unshuffle-x2": (dict(scale=2, n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4, unshuffle_mod=True), 2),
    "unshuffle-x1": (dict(scale=1, n_resgroups=1, n_resblocks=2, n_feats=16, reduction=4, unshuffle_mod=True), 1),
    "gray-nonorm-x2": (dict(scale=2, n_resgroups=1, n_resblocks=2, n_feats=16, reduction=4, n_colors=1,
                            norm=False), 2),
}


def _case(tmp_path: Path, case: str, seed: int):
    kw, _ = CASES[case]
    net = _randomise(rcan_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


def _spandrel(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():  # spandrel's forward scales its input in place: a copy
        return net(torch.from_numpy(x.copy())).numpy()


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    kw, s = CASES[case]
    net, f = _case(tmp_path, case, seed=len(case))
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale) == ("rcan", s)
    p = a.params
    assert (p["features"], p["groups"], p["blocks"]) == (kw["n_feats"], kw["n_resgroups"], kw["n_resblocks"])
    assert p["kernel"] == kw.get("kernel_size", 3) and p["reduction"] == kw["reduction"]
    assert p["norm"] is kw.get("norm", True) and p["unshuffle"] == (4 // s if kw.get("unshuffle_mod") else 1)

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    c = kw.get("n_colors", 3)
    x = image(shared_dir, channels=c)  # 19x23: odd, not a multiple of the unshuffle factor
    want = _spandrel(net, x)
    assert want.shape == (1, c, 19 * s, 23 * s) and want.std() > 0.05  # a real signal, not a constant
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    got_ort = sess.run(None, {"input": x})[0]
    assert np.abs(got_ort - want).max() <= TOL
    got_cv = run_cv2(conv.onnx, x)
    assert np.abs(got_cv - want).max() <= TOL
    ov = pytest.importorskip("openvino")  # last: a missing OpenVINO skips only this engine
    core = ov.Core()
    m = core.compile_model(core.read_model(conv.onnx, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.abs(np.asarray(m(x)[0]) - want).max() <= TOL


@pytest.mark.parametrize("case", ["norm-x4", "unshuffle-x1"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    net, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    assert np.abs(got - _spandrel(net, x)).max() <= TOL


def test_safetensors_file_converts_the_same(tmp_path, shared_dir):
    """The catalogue's RCAN files are .safetensors: the same detection, check and parity."""
    from srzoo.convert import safetensors as st

    net, _ = _case(tmp_path, "unshuffle-x2", seed=3)
    f = tmp_path / "net.safetensors"
    st.save(f, {k: v.numpy() for k, v in net.state_dict().items()})
    conv = converter_for("safetensors").convert(f, None, {"tolerance": TOL})
    assert conv.info["arch"] == "rcan" and conv.info["unshuffle"] == 2
    x = image(shared_dir, 17, 21)
    import onnxruntime as ort

    got = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - _spandrel(net, x)).max() <= TOL


def test_a_missing_attention_layer_is_not_rcan():
    """One block without its channel attention: not guessed as RCAN (nor as anything else)."""
    net = rcan_class()(scale=2, n_resgroups=1, n_resblocks=2, n_feats=8, reduction=2)
    sd = {k: v.numpy() for k, v in net.state_dict().items() if not k.startswith("body.0.body.1.body.3.")}
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)
