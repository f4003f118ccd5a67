"""OmniSR (srzoo.convert.arch.omnisr) against spandrel's implementation.

Randomly initialised networks of every variant spandrel reads (window sizes 4, 8 and 16
from the relative position bias, no position bias (window 8), with and without conv
biases, one to three OSAG groups of one or two OSA blocks, scales 1 to 4, 16 to 48
features) are saved by torch, converted without torch in the graph path, and the ONNX is
run by ONNX Runtime, OpenVINO (f32) and cv2.dnn on a real image crop of odd size, which
the graph pads to the window and crops back: within 1e-4 of spandrel's module. No real
community OmniSR file is available here (they are on Google Drive / Mega / GitHub
releases outside this machine), so the random-network checks are the parity evidence;
the weights are re-drawn at unit scale so no part of the network is hidden behind a
tiny initialisation.
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


def omnisr_class():
    """spandrel's OmniSR with its helper files served one by one (no spandrel __init__)."""
    load = spandrel_src.load
    ln = load("OmniSR/__arch/layernorm.py")["LayerNorm2d"]
    osa = load("OmniSR/__arch/OSA.py", LayerNorm2d=ln)["OSA_Block"]
    esa = load("OmniSR/__arch/esa.py", LayerNorm2d=ln)["ESA"]
    osag = load("OmniSR/__arch/OSAG.py", ESA=esa, OSA_Block=osa)["OSAG"]
    pad = load("__arch_helpers/padding.py")["pad_to_multiple"]
    ps = load("OmniSR/__arch/pixelshuffle.py")["pixelshuffle_block"]
    return load("OmniSR/__arch/OmniSR.py", pad_to_multiple=pad, OSAG=osag, pixelshuffle_block=ps)["OmniSR"]


def randomise(net, seed: int):
    """Unit-scale weights everywhere (~1/sqrt(fan_in)); norms, temperatures and the
    position-bias table away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2 and "rel_pos_bias" not in name and "temperature" not in name:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("weight") and p.ndim == 1 or "temperature" in name:
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:  # biases and the position-bias table
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


VARIANTS = {  # id: OmniSR keyword arguments
    "w8-pe-x2": dict(num_feat=32, block_num=1, window_size=8, res_num=1, up_scale=2),
    "w16-pe-x4-2groups": dict(num_feat=16, block_num=1, window_size=16, res_num=2, up_scale=4),
    "w8-nope-nobias-x3-2blocks": dict(num_feat=24, block_num=2, window_size=8, res_num=1, up_scale=3, pe=False,
                                      bias=False),
    "w4-pe-x1-3groups": dict(num_feat=48, block_num=1, window_size=4, res_num=3, up_scale=1),
}


def case(tmp_path: Path, name: str, seed: int):
    net = randomise(omnisr_class()(**VARIANTS[name]), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


def run_openvino(onnx: bytes, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    ov = pytest.importorskip("openvino")
    from srzoo.runtime.engines.openvino import compile_config

    f = tmp_path / "m.onnx"
    f.write_bytes(onnx)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(f)), "CPU", compile_config("cpu", None))
    return np.asarray(compiled([x])[0], np.float32)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, name):
    kw = VARIANTS[name]
    net, f = case(tmp_path, name, seed=len(name))
    s = kw["up_scale"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.min_size) == ("omnisr", s, 16)
    pr = a.params
    assert (pr["num_feat"], pr["block_num"], pr["res_num"]) == (kw["num_feat"], kw["block_num"], kw["res_num"])
    assert (pr["window"], pr["pe"], pr["bias"]) == (kw["window_size"], kw.get("pe", True), kw.get("bias", True))

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir)  # 19x23: odd, padded inside the graph to the window and cropped back
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, 3, 19 * s, 23 * s) and want.std() > 0.05  # a real signal, not a constant
    import onnxruntime as ort

    got_ort = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert got_ort.shape == want.shape and np.abs(got_ort - want).max() <= TOL
    assert np.abs(run_openvino(conv.onnx, x, tmp_path) - want).max() <= TOL
    got_cv = run_cv2(conv.onnx, x)
    assert np.abs(got_cv - want).max() <= TOL


def test_graph_runs_at_other_sizes_than_its_probe(tmp_path, shared_dir):
    """Nothing of the probe's size is baked into the graph: a multiple of the window, a
    size one past it and a wide strip all match spandrel."""
    net, f = case(tmp_path, "w8-pe-x2", seed=5)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    for h, w in ((32, 40), (17, 33), (16, 61)):
        x = image(shared_dir, h, w)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        got = sess.run(None, {"input": x})[0]
        assert got.shape == (1, 3, 2 * h, 2 * w) and np.abs(got - want).max() <= TOL


@pytest.mark.parametrize("name", ["w8-pe-x2", "w8-nope-nobias-x3-2blocks"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, name):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    net, f = case(tmp_path, name, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 17, 21)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_junk_profiler_keys_are_ignored_and_a_broken_block_is_refused(tmp_path):
    """``total_ops`` / ``total_params`` (left by a FLOP counter in some published files) do
    not matter; a block whose attention is missing is not an OmniSR srzoo half-builds."""
    net = omnisr_class()(**VARIANTS["w8-pe-x2"])
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    sd["total_ops"] = np.zeros(1)
    sd["residual_layer.0.total_params"] = np.zeros(1)
    assert archs.detect(sd).name == "omnisr"
    del sd["residual_layer.0.residual_layer.0.layer.8.fn.to_qkv.weight"]
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)


def test_groups_of_unequal_depth_and_odd_tensors_are_refused():
    """A second group with a block more than the first, or a position bias that is not a
    table, is not an OmniSR (detection returns no architecture, nothing is half-built)."""
    net = omnisr_class()(**VARIANTS["w16-pe-x4-2groups"])
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).params["res_num"] == 2
    extra = dict(sd, **{"residual_layer.1.residual_layer.5.weight": np.zeros((16, 16, 1, 1), np.float32)})
    odd = dict(sd, **{"residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_bias.weight": np.zeros(3, np.float32)})
    for bad in (extra, odd):
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(bad)
