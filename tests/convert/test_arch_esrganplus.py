"""ESRGAN+ (nESRGAN+, OpenModelDB ``esrgan+``: RRDBNet with a 1x1 convolution in each
dense block, srzoo.convert.arch.rrdbnet) against spandrel's RRDBNet(plus=True).

Random networks in the ESRGAN paper's key layout (the one spandrel writes and the
catalogue's ESRGAN+ files use), saved by torch, converted without torch in the graph
path, run by ONNX Runtime and cv2.dnn on an odd-sized real image crop: within 1e-4 of
spandrel's module; the numpy reference (the check where PyTorch is absent) too. No real
ESRGAN+ file is available here (the three records are on Mega and pCloud).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import spandrel_src
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload
from srzoo.convert.onnxbuild import run_cv2
from srzoo.errors import SrzooError

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4


def _rrdbnet():
    block = SimpleNamespace(**spandrel_src.load("__arch_helpers/block.py"))
    pad = spandrel_src.load("__arch_helpers/padding.py")["pad_to_multiple"]
    return spandrel_src.load("ESRGAN/__arch/RRDB.py", B=block, pad_to_multiple=pad)["RRDBNet"]


def _net(scale: int, seed: int):
    net = _rrdbnet()(in_nc=3, out_nc=3, num_filters=8, num_blocks=2, scale=scale, plus=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # unit-scale weights, so the 1x1 paths are not hidden by a tiny initialisation
        for _, p in net.named_parameters():
            fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5 if p.ndim > 1 else 0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def _image(shared, h: int = 19, w: int = 23) -> np.ndarray:
    import cv2

    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


@pytest.mark.parametrize("scale", [2, 4])
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, scale):
    net = _net(scale, seed=scale)
    assert any(".conv1x1." in k for k in net.state_dict())
    f = tmp_path / "plus.pth"
    torch.save(net.state_dict(), f)
    a = archs.detect(torchload.load_state_dict(f))
    assert (a.name, a.scale, a.params["plus"], a.params["blocks"], a.params["layout"]) == ("rrdbnet", scale, True, 2, "old")
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL
    x = _image(shared_dir)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, 3, 19 * scale, 23 * scale) and want.std() > 0.05
    import onnxruntime as ort

    got = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - want).max() <= TOL
    assert np.abs(run_cv2(conv.onnx, x) - want).max() <= TOL
    # the 1x1 paths matter: the same weights read as a plain RRDBNet give another picture
    plain = {k: v for k, v in torchload.load_state_dict(f).items() if ".conv1x1." not in k}
    ops = reference.NumpyOps()
    b = archs.detect(plain)
    assert b.params["plus"] is False
    assert np.abs(ops.output(b.forward(ops, plain, b, ops.input(x))) - want).max() > 100 * TOL


def test_numpy_reference_matches_spandrel(tmp_path, shared_dir):
    net = _net(4, seed=11)
    f = tmp_path / "plus.pth"
    torch.save(net.state_dict(), f)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = _image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(ops.output(a.forward(ops, sd, a, ops.input(x))) - want).max() <= TOL


def test_a_conv1x1_missing_in_one_block_is_not_esrgan_plus(tmp_path):
    net = _net(4, seed=3)
    sd = {k: v.numpy() for k, v in net.state_dict().items() if k != "model.1.sub.1.RDB2.conv1x1.weight"}
    with pytest.raises(SrzooError, match="not a known architecture"):
        archs.detect(sd)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    sd["model.1.sub.0.RDB1.conv1x1.weight"] = np.zeros((4, 8, 3, 3), np.float32)  # not 1x1
    with pytest.raises(SrzooError, match="not a known architecture"):
        archs.detect(sd)
