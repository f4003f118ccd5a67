"""SwinIR (srzoo.convert.arch.swinir, the Swin machinery of srzoo.convert.arch._swin)
against spandrel's implementation.

Randomly initialised networks of every variant srzoo reads (upsamplers pixelshuffle x2/x3/x4,
pixelshuffledirect, nearest+conv x2/x4/x8 and none at x1; 1conv and 3conv residual
connections; windows 4, 7 (img_range 255, the JPEG models), 8; one and three input
channels) are saved by torch, converted (checked at conversion time against torch), and
the ONNX is run by ONNX Runtime on a real image crop of odd size, which the graph pads to
a multiple of the window and crops back: within 1e-4 of spandrel's module. No real
community SwinIR file is available here (they are on GitHub releases / Google Drive
outside this machine), so the random-network checks are the parity evidence; the weights
are re-drawn at unit scale so no part of the network hides behind a tiny initialisation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swin_refs import randomise, swinir_class
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4


def image(shared: Path, h: int = 19, w: int = 23, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    return x[:, :1].copy() if gray else x


BASE = dict(img_size=16, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=4, mlp_ratio=2.0)
CASES = {  # id: SwinIR keyword arguments (on top of BASE)
    "ps-x2": dict(upscale=2, upsampler="pixelshuffle"),
    "ps-x3-3conv": dict(upscale=3, upsampler="pixelshuffle", resi_connection="3conv"),
    "ps-x4-w8": dict(upscale=4, upsampler="pixelshuffle", window_size=8, img_size=32, depths=[2, 1, 2],
                     num_heads=[2, 2, 4]),
    "psd-x4": dict(upscale=4, upsampler="pixelshuffledirect", depths=[3], num_heads=[3]),
    "psd-x3-gray": dict(upscale=3, upsampler="pixelshuffledirect", in_chans=1),
    "nc-x2": dict(upscale=2, upsampler="nearest+conv"),
    "nc-x4-3conv": dict(upscale=4, upsampler="nearest+conv", resi_connection="3conv"),
    "nc-x8": dict(upscale=8, upsampler="nearest+conv", depths=[2], num_heads=[2]),
    "none-x1-w7": dict(upscale=1, upsampler="", window_size=7, img_size=28, img_range=255.0),
    "none-x1-w8-gray": dict(upscale=1, upsampler="", window_size=8, img_size=32, in_chans=1),
}


def _case(tmp_path: Path, case: str, seed: int):
    kw = {**BASE, **CASES[case]}
    net = randomise(swinir_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, kw, f


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    net, kw, f = _case(tmp_path, case, seed=len(case))
    s = kw["upscale"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("swinir", s, kw.get("in_chans", 3))
    pr = a.params
    assert (pr["embed_dim"], pr["depths"], pr["heads"], pr["window"]) == (24, kw["depths"], kw["num_heads"],
                                                                         kw["window_size"])
    assert pr["upsampler"] == (kw["upsampler"] or "none")
    assert pr["resi_connection"] == kw.get("resi_connection", "1conv")
    assert pr["img_range"] == kw.get("img_range", 1.0)

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir, gray=kw.get("in_chans", 3) == 1)  # 19x23: odd, not a multiple of the window
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, x.shape[1], 19 * s, 23 * s) and want.std() > 0.05  # a real signal
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    x2 = image(shared_dir, 16, 12, gray=kw.get("in_chans", 3) == 1)  # already a multiple: no padding
    with torch.no_grad():
        want2 = net(torch.from_numpy(x2)).numpy()
    assert np.abs(sess.run(None, {"input": x2})[0] - want2).max() <= TOL


@pytest.mark.parametrize("case", ["ps-x2", "none-x1-w7", "nc-x4-3conv"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel,
    on a batch of two (the window and mask operations keep images apart)."""
    net, kw, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = np.concatenate([image(shared_dir, 11, 13), image(shared_dir, 11, 13)[:, :, ::-1, :].copy()])
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_unshuffled_input_is_refused(tmp_path):
    """``conv_first.1`` (start_unshuffle > 1) is not guessed at."""
    net = swinir_class()(**{**BASE, **CASES["ps-x2"]}, start_unshuffle=2)
    sd = {k.replace("conv_first.", "conv_first.1."): v.numpy() for k, v in net.state_dict().items()}
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)


def test_a_truncated_block_is_refused(tmp_path):
    """A state dict whose second block lacks a tensor (or has one of the wrong shape) is not
    half-built: detection answers no."""
    net = swinir_class()(**{**BASE, **CASES["ps-x2"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "swinir"
    bad = dict(sd)
    del bad["layers.1.residual_group.blocks.1.mlp.fc2.bias"]
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(bad)
    bad = dict(sd)
    bad["layers.0.residual_group.blocks.1.attn.qkv.weight"] = np.zeros((72, 23), np.float32)
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(bad)


def test_a_huge_window_is_refused_with_the_reason():
    """A bias table for 64x64 windows would expand to (heads, 4096, 4096) per block: one line."""
    net = swinir_class()(**{**BASE, **CASES["ps-x2"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    for k in [k for k in sd if k.endswith("relative_position_bias_table")]:
        sd[k] = np.zeros((127 * 127, sd[k].shape[1]), np.float32)
    with pytest.raises(Exception, match=r"^the state dict describes a swinir with 64x64 attention windows; "
                                        r"srzoo converts windows up to 32"):
        archs.detect(sd)
