"""RGT (srzoo.convert.arch.rgt) against spandrel's implementation.

Randomly initialised networks of the variants srzoo reads (split windows 2x4, 4x4, 8x8,
8x32; groups with one block (no RG-SA) and with shifted L-SA blocks in even and odd
groups; resi 1conv / 3conv; qkv with and without bias; c_ratio 0.5 and 0.25; pixel
shuffle x1-x4) are saved by torch, converted (checked by the converter against
TorchOps), and the ONNX is run by ONNX Runtime, OpenVINO (f32) and cv2.dnn on a real
image crop of odd size (37x45: not a multiple of any window, nor of RG-SA's reduction by
16): within 1e-4 of spandrel's module. No real community RGT file is available here, so
the random-network checks are the parity evidence.
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


class _DropPath(torch.nn.Module):
    """Stand-in for spandrel.util.timm.DropPath: identity at inference (eval mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()

    def forward(self, x):
        return x


def rgt_module():
    pytest.importorskip("einops", reason="spandrel's RGT needs einops")
    return spandrel_src.load("RGT/__arch/rgt.py", DropPath=_DropPath)["RGT"]


def randomise(net, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / int(np.prod(p.shape[1:])) ** 0.5)
            elif name.endswith("weight"):  # LayerNorm scales
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:  # biases and the layer scales (gamma)
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 37, w: int = 45) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


CASES = {  # id: RGT keyword arguments
    "2x4-x2": dict(embed_dim=96, split_size=[2, 4], depth=[3, 5], num_heads=[2, 4], mlp_ratio=2.0, upscale=2,
                   img_size=16),
    "8x32-x4-3conv-nobias": dict(embed_dim=32, split_size=[8, 32], depth=[2, 2], num_heads=[2, 2], mlp_ratio=2.0,
                                 upscale=4, resi_connection="3conv", qkv_bias=False, img_size=64),
    "8x8-x3": dict(embed_dim=32, split_size=[8, 8], depth=[1, 2], num_heads=[2, 2], upscale=3, img_size=16),
    "4x4-x1-cr025": dict(embed_dim=32, split_size=[4, 4], depth=[2], num_heads=[2], upscale=1, c_ratio=0.25,
                         img_size=16),
}


def case(tmp_path: Path, name: str, seed: int):
    net = randomise(rgt_module()(**CASES[name]), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


@pytest.mark.parametrize("name", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, name):
    kw = CASES[name]
    net, f = case(tmp_path, name, seed=len(name))
    s = kw["upscale"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale) == ("rgt", s)
    assert a.params["split"] == kw["split_size"] and a.params["depths"] == kw["depth"]
    assert a.params["heads"] == kw["num_heads"] and a.params["dim"] == kw["embed_dim"]
    assert a.params["resi"] == kw.get("resi_connection", "1conv") and a.params["qkv_bias"] is kw.get("qkv_bias", True)
    assert a.params["cr"] == int(kw["embed_dim"] * kw.get("c_ratio", 0.5))

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, 3, 37 * s, 45 * s) and want.std() > 0.05
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    m = core.compile_model(core.read_model(conv.onnx, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.abs(np.asarray(m(x)[0]) - want).max() <= TOL
    try:
        got_cv = run_cv2(conv.onnx, x)
    except cv2.error:  # OpenCV 4.x's importer cannot take the run-time shapes
        assert cv2.__version__.startswith("4."), f"OpenCV {cv2.__version__} cannot import RGT"
    else:
        assert np.abs(got_cv - want).max() <= TOL


def test_graph_runs_at_other_sizes(tmp_path, shared_dir):
    """No baked-in size: the smallest upstream accepts (16), a window multiple and a size
    whose reduced map is 3x4 give spandrel's output."""
    net, f = case(tmp_path, "2x4-x2", seed=5)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    for h, w in ((16, 16), (32, 24), (55, 71)):
        x = image(shared_dir, h, w)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL, (h, w)


def test_numpy_reference_matches_spandrel(tmp_path, shared_dir):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    net, f = case(tmp_path, "8x8-x3", seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 17, 19)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_a_block_with_a_wrong_shape_is_refused(tmp_path):
    net, f = case(tmp_path, "2x4-x2", seed=1)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "rgt"
    sd["layers.1.blocks.3.attn.cpe.weight"] = np.zeros((96, 1, 5, 5), np.float32)
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)
