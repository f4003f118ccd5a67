"""SPSR (srzoo.convert.arch.spsr) against spandrel's implementation.

spandrel 0.4.2 no longer has SPSR; 0.2.2 (PyPI) is its last release with it (and what
chaiNNer loaded SPSR files with). The fixture downloads that wheel with pip into a
temporary folder and reads its SPSR file and ESRGAN block helpers through
tests/spandrel_src.py (skipping where pip cannot reach PyPI). Randomly initialised
networks of both upsamplers (upconv: nearest x2 + conv, as the published files;
pixelshuffle) at x1, x2 and x4 are saved by torch, converted without torch in the graph
path, and the ONNX is run by ONNX Runtime and cv2.dnn on a real image crop of odd size:
within 1e-4 of spandrel's module. No real community SPSR file is available here (the
three records are on Google Drive), so these random-network checks are the parity evidence.
"""

from __future__ import annotations

import types
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
RELEASE = "0.2.2"


@pytest.fixture(scope="module")
def spsr_class(tmp_path_factory):
    return spsr_from(spandrel_src.old_release(RELEASE, tmp_path_factory.mktemp("spandrel-old")))


def spsr_from(base: Path):
    block = types.SimpleNamespace(**spandrel_src.load("__arch_helpers/block.py", base=base))
    return spandrel_src.load("SPSR/arch/SPSR.py", base=base, B=block)["SPSRNet"]


def _randomise(net, seed: int):
    """Unit-scale weights (convs ~ 1/sqrt(fan_in)); the fixed gradient kernels keep their values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("get_g_nopadding"):
                continue
            if p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int = 19, w: int = 23) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


CASES = {  # id: SPSRNet keyword arguments (upstream needs 20 RRDBs or more; its RRDBs grow by 32)
    "upconv-x4": dict(in_nc=3, out_nc=3, num_filters=8, num_blocks=20, upscale=4),
    "upconv-x2-21nb": dict(in_nc=3, out_nc=3, num_filters=8, num_blocks=21, upscale=2),
    "pixelshuffle-x2": dict(in_nc=3, out_nc=3, num_filters=8, num_blocks=20, upscale=2, upsample_mode="pixelshuffle"),
    "x1": dict(in_nc=3, out_nc=3, num_filters=8, num_blocks=20, upscale=1),
}


def _case(spsr, tmp_path: Path, case: str, seed: int):
    net = _randomise(spsr(**CASES[case]), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(spsr_class, tmp_path, shared_dir, case):
    kw = CASES[case]
    net, f = _case(spsr_class, tmp_path, case, seed=len(case))
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    s = kw["upscale"]
    assert (a.name, a.scale) == ("spsr", s)
    assert (a.params["features"], a.params["blocks"], a.params["grow"]) == (kw["num_filters"], kw["num_blocks"], 32)
    assert a.params["upsampler"] == kw.get("upsample_mode", "upconv") or s == 1

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    x = image(shared_dir)  # 19x23: odd
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, 3, 19 * s, 23 * s) and want.std() > 0.05  # a real signal, not a constant
    import onnxruntime as ort

    got_ort = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got_ort - want).max() <= TOL
    got_cv = run_cv2(conv.onnx, x)
    assert np.abs(got_cv - want).max() <= TOL
    ov = pytest.importorskip("openvino")  # last: a missing OpenVINO skips only this engine
    core = ov.Core()
    m = core.compile_model(core.read_model(conv.onnx, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.abs(np.asarray(m(x)[0]) - want).max() <= TOL


def test_the_gradient_branch_counts(spsr_class, tmp_path, shared_dir):
    """The output depends on the gradient branch: spandrel's module with its gradient kernels
    zeroed differs from the graph (which reads them from the file) by far more than 1e-4."""
    net, f = _case(spsr_class, tmp_path, "upconv-x2-21nb", seed=5)
    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    x = image(shared_dir)
    with torch.no_grad():
        net.get_g_nopadding.weight_h.zero_()
        net.get_g_nopadding.weight_v.zero_()
        changed = net(torch.from_numpy(x)).numpy()
    import onnxruntime as ort

    got = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - changed).max() > 100 * TOL


def test_numpy_reference_matches_spandrel(spsr_class, tmp_path, shared_dir):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    net, f = _case(spsr_class, tmp_path, "upconv-x4", seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 11, 13)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_fewer_than_twenty_blocks_is_not_spsr(spsr_class):
    """Upstream reads the branch features after RRDB 20: a 19-block file is not guessed."""
    sd = {k: v.numpy() for k, v in spsr_class(**CASES["upconv-x4"]).state_dict().items()
          if not k.startswith("model.1.sub.19.")}
    sd = {k.replace("model.1.sub.20.", "model.1.sub.19."): v for k, v in sd.items()}
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)
