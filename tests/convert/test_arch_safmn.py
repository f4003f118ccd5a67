"""SAFMN and SAFMN-BCIE (srzoo.convert.arch.safmn) against spandrel's implementation.

Randomly initialised networks of both spandrel architectures (SAFMN at x1-x4, ffn scales
2 and 1.5; SAFMN-BCIE with pixel unshuffle 1 and 2) are saved by torch, converted without
torch in the graph path, and the ONNX is run by ONNX Runtime and cv2.dnn on real image
crops. At sides that are multiples of spandrel's size requirement (8; BCIE 16) the graph
is compared with the bare module; at odd sides with what spandrel's ImageModelDescriptor
(what chaiNNer and ComfyUI call) computes: its own ``pad_tensor`` (reflect to the
multiple), the module, the crop; within 1e-4 either way. No real community SAFMN file
is available here (none is in the pinned catalogue), so these are the parity evidence.
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


def classes():
    plain = spandrel_src.load("SAFMN/__arch/safmn.py")["SAFMN"]
    bcie = spandrel_src.load("SAFMNBCIE/__arch/safmn_bcie.py")["SAFMN_BCIE"]
    return plain, bcie


def _size_req():
    """spandrel's __helpers/size_req.py (torch only), imported on its own (a dataclass needs its
    module in sys.modules)."""
    import importlib.util
    import sys

    name = "spandrel_ref_size_req"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, spandrel_src.root() / "__helpers" / "size_req.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def spandrel_call(net, x: np.ndarray, multiple: int, scale: int) -> np.ndarray:
    """spandrel's ImageModelDescriptor.__call__ without its final clamp: pad_tensor (spandrel's
    own code), the module, the crop."""
    req = _size_req()
    h, w = x.shape[2:]
    with torch.no_grad():
        _, t = req.pad_tensor(torch.from_numpy(x.copy()), req.SizeRequirements(multiple_of=multiple))
        return net(t)[..., : h * scale, : w * scale].numpy()


def _randomise(net, seed: int):
    """Unit-scale weights (convs ~ 1/sqrt(fan_in)), LayerNorms away from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


def image(shared: Path, h: int, w: int) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[60:60 + h, 40:40 + w]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


CASES = {  # id: (variant, keyword arguments, scale, spandrel's multiple_of)
    "x4": ("safmn", dict(dim=16, n_blocks=2, upscaling_factor=4), 4, 8),
    "x2-ffn1.5": ("safmn", dict(dim=16, n_blocks=2, ffn_scale=1.5, upscaling_factor=2), 2, 8),
    "x3": ("safmn", dict(dim=8, n_blocks=1, upscaling_factor=3), 3, 8),
    "x1": ("safmn", dict(dim=12, n_blocks=2, upscaling_factor=1), 1, 8),
    "bcie-u2": ("bcie", dict(dim=16, n_blocks=2, num_layers=2, upscaling_factor=2), 1, 16),
    "bcie-u1": ("bcie", dict(dim=8, n_blocks=1, num_layers=3, upscaling_factor=1), 1, 16),
}


def _case(tmp_path: Path, case: str, seed: int):
    variant, kw, _, _ = CASES[case]
    plain, bcie = classes()
    net = _randomise((plain if variant == "safmn" else bcie)(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, f


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    variant, kw, s, multiple = CASES[case]
    net, f = _case(tmp_path, case, seed=len(case))
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale) == ("safmn" if variant == "safmn" else "safmn-bcie", s)
    p = a.params
    assert (p["dim"], p["blocks"], p["hidden"]) == (kw["dim"], kw["n_blocks"], int(kw["dim"] * kw.get("ffn_scale", 2)))
    assert p["multiple"] == multiple and p["layers"] == kw.get("num_layers", 0)

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    try:
        import openvino as ov
    except ImportError:
        ov_run = None
    else:
        m = ov.Core().compile_model(ov.Core().read_model(conv.onnx, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        ov_run = lambda x: np.asarray(m(x)[0])  # noqa: E731
    # a multiple of the requirement: the bare module; odd sides: spandrel's padded call
    for h, w in ((32, 48), (19, 23), (37, 29)):
        x = image(shared_dir, h, w)
        if h % multiple == 0 and w % multiple == 0:
            with torch.no_grad():
                want = net(torch.from_numpy(x)).numpy()
        else:
            want = spandrel_call(net, x, multiple, s)
        assert want.shape == (1, 3, h * s, w * s) and want.std() > 0.05  # a real signal
        got_ort = sess.run(None, {"input": x})[0]
        assert np.abs(got_ort - want).max() <= TOL, (h, w)
        got_cv = run_cv2(conv.onnx, x)
        assert np.abs(got_cv - want).max() <= TOL, (h, w)
        if ov_run is not None:
            assert np.abs(ov_run(x) - want).max() <= TOL, (h, w)


def test_the_padding_matters(tmp_path, shared_dir):
    """At an odd side the bare module (adaptive pools over uneven windows) and spandrel's padded
    call differ: the graph follows the padded call, so this test can tell them apart."""
    net, f = _case(tmp_path, "x2-ffn1.5", seed=1)
    x = image(shared_dir, 19, 23)
    with torch.no_grad():
        bare = net(torch.from_numpy(x)).numpy()
    padded = spandrel_call(net, x, 8, 2)
    assert np.abs(bare - padded).max() > 100 * TOL


@pytest.mark.parametrize("case", ["x4", "bcie-u2"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel."""
    _, _, s, multiple = CASES[case]
    net, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = image(shared_dir, 17, 21)
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    assert np.abs(got - spandrel_call(net, x, multiple, s)).max() <= TOL


def test_an_incomplete_block_is_not_safmn():
    plain, _ = classes()
    sd = {k: v.numpy() for k, v in plain(dim=8, n_blocks=2, upscaling_factor=2).state_dict().items()
          if k != "feats.1.safm.mfr.3.weight"}
    with pytest.raises(Exception, match="not a known architecture"):
        archs.detect(sd)
