"""Swift-SRGAN (srzoo.convert.arch.swiftsrgan) against spandrel's implementation.

Randomly initialised generators of every shape spandrel reads (scales 1, 2, 4 and 8 from
the number of upsampling blocks, one and three channels, any width and depth) with
BatchNorm running statistics and PReLU slopes away from their defaults are saved by torch
(one of them wrapped as ``{"model": state_dict}``, the layout of the published
``.pth.tar`` checkpoints' training scripts), converted (checked at conversion time against
torch), and the ONNX is run by ONNX Runtime, OpenVINO and cv2.dnn on a real image crop of
odd size: within 1e-4 of spandrel's module. No real community file is available here (the
two catalogue records are on GitHub releases outside this machine).
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

CASES = {  # id: Generator keyword arguments
    "x2": dict(num_channels=16, num_blocks=2, upscale_factor=2),
    "x4": dict(num_channels=16, num_blocks=3, upscale_factor=4),
    "x8-gray": dict(in_channels=1, num_channels=8, num_blocks=1, upscale_factor=8),
    "x1": dict(num_channels=8, num_blocks=2, upscale_factor=1),
}


def generator(case: str, seed: int):
    net = spandrel_src.load("SwiftSRGAN/__arch/SwiftSRGAN.py")["Generator"](**CASES[case])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, b in net.named_buffers():
            if n.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif n.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
        for n, p in net.named_parameters():
            if p.ndim == 4:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[1] * p.shape[2] * p.shape[3]) ** 0.5)
            elif n.endswith("act.weight"):  # PReLU slopes
                p.copy_(0.25 + 0.1 * torch.randn(p.shape, generator=g))
            elif n.endswith("weight"):  # BatchNorm scales
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    return x[:, :1].copy() if gray else x


def openvino_f32(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    m = core.compile_model(core.read_model(onnx_bytes, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(m(x)[0])


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    kw = CASES[case]
    net = generator(case, seed=len(case))
    f = tmp_path / "net.pth.tar"
    sd_t = net.state_dict()
    torch.save({"model": sd_t} if case == "x4" else sd_t, f)
    s, cin = kw["upscale_factor"], kw.get("in_channels", 3)
    a = archs.detect(torchload.load_state_dict(f))
    assert (a.name, a.scale, a.in_channels) == ("swiftsrgan", s, cin)
    assert a.params == {"features": kw["num_channels"], "blocks": kw["num_blocks"]}

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against
    x = image(shared_dir, gray=cin == 1)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, cin, 19 * s, 23 * s) and want.std() > 0.05  # a real signal
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    assert np.abs(openvino_f32(conv.onnx, x) - want).max() <= TOL
    assert np.abs(run_cv2(conv.onnx, x) - want).max() <= TOL


def test_numpy_reference_matches_spandrel(shared_dir):
    """The check used where PyTorch is absent: srzoo's numpy forward pass (BatchNorm folded)."""
    net = generator("x4", seed=7)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    a = archs.detect(sd)
    x = image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_a_wrong_or_missing_tensor_is_refused():
    """A missing BatchNorm statistic, a resized depthwise kernel or a gap in the blocks: no."""
    sd = {k: v.numpy() for k, v in generator("x2", 0).state_dict().items()}
    assert archs.detect(sd).name == "swiftsrgan"
    for broken in ({k: v for k, v in sd.items() if k != "residual.1.block2.bn.running_var"},
                   {**sd, "residual.0.block1.cnn.depthwise.weight": np.zeros((16, 1, 5, 5), np.float32)},
                   {k: v for k, v in sd.items() if not k.startswith("residual.0.")}):
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(broken)
