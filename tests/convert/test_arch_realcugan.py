"""Real-CUGAN (srzoo.convert.arch.realcugan) against spandrel's implementation.

Randomly initialised networks of every variant spandrel reads (UpCunet 2x, 3x and 4x,
each plain and "pro", and the fast 2x with its pixel unshuffle) are saved by torch,
converted (checked at conversion time against torch), and the ONNX is run by ONNX
Runtime, OpenVINO and cv2.dnn on real image crops of odd and even sizes, which the graph
reflect-pads (by 18, 14, 19 or 38 pixels and up to the variant's multiple) and crops back
itself: within 1e-4 of spandrel's module. No real community Real-CUGAN file is available
here (the catalogue's are on Google Drive, pCloud and GitHub releases outside this
machine), so the random-network checks are the parity evidence; the biases are re-drawn
away from zero so every layer's offset is checked too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import spandrel_src
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload
from srzoo.convert.check import build
from srzoo.convert.onnxbuild import run_cv2

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4

CASES = {  # id: (spandrel class, keyword arguments, scale, variant)
    "2x": ("UpCunet2x", {}, 2, "2x"),
    "2x-pro": ("UpCunet2x", {"pro": True}, 2, "2x"),
    "3x": ("UpCunet3x", {}, 3, "3x"),
    "3x-pro": ("UpCunet3x", {"pro": True}, 3, "3x"),
    "4x": ("UpCunet4x", {}, 4, "4x"),
    "4x-pro": ("UpCunet4x", {"pro": True}, 4, "4x"),
    "2x-fast": ("UpCunet2x_fast", {}, 2, "2x-fast"),
}
#: input sizes compared with spandrel: odd and even sides (the fast network, upstream, only
#: takes multiples of 4)
SIZES = {"2x-fast": [(44, 48)]}
DEFAULT_SIZES = [(21, 23), (24, 26)]


def image(shared: Path, h: int, w: int) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[60:60 + h, 40:40 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


def network(case: str, seed: int):
    cls, kw, _, _ = CASES[case]
    torch.manual_seed(seed)
    net = spandrel_src.load("RealCUGAN/__arch/upcunet_v3.py")[cls](in_channels=3, out_channels=3, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return net.eval()


def _case(tmp_path: Path, case: str, seed: int):
    net = network(case, seed)
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
    _, kw, s, variant = CASES[case]
    net, f = _case(tmp_path, case, seed=len(case))
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels, a.out_channels) == ("realcugan", s, 3, 3)
    assert a.params == {"variant": variant, "pro": kw.get("pro", False)}

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    for h, w in SIZES.get(case, DEFAULT_SIZES):
        x = image(shared_dir, h, w)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert want.shape == (1, 3, h * s, w * s) and want.std() > 0.05  # a real signal
        assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
        assert np.abs(openvino_f32(conv.onnx, x) - want).max() <= TOL
        try:
            got_cv = run_cv2(conv.onnx, x)
        except cv2.error:  # OpenCV 4.x's importer cannot take the run-time shapes of the padding
            assert cv2.__version__.startswith("4."), f"OpenCV {cv2.__version__} cannot import Real-CUGAN"
        else:
            assert np.abs(got_cv - want).max() <= TOL


def test_fast_variant_runs_at_any_size(tmp_path, shared_dir):
    """spandrel's fast 2x fails on sides that are not multiples of 4; the graph pads them
    (reflect) and crops: the output has the right size, equals the eager torch run of the
    same forward pass, and is close to spandrel's on the crop it takes."""
    net, f = _case(tmp_path, "2x-fast", seed=3)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    x = image(shared_dir, 45, 47)
    got = sess.run(None, {"input": x})[0]
    assert got.shape == (1, 3, 90, 94)
    ops = reference.TorchOps()
    assert np.abs(got - ops.output(a.forward(ops, sd, a, ops.input(x)))).max() <= TOL
    with pytest.raises(RuntimeError):  # what spandrel does with these sides
        with torch.no_grad():
            net(torch.from_numpy(x))
    with torch.no_grad():
        want = net(torch.from_numpy(x[:, :, :44, :44].copy())).numpy()
    # the top-left corner sees the same pixels; the squeeze-excitation means see the whole
    # (padded) image, so it is close, not equal (measured 1.4e-4)
    assert np.abs(got[:, :, :8, :8] - want[:, :, :8, :8]).max() <= 2e-3


def test_numpy_reference_matches_spandrel(tmp_path, shared_dir):
    """The check used where PyTorch is absent: srzoo's numpy forward pass (transposed
    convolutions, squeeze-excitation, reflect padding, the pro mapping) against spandrel."""
    net, f = _case(tmp_path, "3x-pro", seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 19, 21)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_the_smallest_input_runs(tmp_path):
    """At each variant's smallest side the reflection still fits inside the image."""
    import onnxruntime as ort

    for case in ("2x", "3x", "4x", "2x-fast"):
        net = network(case, 1)
        sd = {k: v.numpy() for k, v in net.state_dict().items()}
        a = archs.detect(sd)
        onnx_bytes, _ = build(a.forward, sd, a, a.name)
        sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        n = a.min_size + (0 if case != "2x-fast" else 2)  # 42 + 2: a multiple of 4 spandrel takes
        x = np.random.default_rng(0).random((1, 3, n, n), dtype=np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
        if case != "2x-fast":
            with pytest.raises(Exception, match="Pad"):  # one pixel less: the reflection would leave the image
                sess.run(None, {"input": x[:, :, 1:, 1:].copy()})


def test_a_wrong_or_missing_tensor_is_refused():
    """A state dict missing one of unet2's squeeze-excitation tensors, or with a resized one,
    is not half-built: detection answers no. So is a 2x whose channels in and out differ."""
    net = network("2x", 0)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "realcugan"
    bad = dict(sd)
    del bad["unet2.conv3.seblock.conv2.bias"]
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(bad)
    bad = dict(sd)
    bad["unet2.conv4_up.weight"] = np.zeros((64, 64, 3, 3), np.float32)
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(bad)
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd, 4)  # a 2x asked for as a 4x
    one = network("2x", 0).__class__(in_channels=3, out_channels=1)
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect({k: v.numpy() for k, v in one.state_dict().items()})


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_upscaler_runs_the_converted_graph_on_the_engines(tmp_path, shared_dir, srzoo_env, mirror, monkeypatch,
                                                          backend):
    """The converted Real-CUGAN as a registry model: srzoo.Upscaler on ONNX Runtime,
    OpenVINO and cv2.dnn gives spandrel's output on an odd-sized image (8-bit rounding apart),
    and tiled (16 px tiles, smaller than the network's 21 px minimum) too."""
    from standin import write_manifest

    import srzoo

    net, f = _case(tmp_path, "4x-pro", seed=11)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "cugan_x4.onnx").write_bytes(conv.onnx)
    manifest = write_manifest(tmp_path / "cugan.toml", folder / "cugan_x4.onnx", "cugan-standin", 4, color="rgb",
                              range=1.0, layout="nchw", input="input", outputs=["output"])
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    bgr = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[70:95, 50:83]
    try:
        out = srzoo.Upscaler("cugan-standin", 4, backend=backend, tile=0)(bgr)
    except srzoo.SrzooError as e:  # cv2.dnn 4.x: one line naming the engines that run it
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e)
        return
    x = (bgr[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()[0].transpose(1, 2, 0)[:, :, ::-1]
    want8 = np.clip(np.rint(want * 255), 0, 255)
    assert out.shape == (100, 132, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(np.float32) - want8).max() <= 1
    assert np.unique(out).size > 50  # a real image, not a flat or clipped one
