"""Swin2SR (srzoo.convert.arch.swin2sr, the Swin V2 blocks of srzoo.convert.arch._swin) against
spandrel's implementation.

Randomly initialised networks of every variant srzoo reads (upsamplers pixelshuffle x2/x3,
pixelshuffle_aux x2/x4 (the compressed-input models: a bicubic branch), pixelshuffledirect
x4/x2 (grey), nearest+conv x4 and none at x1; 1conv and 3conv residual connections; windows 4,
7 (img_range 255, the JPEG models) and 8; shifted windows or not (spandrel shifts only when the
file holds the masks); with and without q/v biases and the patch-embedding norm) are saved by
torch, converted (checked at conversion time against torch), and the ONNX is run by ONNX Runtime
on a real image crop of odd size, which the graph pads to a multiple of the window and crops
back: within 1e-4 of spandrel's module. No real Swin2SR file is available here (none is in the
pinned catalogue; the authors' are on GitHub releases outside this machine), so the
random-network checks are the parity evidence; the weights are re-drawn at unit scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swin_refs import randomise, swin2sr_class
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4

from convert.test_arch_swinir import image  # noqa: E402

BASE = dict(img_size=16, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=4, mlp_ratio=2.0)
CASES = {  # id: Swin2SR keyword arguments (on top of BASE)
    "ps-x2": dict(upscale=2, upsampler="pixelshuffle"),
    "ps-x3-3conv-w8": dict(upscale=3, upsampler="pixelshuffle", resi_connection="3conv", window_size=8, img_size=32,
                           depths=[2, 1, 2], num_heads=[2, 2, 4]),
    "aux-x4": dict(upscale=4, upsampler="pixelshuffle_aux"),
    "aux-x2-noshift": dict(upscale=2, upsampler="pixelshuffle_aux", img_size=4),
    "psd-x4-noqkvbias": dict(upscale=4, upsampler="pixelshuffledirect", depths=[3], num_heads=[3], qkv_bias=False),
    "psd-x2-gray": dict(upscale=2, upsampler="pixelshuffledirect", in_chans=1),
    "nc-x4-3conv": dict(upscale=4, upsampler="nearest+conv", resi_connection="3conv"),
    "none-x1-w7": dict(upscale=1, upsampler="", window_size=7, img_size=28, img_range=255.0),
    "none-x1-gray-nonorm": dict(upscale=1, upsampler="", in_chans=1, patch_norm=False),
}


def _case(tmp_path: Path, case: str, seed: int):
    kw = {**BASE, **CASES[case]}
    net = randomise(swin2sr_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, kw, f


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    net, kw, f = _case(tmp_path, case, seed=len(case))
    s, ws = kw["upscale"], kw["window_size"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("swin2sr", s, kw.get("in_chans", 3))
    pr = a.params
    assert (pr["embed_dim"], pr["depths"], pr["heads"], pr["window"]) == (24, kw["depths"], kw["num_heads"], ws)
    assert pr["upsampler"] == (kw["upsampler"] or "none")
    assert pr["resi_connection"] == kw.get("resi_connection", "1conv")
    assert pr["img_range"] == kw.get("img_range", 1.0)
    assert pr["shift"] == (0 if kw["img_size"] <= ws else ws // 2)

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
    print(f"swin2sr {case}: max |onnxruntime - spandrel| = {err:.2g}")
    assert err <= TOL
    x2 = image(shared_dir, *{4: (16, 8), 7: (14, 21), 8: (16, 16)}[ws], gray=gray)  # a multiple: no padding
    with torch.no_grad():
        want2 = net(torch.from_numpy(x2)).numpy()
    assert np.abs(sess.run(None, {"input": x2})[0] - want2).max() <= TOL


@pytest.mark.parametrize("case", ["ps-x2", "aux-x4", "none-x1-w7"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel,
    on a batch of two (the window and mask operations keep images apart)."""
    net, kw, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    x = np.concatenate([image(shared_dir, 11, 13), image(shared_dir, 11, 13)[:, :, ::-1, :].copy()])
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOL


def test_a_clamped_temperature_is_clamped():
    """A head whose logit_scale is above log(100) attends with temperature 100, as upstream's
    clamp: spandrel's module and the converted graph agree with the scale set to 9."""
    net = randomise(swin2sr_class()(**{**BASE, **CASES["ps-x2"]}), 3)
    with torch.no_grad():
        net.layers[0].residual_group.blocks[0].attn.logit_scale.fill_(9.0)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    a = archs.detect(sd)
    x = np.random.default_rng(0).random((1, 3, 8, 12)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    ops = reference.NumpyOps()
    assert np.abs(ops.output(a.forward(ops, sd, a, ops.input(x))) - want).max() <= TOL
    sd["layers.0.residual_group.blocks.0.attn.logit_scale"] = np.full((2, 1, 1), 4.0, np.float32)  # below the clamp
    assert np.abs(ops.output(a.forward(ops, sd, a, ops.input(x))) - want).max() > 100 * TOL


def test_refused_variants():
    """pixelshuffle_hf (three outputs), a missing tensor, a wrong shape and an absolute position
    embedding are refused: detection answers no."""
    base = {**BASE, **CASES["ps-x2"]}
    hf = {k: v.numpy() for k, v in swin2sr_class()(**{**base, "upsampler": "pixelshuffle_hf"}).state_dict().items()}
    sd = {k: v.numpy() for k, v in swin2sr_class()(**base).state_dict().items()}
    assert archs.detect(sd).name == "swin2sr"
    missing = {k: v for k, v in sd.items() if k != "layers.1.residual_group.blocks.1.attn.cpb_mlp.2.weight"}
    wrong = {**sd, "layers.0.patch_embed.proj.weight": np.zeros((24, 24, 3, 3), np.float32)}
    ape = {**sd, "absolute_pos_embed": np.zeros((1, 256, 24), np.float32)}
    for bad in (hf, missing, wrong, ape):
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(bad)
