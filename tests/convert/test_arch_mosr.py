"""MoSR (srzoo.convert.arch.mosr) against spandrel's implementation.

Randomly initialised networks of every variant spandrel reads (upsamplers ``ps`` at scales
1 to 4, ``gps`` (geo-ensemble pixel shuffle, its 8 groups folded into one kernel) and
``dys`` (DySample); expansion and conv ratios that leave the gated block's identity part
empty or not; kernel sizes 5 and 7; one and three input channels) are saved by torch,
converted (checked at conversion time against torch), and the ONNX is run by ONNX Runtime,
OpenVINO and cv2.dnn on a real image crop of odd size: within 1e-4 of spandrel's module.
No real community MoSR file is available here (the catalogue's are on GitHub releases
outside this machine), so the random-network checks are the parity evidence; the weights
are re-drawn at unit scale (LayerNorm scales around 1) so no part hides behind MoSR's
0.02-std initialisation.
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

CASES = {  # id: MoSR keyword arguments
    "ps-x2": dict(upscale=2, n_block=2, dim=16, upsampler="ps"),
    "ps-x4-k5": dict(upscale=4, n_block=3, dim=16, upsampler="ps", kernel_size=5),
    "ps-x1-noid": dict(upscale=1, n_block=2, dim=16, upsampler="ps", conv_ratio=1.5),  # hidden == conv channels
    "ps-x3-gray": dict(upscale=3, n_block=1, dim=16, upsampler="ps", in_ch=1),
    "gps-x4": dict(upscale=4, n_block=2, dim=16, upsampler="gps"),
    "gps-x2-e2": dict(upscale=2, n_block=1, dim=24, upsampler="gps", expansion_ratio=2.0, conv_ratio=0.5),
    "dys-x2": dict(upscale=2, n_block=2, dim=16, upsampler="dys"),
    "dys-x3-e2": dict(upscale=3, n_block=1, dim=16, upsampler="dys", expansion_ratio=2.0, conv_ratio=0.5),
    "dys-x4": dict(upscale=4, n_block=1, dim=16, upsampler="dys", kernel_size=5),
}


def mosr_class():
    class DropPath(torch.nn.Module):  # identity at inference (drop_path 0)
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x
    dys = spandrel_src.load("__arch_helpers/dysample.py")["DySample"]
    return spandrel_src.load("MoSR/__arch/mosr_arch.py", DySample=dys, DropPath=DropPath)["MoSR"]


def randomise(net, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 4:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[1] * p.shape[2] * p.shape[3]) ** 0.5)
            elif name.endswith("weight"):  # LayerNorm scales
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    return x[:, :1].copy() if gray else x


def _case(tmp_path: Path, case: str, seed: int):
    net = randomise(mosr_class()(**CASES[case]), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


def openvino_f32(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    m = core.compile_model(core.read_model(onnx_bytes, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(m(x)[0])


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    kw = CASES[case]
    net, f = _case(tmp_path, case, seed=len(case))
    s, cin = kw["upscale"], kw.get("in_ch", 3)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels, a.out_channels) == ("mosr", s, cin, cin)
    pr = a.params
    hidden = int(kw.get("expansion_ratio", 1.5) * kw["dim"])
    assert (pr["dim"], pr["blocks"], pr["upsampler"], pr["kernel"]) == (kw["dim"], kw["n_block"], kw["upsampler"],
                                                                         kw.get("kernel_size", 7))
    assert (pr["hidden"], pr["conv_channels"]) == (hidden, int(kw.get("conv_ratio", 1.0) * kw["dim"]))

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against
    x = image(shared_dir, gray=cin == 1)  # 19x23: odd
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, cin, 19 * s, 23 * s) and want.std() > 0.05  # a real signal
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    assert np.abs(openvino_f32(conv.onnx, x) - want).max() <= TOL
    try:
        got_cv = run_cv2(conv.onnx, x)
    except cv2.error:  # OpenCV 4.x has no GridSample (DySample)
        assert kw["upsampler"] == "dys" and cv2.__version__.startswith("4.")
    else:
        assert np.abs(got_cv - want).max() <= TOL


@pytest.mark.parametrize("case", ["gps-x2-e2", "dys-x3-e2"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    net, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_a_wrong_or_missing_tensor_is_refused():
    """A state dict missing one block's tensor, with a resized depthwise kernel, or without
    the body's last conv is not half-built: detection answers no."""
    net = mosr_class()(**CASES["ps-x2"])
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "mosr"
    for broken in ({k: v for k, v in sd.items() if k != "gblocks.2.fc2.bias"},
                   {**sd, "gblocks.1.conv.weight": np.zeros((16, 1, 6, 6), np.float32)},
                   {k: v for k, v in sd.items() if not k.startswith("gblocks.7.")}):
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(broken)


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_upscaler_runs_the_converted_graph_on_the_engines(tmp_path, shared_dir, srzoo_env, mirror, monkeypatch,
                                                          backend):
    """The converted MoSR (geo-ensemble upsampler) as a registry model: srzoo.Upscaler on
    ONNX Runtime, OpenVINO and cv2.dnn gives spandrel's output on an odd-sized image
    (8-bit rounding apart)."""
    from standin import write_manifest

    import srzoo

    net, f = _case(tmp_path, "gps-x4", seed=11)
    with torch.no_grad():  # an output in [0, 1]: a small upsampler around mid-grey
        net.upsampler.in_to_k.weight.mul_(0.15)
        net.upsampler.in_to_k.bias.fill_(0.5)
    torch.save(net.state_dict(), f)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "mosr_x4.onnx").write_bytes(conv.onnx)
    manifest = write_manifest(tmp_path / "mosr.toml", folder / "mosr_x4.onnx", "mosr-standin", 4, color="rgb",
                              range=1.0, layout="nchw", input="input", outputs=["output"])
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    bgr = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[70:89, 50:73]
    out = srzoo.Upscaler("mosr-standin", 4, backend=backend, tile=0)(bgr)
    x = (bgr[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()[0].transpose(1, 2, 0)[:, :, ::-1]
    assert 0.0 < want.min() and want.max() < 1.0 and want.std() > 0.05  # a real, unclipped signal
    want8 = np.clip(np.rint(want * 255), 0, 255)
    assert out.shape == (76, 92, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(np.float32) - want8).max() <= 1
