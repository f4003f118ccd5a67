"""DAT (srzoo.convert.arch.dat) against spandrel's implementation.

Randomly initialised networks of every variant srzoo reads (split windows 2x4, 4x4,
8x16, 8x32; depths that put shifted spatial blocks in even and odd residual groups and
single-block groups; resi 1conv / 3conv; qkv with and without bias; upsamplers
pixelshuffle x1-x4 and pixelshuffledirect; 3 and 1 channels) are saved by torch,
converted (checked by the converter against TorchOps), and the ONNX is run by ONNX
Runtime, OpenVINO (f32) and cv2.dnn on a real image crop of odd size (19x23: not a
multiple of any window, so the in-graph zero padding and the run-time shift mask are
exercised): within 1e-4 of spandrel's module. No real community DAT file is available
here (they are on Google Drive / Mega / GitHub releases outside this machine), so the
random-network checks are the parity evidence; weights are re-drawn at unit scale and
BatchNorm statistics away from their identity initialisation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import spandrel_src
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload
from srzoo.convert.arch import _dat
from srzoo.convert.onnxbuild import run_cv2

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4


class _DropPath(torch.nn.Module):
    """Stand-in for spandrel.util.timm.DropPath: identity at inference (eval mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()

    def forward(self, x):
        return x


def dat_module():
    pytest.importorskip("einops", reason="spandrel's DAT needs einops")
    return spandrel_src.load("DAT/__arch/DAT.py", DropPath=_DropPath,
                             trunc_normal_=torch.nn.init.trunc_normal_)["DAT"]


def randomise(net, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("weight"):  # LayerNorm / BatchNorm scales
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23, channels: int = 3) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    return x if channels == 3 else x.mean(1, keepdims=True)


#: id: DAT keyword arguments (light: DAT-light's embed_dim 60, not a multiple of 16). The
#: position-bias MLP has embed_dim // 32 features: with one, its LayerNorm makes the bias a
#: constant (as in DAT-light, dim 60), with two it takes two values; the cases of 96 (three
#: features; DAT has 180, five) check a bias that varies across the window.
CASES = {
    "2x4-ps-x2": dict(embed_dim=96, split_size=[2, 4], depth=[3, 5], num_heads=[2, 4], expansion_factor=2.0,
                      upscale=2, img_size=16),
    "2x4-psd-x4-3conv": dict(embed_dim=32, split_size=[2, 4], depth=[3, 1], num_heads=[2, 2],
                             expansion_factor=2.0, upscale=4, upsampler="pixelshuffledirect",
                             resi_connection="3conv", img_size=16),
    "8x16-ps-x3-nobias": dict(embed_dim=64, split_size=[8, 16], depth=[2, 2, 2, 2, 2, 2],
                              num_heads=[2, 2, 2, 2, 2, 2], expansion_factor=2.0, upscale=3, qkv_bias=False),
    "8x32-ps-x4": dict(embed_dim=96, split_size=[8, 32], depth=[3, 4], num_heads=[4, 6], expansion_factor=4.0,
                       upscale=4, img_size=64),
    "light-8x32-psd-x3": dict(embed_dim=60, split_size=[8, 32], depth=[5], num_heads=[6], expansion_factor=2.0,
                              upscale=3, upsampler="pixelshuffledirect", img_size=64),
    "4x4-ps-x1": dict(embed_dim=32, split_size=[4, 4], depth=[1, 2], num_heads=[2, 2], upscale=1, img_size=16),
    "gray-2x4-ps-x2": dict(in_chans=1, embed_dim=32, split_size=[2, 4], depth=[3], num_heads=[2],
                           upscale=2, img_size=16),
}


def case(tmp_path: Path, name: str, seed: int):
    net = randomise(dat_module()(**CASES[name]), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


def openvino_f32(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    m = core.compile_model(core.read_model(onnx_bytes, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(m(x)[0])


@pytest.mark.parametrize("name", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, name):
    kw = CASES[name]
    net, f = case(tmp_path, name, seed=len(name))
    s, cin = kw["upscale"], kw.get("in_chans", 3)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("dat", s, cin)
    assert a.params["split"] == kw["split_size"] and a.params["depths"] == kw["depth"]
    assert a.params["heads"] == kw["num_heads"] and a.params["dim"] == kw["embed_dim"]
    assert a.params["upsampler"] == kw.get("upsampler", "pixelshuffle")
    assert a.params["resi"] == kw.get("resi_connection", "1conv")
    assert a.params["qkv_bias"] is kw.get("qkv_bias", True)
    assert a.params["ffn"] == int(kw["embed_dim"] * kw.get("expansion_factor", 4.0))

    if kw["embed_dim"] >= 96:  # three features or more: a bias that varies across the window
        s0, s1 = kw["split_size"]
        spread = [_dat.position_bias(sd, f"layers.{i}.blocks.0.attn.attns.{br}.pos", *wins).std()
                  for i in range(len(kw["depth"])) for br, wins in enumerate([(s0, s1), (s1, s0)])]
        assert max(spread) > 0.05

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir, channels=cin)  # 19x23: odd, not a multiple of any window
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, cin, 19 * s, 23 * s) and want.std() > 0.05  # a real signal, not a constant
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    assert np.abs(openvino_f32(conv.onnx, x) - want).max() <= TOL
    try:
        got_cv = run_cv2(conv.onnx, x)
    except cv2.error:  # OpenCV 4.x's importer cannot take the run-time shapes (Shape/Concat/Reshape)
        assert cv2.__version__.startswith("4."), f"OpenCV {cv2.__version__} cannot import DAT"
    else:
        assert np.abs(got_cv - want).max() <= TOL


def test_graph_runs_at_other_sizes_and_a_batch(tmp_path, shared_dir):
    """The graph has no baked-in size: window-multiple, tiny and larger inputs give
    spandrel's output, and two images in one batch give each image's own output."""
    net, f = case(tmp_path, "2x4-ps-x2", seed=5)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    import onnx
    import onnxruntime as ort

    m = onnx.load_from_string(conv.onnx)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for h, w in ((8, 8), (5, 3), (33, 47)):
        x = image(shared_dir, h, w)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL, (h, w)
    xb = np.concatenate([image(shared_dir, 12, 20), image(shared_dir, 12, 20)[:, :, ::-1, ::-1].copy()])
    with torch.no_grad():
        want = net(torch.from_numpy(xb)).numpy()
    assert np.abs(sess.run(None, {"input": xb})[0] - want).max() <= TOL


@pytest.mark.parametrize("name", ["2x4-ps-x2", "light-8x32-psd-x3"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, name):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    net, f = case(tmp_path, name, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_a_block_with_a_wrong_shape_is_refused(tmp_path):
    """A file whose keys say DAT but one tensor has another shape is not half-built."""
    net, f = case(tmp_path, "2x4-ps-x2", seed=1)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "dat"
    sd["layers.1.blocks.3.attn.channel_interaction.1.weight"] = np.zeros((3, 32, 1, 1), np.float32)
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu"])
def test_upscaler_runs_the_converted_graph_on_the_engines(tmp_path, shared_dir, srzoo_env, mirror, monkeypatch,
                                                          backend):
    """The converted DAT as a registry model: srzoo.Upscaler on ONNX Runtime and OpenVINO
    (srzoo's own engine settings) gives spandrel's output on an odd-sized image (8-bit
    rounding apart)."""
    from standin import write_manifest

    import srzoo

    net, f = case(tmp_path, "2x4-ps-x2", seed=11)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "dat_x2.onnx").write_bytes(conv.onnx)
    manifest = write_manifest(tmp_path / "dat.toml", folder / "dat_x2.onnx", "dat-standin", 2, color="rgb",
                              range=1.0, layout="nchw", input="input", outputs=["output"])
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    bgr = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[70:89, 50:73]
    out = srzoo.Upscaler("dat-standin", 2, backend=backend, tile=0)(bgr)
    x = (bgr[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()[0].transpose(1, 2, 0)[:, :, ::-1]
    want8 = np.clip(np.rint(want * 255), 0, 255)
    assert out.shape == (38, 46, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(np.float32) - want8).max() <= 1
    assert np.unique(out).size > 50  # a real image, not a flat or clipped one
