"""SRFormer (srzoo.convert.arch.srformer: permuted self-attention on SwinIR's trunk)
against spandrel's implementation (spandrel-extra-arches 0.2.0: SRFormer is not in
spandrel 0.4.2 itself).

Randomly initialised networks of every variant srzoo reads (upsamplers pixelshuffle x2/x3/x4,
pixelshuffledirect x3/x4, nearest+conv x4 and none at x1; 1conv and 3conv residual
connections; windows 4, 6 (an odd half-shift, the mask's rounding), 8; shifted and unshifted
networks; q/kv with and without bias, with and without the patch norm; one and three input
channels) are saved by torch, converted (checked at conversion time against torch), and the
ONNX is run by ONNX Runtime on a real image crop of odd size, which the graph pads to a
multiple of the window and crops back: within 1e-4 of spandrel's module. No real community
SRFormer file is available here (they are on Google Drive / GitHub releases outside this
machine), so the random-network checks are the parity evidence; the weights are re-drawn at
unit scale so no part of the network hides behind a tiny initialisation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swin_refs import randomise, srformer_class
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4


def image(shared: Path, h: int = 19, w: int = 23, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    return x[:, :1].copy() if gray else x


BASE = dict(img_size=16, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=8, mlp_ratio=2.0)
CASES = {  # id: SRFormer keyword arguments (on top of BASE); img_size <= window: spandrel's unshifted network
    "ps-x2": dict(upscale=2, upsampler="pixelshuffle"),
    "ps-x3-3conv-w6": dict(upscale=3, upsampler="pixelshuffle", resi_connection="3conv", window_size=6, img_size=18),
    "ps-x4-w4": dict(upscale=4, upsampler="pixelshuffle", window_size=4, img_size=8, depths=[2, 1, 2],
                     num_heads=[2, 2, 4]),
    "psd-x4-nobias": dict(upscale=4, upsampler="pixelshuffledirect", depths=[3], num_heads=[3], qkv_bias=False),
    "psd-x3-gray": dict(upscale=3, upsampler="pixelshuffledirect", in_chans=1),
    "nc-x4-3conv-w4": dict(upscale=4, upsampler="nearest+conv", resi_connection="3conv", window_size=4, img_size=8),
    "none-x1-nopatchnorm": dict(upscale=1, upsampler="", patch_norm=False),
    "ps-x2-unshifted": dict(upscale=2, upsampler="pixelshuffle", img_size=8),
}


def _case(tmp_path: Path, case: str, seed: int):
    kw = {**BASE, **CASES[case]}
    net = randomise(srformer_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, kw, f


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    net, kw, f = _case(tmp_path, case, seed=len(case))
    s = kw["upscale"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("srformer", s, kw.get("in_chans", 3))
    pr = a.params
    ws = kw["window_size"]
    assert (pr["embed_dim"], pr["depths"], pr["heads"], pr["window"]) == (24, kw["depths"], kw["num_heads"], ws)
    assert pr["upsampler"] == (kw["upsampler"] or "none")
    assert pr["resi_connection"] == kw.get("resi_connection", "1conv")
    assert pr["shift"] == (0 if case.endswith("unshifted") else ws // 2)
    assert pr["patch_norm"] == kw.get("patch_norm", True)

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir, gray=kw.get("in_chans", 3) == 1)  # 19x23: odd, not a multiple of the window
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, x.shape[1], 19 * s, 23 * s) and want.std() > 0.05  # a real signal
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    x2 = image(shared_dir, 24, 12, gray=kw.get("in_chans", 3) == 1)  # already a multiple: no padding
    with torch.no_grad():
        want2 = net(torch.from_numpy(x2)).numpy()
    assert np.abs(sess.run(None, {"input": x2})[0] - want2).max() <= TOL


@pytest.mark.parametrize("case", ["ps-x2", "ps-x3-3conv-w6", "nc-x4-3conv-w4"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel,
    on a batch of two (the window and mask operations keep images apart)."""
    net, kw, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = np.concatenate([image(shared_dir, 13, 15), image(shared_dir, 13, 15)[:, :, ::-1, :].copy()])
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_the_shift_mask_matters(tmp_path, shared_dir, monkeypatch):
    """The parity above can fail: without the shifted-window mask the output moves far
    beyond the tolerance."""
    net, kw, f = _case(tmp_path, "ps-x2", seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 16, 16)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    ops = reference.NumpyOps()
    assert np.abs(ops.output(a.forward(ops, sd, a, ops.input(x))) - want).max() <= TOL
    from srzoo.convert.arch import srformer

    monkeypatch.setattr(srformer, "psa_mask", lambda *a: None)   # shifted windows, no mask
    assert np.abs(ops.output(a.forward(ops, sd, a, ops.input(x))) - want).max() > 100 * TOL


@pytest.mark.parametrize("ws", [4, 6, 8, 16, 22, 24])
def test_the_aligned_index_is_upstreams(ws):
    """srzoo computes the bias rows itself (never reading the file's buffer): the same
    table as the ``aligned_relative_position_index`` spandrel's module registers."""
    from srzoo.convert.arch.srformer import aligned_index

    net = srformer_class()(**{**BASE, "window_size": ws, "img_size": 2 * ws, "depths": [1], "num_heads": [2]})
    want = net.state_dict()["layers.0.residual_group.blocks.0.attn.aligned_relative_position_index"].numpy()
    assert want.shape == (ws * ws, (ws // 2) ** 2)
    assert np.array_equal(aligned_index(ws), want)


def test_a_truncated_block_or_a_position_embedding_is_refused():
    """A state dict whose second block lacks a tensor (or has one of the wrong shape) is not
    half-built, and an absolute position embedding (fixed to the training size) is not
    guessed at: detection answers no."""
    net = srformer_class()(**{**BASE, **CASES["ps-x2"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "srformer"
    for key, value in [("layers.1.residual_group.blocks.1.mlp.dwconv.depthwise_conv.0.bias", None),
                       ("layers.0.residual_group.blocks.1.attn.kv.weight", np.zeros((12, 23), np.float32)),
                       ("absolute_pos_embed", np.zeros((1, 256, 24), np.float32))]:
        bad = dict(sd)
        if value is None:
            del bad[key]
        else:
            bad[key] = value
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(bad)


def test_a_huge_window_is_refused_with_the_reason():
    """A bias table for 64x64 windows: one line, before anything is allocated."""
    net = srformer_class()(**{**BASE, **CASES["ps-x2"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    for k in [k for k in sd if k.endswith("relative_position_bias_table")]:
        sd[k] = np.zeros((63 * 63, sd[k].shape[1]), np.float32)
    with pytest.raises(Exception, match=r"^the state dict describes a srformer with 64x64 attention windows; "
                                        r"srzoo converts windows up to 32"):
        archs.detect(sd)
