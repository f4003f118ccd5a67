"""PLKSR / RealPLKSR (srzoo.convert.arch.plksr) against spandrel's implementation.

Randomly initialised networks of every variant srzoo reads (RealPLKSR: LayerNorm or
GroupNorm, pixel shuffle or DySample at scales 1-4; PLKSR: CCM / ICCM / DCCM mixers,
square or rectangular large kernels, with and without element-wise attention) are
saved by torch, converted without torch in the graph path, and the ONNX is run by
ONNX Runtime and cv2.dnn on a real image crop of odd size: within 1e-4 of spandrel's
module. No real community RealPLKSR file is available here (they are on Google
Drive / Mega / GitHub releases outside this machine), so the random-network checks
are the parity evidence; the weights are re-drawn at unit scale so no part of the
network is hidden behind a tiny initialisation.
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


def _modules():
    dys = spandrel_src.load("__arch_helpers/dysample.py")["DySample"]
    real = spandrel_src.load("PLKSR/__arch/RealPLKSR.py", DySample=dys)["RealPLKSR"]
    plain = spandrel_src.load("PLKSR/__arch/PLKSR.py")["PLKSR"]
    return real, plain


def _randomise(net, seed: int):
    """Unit-scale weights everywhere (convs ~ 1/sqrt(fan_in)), norms and DySample's
    scope away from their identity initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("weight"):  # LayerNorm / GroupNorm scales
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        if hasattr(net.to_img, "offset"):  # offsets of about a pixel, so borders and blends matter
            net.to_img.offset.weight.mul_(3.0)
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


REAL = {  # id: RealPLKSR keyword arguments
    "ln-ps-x2": dict(dim=16, n_blocks=2, upscaling_factor=2, kernel_size=7, layer_norm=True),
    "gn-ps-x4": dict(dim=16, n_blocks=2, upscaling_factor=4, kernel_size=9, split_ratio=0.5),
    "gn-ps-x1-noea": dict(dim=16, n_blocks=3, upscaling_factor=1, kernel_size=5, use_ea=False),
    "ln-dys-x2": dict(dim=16, n_blocks=2, upscaling_factor=2, kernel_size=7, layer_norm=True, dysample=True),
    "gn-dys-x3": dict(dim=16, n_blocks=2, upscaling_factor=3, kernel_size=7, dysample=True),
    "gn-dys-x4": dict(dim=12, n_blocks=1, upscaling_factor=4, kernel_size=5, dysample=True),
    "ln-dys-x1": dict(dim=16, n_blocks=2, upscaling_factor=1, kernel_size=7, layer_norm=True, dysample=True),
}
PLAIN = {  # id: PLKSR keyword arguments
    "ccm-plk-x2": dict(dim=16, n_blocks=2, upscaling_factor=2, ccm_type="CCM", kernel_size=7),
    "iccm-plk-x3-noea": dict(dim=16, n_blocks=2, upscaling_factor=3, ccm_type="ICCM", kernel_size=5, use_ea=False),
    "dccm-rect-x4": dict(dim=16, n_blocks=2, upscaling_factor=4, ccm_type="DCCM", kernel_size=9,
                         lk_type="RectSparsePLK"),
}


def _case(tmp_path: Path, which: str, kw: dict, seed: int):
    real, plain = _modules()
    net = _randomise((real if which == "real" else plain)(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


@pytest.mark.parametrize("which,case", [("real", k) for k in REAL] + [("plain", k) for k in PLAIN])
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, which, case):
    kw = (REAL if which == "real" else PLAIN)[case]
    net, f = _case(tmp_path, which, kw, seed=len(case))
    s = kw["upscaling_factor"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale) == ("realplksr" if which == "real" else "plksr", s)
    assert (a.params["dim"], a.params["blocks"], a.params["kernel"]) == (kw["dim"], kw["n_blocks"], kw["kernel_size"])
    assert a.params["ea"] is kw.get("use_ea", True)
    if which == "real":
        assert a.params["upsampler"] == ("dysample" if kw.get("dysample") else "pixelshuffle")
        assert a.params["norm"] == ("layernorm" if kw.get("layer_norm") else "groupnorm")
    else:
        assert a.params["mixer"] == kw["ccm_type"]
        assert a.params["lk"] == ("rectplk" if kw.get("lk_type") == "RectSparsePLK" else "plk")

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir)  # 19x23: odd, not a multiple of anything
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, 3, 19 * s, 23 * s) and want.std() > 0.05  # a real signal, not a constant
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    got_ort = sess.run(None, {"input": x})[0]
    assert np.abs(got_ort - want).max() <= TOL
    got_cv = run_cv2(conv.onnx, x)
    assert np.abs(got_cv - want).max() <= TOL


@pytest.mark.parametrize("which,case", [("real", "gn-dys-x3"), ("real", "ln-dys-x2"), ("plain", "ccm-plk-x2")])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, which, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    kw = (REAL if which == "real" else PLAIN)[case]
    net, f = _case(tmp_path, which, kw, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_sparse_plk_is_refused_with_the_reason(tmp_path):
    """PLKSR's SparsePLK stores no dilations: not guessed."""
    _, plain = _modules()
    net = plain(dim=16, n_blocks=1, upscaling_factor=2, lk_type="SparsePLK", kernel_size=9)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)


def test_safetensors_file_converts_the_same(tmp_path, shared_dir):
    """A RealPLKSR-DySample .safetensors (the format of several catalogue records) goes through
    the same detection and check; its graph matches spandrel too."""
    from srzoo.convert import safetensors as st

    kw = REAL["gn-dys-x3"]
    net, _ = _case(tmp_path, "real", kw, seed=3)
    f = tmp_path / "net.safetensors"
    st.save(f, {k: v.numpy() for k, v in net.state_dict().items()})
    conv = converter_for("safetensors").convert(f, None, {"tolerance": TOL})
    assert conv.info["arch"] == "realplksr" and conv.info["upsampler"] == "dysample" and conv.info["groups"] == 3
    x = image(shared_dir, 17, 21)
    import onnxruntime as ort

    got = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL
