"""HAT (srzoo.convert.arch.hat: hybrid attention blocks, overlapping cross-attention) against
spandrel's implementation.

Randomly initialised networks of every variant srzoo reads (pixelshuffle x2/x3/x4 and x1;
1conv and identity residual connections; windows 4 and 8; overlap ratios 0, 0.25, 0.5 and
1; with and without the patch-embedding norm and the qkv biases; HAT-S-like compression
(small), HAT (medium) and nine groups (large); one and three input channels) are saved by
torch, converted (checked at conversion time against torch), and the ONNX is run by ONNX
Runtime on a real image crop of odd size, which the graph pads to a multiple of the window
and crops back: within 1e-4 of spandrel's module. No real community HAT file is available
here (they are on Google Drive / GitHub outside this machine), so the random-network checks
are the parity evidence; the weights are re-drawn at unit scale so no part of the network
hides behind a tiny initialisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swin_refs import hat_class, randomise
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4

from convert.test_arch_swinir import image  # noqa: E402

BASE = dict(img_size=16, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=4, compress_ratio=3,
            squeeze_factor=6, mlp_ratio=2.0, overlap_ratio=0.5)
CASES = {  # id: HAT keyword arguments (on top of BASE); size: spandrel's size tag
    "x2-medium": dict(upscale=2),
    "x3-identity-small": dict(upscale=3, resi_connection="identity", compress_ratio=6, squeeze_factor=8),
    "x4-w8-r025": dict(upscale=4, window_size=8, img_size=32, overlap_ratio=0.25, depths=[3], num_heads=[4]),
    "x4-large": dict(upscale=4, embed_dim=12, depths=[1] * 9, num_heads=[2] * 9, squeeze_factor=4),
    "x1-r1-nonorm": dict(upscale=1, overlap_ratio=1.0, patch_norm=False),
    "x2-r0-noqkvbias-gray": dict(upscale=2, overlap_ratio=0.0, qkv_bias=False, in_chans=1),
}
SIZE = {"x3-identity-small": "small", "x4-large": "large"}


def _case(tmp_path: Path, case: str, seed: int):
    kw = {**BASE, **CASES[case]}
    net = randomise(hat_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, kw, f


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    net, kw, f = _case(tmp_path, case, seed=len(case))
    s, ws = kw["upscale"], kw["window_size"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("hat", s, kw.get("in_chans", 3))
    pr = a.params
    assert (pr["embed_dim"], pr["depths"], pr["heads"], pr["window"]) == (kw["embed_dim"], kw["depths"],
                                                                         kw["num_heads"], ws)
    assert pr["overlap_window"] == ws + int(ws * kw["overlap_ratio"])
    assert pr["resi_connection"] == kw.get("resi_connection", "1conv")
    assert pr["size"] == SIZE.get(case, "medium")

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    gray = kw.get("in_chans", 3) == 1
    x = image(shared_dir, gray=gray)  # 19x23: odd, not a multiple of the window
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, x.shape[1], 19 * s, 23 * s) and want.std() > 0.05  # a real signal
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    err = np.abs(sess.run(None, {"input": x})[0] - want).max()
    print(f"hat {case}: max |onnxruntime - spandrel| = {err:.2g}")
    assert err <= TOL
    x2 = image(shared_dir, 16, 24, gray=gray)  # already a multiple: no padding
    with torch.no_grad():
        want2 = net(torch.from_numpy(x2)).numpy()
    assert np.abs(sess.run(None, {"input": x2})[0] - want2).max() <= TOL


@pytest.mark.parametrize("case", ["x2-medium", "x1-r1-nonorm"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel,
    on a batch of two (the windows, the overlapping windows and the mask keep images apart)."""
    net, kw, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = np.concatenate([image(shared_dir, 11, 13), image(shared_dir, 11, 13)[:, :, ::-1, :].copy()])
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_overlapping_windows_are_torch_unfold():
    """The three implementations of ``overlap_windows`` against torch's Unfold as HAT uses it
    (rearranged to windows), on a batch of two 8x12 images with windows 4 and overlaps 0..4."""
    from srzoo.convert.onnxbuild import Graph
    import onnxruntime as ort

    x = np.random.default_rng(3).standard_normal((2, 5, 8, 12)).astype(np.float32)
    for ows in (4, 6, 8):
        u = torch.nn.Unfold(ows, stride=4, padding=(ows - 4) // 2)(torch.from_numpy(x))
        want = u.reshape(2, 5, ows, ows, -1).permute(0, 4, 2, 3, 1).reshape(-1, ows * ows, 5).numpy()
        assert want.shape == (2 * 6, ows * ows, 5)
        g = Graph()
        inp = "input"  # batch of two: a symbolic batch dimension, unlike Graph.input's
        g.inputs.append(g.onnx.helper.make_tensor_value_info(inp, g.onnx.TensorProto.FLOAT, ["b", 5, "h", "w"]))
        out = g.overlap_windows(inp, 4, ows)
        g.outputs.append(g.onnx.helper.make_tensor_value_info("o", g.onnx.TensorProto.FLOAT, None))
        g.nodes.append(g.onnx.helper.make_node("Identity", [out], ["o"]))
        m = g.onnx.helper.make_model(g.onnx.helper.make_graph(g.nodes, "t", g.inputs, g.outputs, g.inits),
                                     opset_imports=[g.onnx.helper.make_opsetid("", 17)])
        m.ir_version = 8
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        assert np.array_equal(sess.run(None, {"input": x})[0], want)
        assert np.array_equal(reference.NumpyOps().overlap_windows(x, 4, ows), want)
        t = reference.TorchOps()
        assert np.array_equal(t.output(t.overlap_windows(t.input(x), 4, ows)), want)


def test_a_hat_is_not_read_as_swinir():
    """A HAT state dict holds every key SwinIR reads; asked for swinir it is refused."""
    sd = {k: v.numpy() for k, v in hat_class()(**{**BASE, **CASES["x2-medium"]}).state_dict().items()}
    assert archs.detect(sd).name == "hat"
    with pytest.raises(Exception, match="is not architecture 'swinir'"):
        archs.detect(sd, arch="swinir")


def test_a_truncated_or_misshapen_state_dict_is_refused():
    net = hat_class()(**{**BASE, **CASES["x2-medium"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    for key, value in [("layers.1.residual_group.overlap_attn.mlp.fc2.bias", None),
                       ("layers.0.residual_group.blocks.1.conv_block.cab.3.attention.3.weight", None),
                       ("layers.0.residual_group.overlap_attn.qkv.weight", np.zeros((72, 23), np.float32)),
                       ("absolute_pos_embed", np.zeros((1, 256, 24), np.float32))]:
        bad = dict(sd)
        if value is None:
            del bad[key]
        else:
            bad[key] = value
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(bad)


def test_an_odd_overlap_is_refused():
    """ows - ws odd (window 4, overlap 0.25: 5): upstream's unfold gives fewer windows than the
    queries have, so no network of that shape runs; detection answers no."""
    net = hat_class()(**{**BASE, **CASES["x2-medium"], "overlap_ratio": 0.25})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)


def test_a_huge_window_is_refused_with_the_reason():
    net = hat_class()(**{**BASE, **CASES["x2-medium"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    for k in [k for k in sd if k.endswith("relative_position_bias_table") and ".blocks." in k]:
        sd[k] = np.zeros((127 * 127, sd[k].shape[1]), np.float32)
    with pytest.raises(Exception, match=r"^the state dict describes a hat with 64x64 attention windows; "
                                        r"srzoo converts windows up to 32"):
        archs.detect(sd)


def test_a_bias_of_many_heads_is_refused_with_the_reason():
    """An overlapping cross-attention table of 24 heads on 32x32 windows overlapping to 48x48
    (5.7e7 bias values per group, 226 MB each) is refused in one line before anything is
    expanded."""
    net = hat_class()(**{**BASE, **CASES["x2-medium"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    for k in [k for k in sd if k.endswith("relative_position_bias_table")]:
        rows = (2 * 32 - 1) ** 2 if ".blocks." in k else (32 + 48 - 1) ** 2
        sd[k] = np.zeros((rows, 24), np.float32)
    with pytest.raises(Exception, match=r"^the state dict describes a hat with 24 heads on 32x32 windows "
                                        r"overlapping to 48x48; srzoo converts position biases up to"):
        archs.detect(sd)
