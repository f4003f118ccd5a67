"""DRCT (srzoo.convert.arch.drct) against spandrel's implementation.

Randomly initialised networks (unit-scale weights, tests/swin_refs.py) of the variants
srzoo reads — shifted (the file holds ``attn_mask``) or not, ``1conv`` or identity after
the body, pixel shuffle x2 / x3 / x4, one and three input channels, growth channels giving
uneven head counts — are saved by torch, converted (checked against torch at conversion
time) and run by ONNX Runtime within 1e-4 of spandrel's module: on a 16x24 crop (a multiple
of the window, spandrel's own requirement) and on a 19x23 crop, where the graph pads by
reflection and crops, compared with spandrel on the same reflect-padded input. No real
community DRCT file is available here, so the random-network checks are the parity evidence.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload
from swin_refs import drct_class, randomise

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4

BASE = dict(embed_dim=24, depths=[6], num_heads=[3], window_size=4, mlp_ratio=2.0, gc=8, upsampler="pixelshuffle")
CASES = {  # id: DRCT keyword arguments (on top of BASE); img_size > window: shifted blocks
    "shift-x2": dict(img_size=16, upscale=2, depths=[6, 6], num_heads=[2, 3]),
    "shift-x4-identity": dict(img_size=8, upscale=4, resi_connection="identity", gc=6, num_heads=[4]),
    "noshift-x3": dict(img_size=4, upscale=3),
    "shift-x2-gray-w8": dict(img_size=16, upscale=2, in_chans=1, window_size=8, num_heads=[2]),
}


def image(shared: Path, h: int, w: int, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[70:70 + h, 50:50 + w]
    x = (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    return x[:, :1].copy() if gray else x


def _case(tmp_path: Path, case: str, seed: int):
    kw = {**BASE, **CASES[case]}
    net = randomise(drct_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, kw, f


def _spandrel_padded(net, x: np.ndarray, ws: int, s: int) -> np.ndarray:
    h, w = x.shape[2:]
    xp = torch.nn.functional.pad(torch.from_numpy(x), (0, (-w) % ws, 0, (-h) % ws), "reflect")
    with torch.no_grad():
        return net(xp).numpy()[:, :, :h * s, :w * s]


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    net, kw, f = _case(tmp_path, case, seed=len(case))
    s, ws, gray = kw["upscale"], kw["window_size"], kw.get("in_chans", 3) == 1
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("drct", s, kw.get("in_chans", 3))
    pr = a.params
    assert (pr["embed_dim"], pr["groups"], pr["gc"], pr["window"]) == (24, len(kw["depths"]), kw["gc"], ws)
    assert pr["shift"] == (ws // 2 if kw["img_size"] > ws else 0)
    assert pr["resi_connection"] == kw.get("resi_connection", "1conv")

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    x = image(shared_dir, 16, 24, gray)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert want.shape == (1, x.shape[1], 16 * s, 24 * s) and want.std() > 0.05
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL
    x = image(shared_dir, 19, 23, gray)  # odd: padded inside the graph
    want = _spandrel_padded(net, x, ws, s)
    assert np.abs(sess.run(None, {"input": x})[0] - want).max() <= TOL


def test_numpy_reference_matches_spandrel(tmp_path, shared_dir):
    """The check used where PyTorch is absent, on a batch of two."""
    net, kw, f = _case(tmp_path, "shift-x2", seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = np.concatenate([image(shared_dir, 11, 13), image(shared_dir, 11, 13)[:, :, ::-1, :].copy()])
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    assert np.abs(got - _spandrel_padded(net, x, 4, 2)).max() <= TOL


def test_absolute_position_embedding_and_missing_tensors_are_refused():
    net = drct_class()(**{**BASE, **CASES["shift-x2"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "drct"
    for bad in ({**sd, "absolute_pos_embed": np.zeros((1, 256, 24), np.float32)},
                {k: v for k, v in sd.items() if k != "layers.1.swin3.mlp.fc2.weight"},
                {**sd, "layers.0.adjust2.weight": np.zeros((8, 31, 1, 1), np.float32)}):
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(bad)
