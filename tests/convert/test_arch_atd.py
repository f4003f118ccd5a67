"""ATD (srzoo.convert.arch.atd: token-dictionary cross-attention, category-sorted group
attention, shifted windows) against spandrel's implementation.

Randomly initialised networks of every variant srzoo reads (ATD-like pixelshuffle x2 and x3,
ATD-light pixelshuffledirect x4 at dim 48 with its category size 128, nearest+conv x4, x1
restoration; 1conv and 3conv residual connections; windows 4 and 8; with and without qkv
biases, the patch-embedding norm and the mean (``no_norm``); FFN kernels 5 and 3; one and
three input channels) are saved by torch, converted (checked at conversion time against
torch), and the ONNX is run by ONNX Runtime and OpenVINO on a real image crop of odd size,
which the graph mirrors to a multiple of the window and crops back: within 1e-4 of
spandrel's module. The 19x23 crop makes more tokens than a category group (several groups,
the last filled by mirrored tokens), an 11x13 crop fewer (one group of all tokens).

spandrel's AC-MSA sorts the tokens' category ids with ``torch.sort(stable=False)``; nearly
all ids tie, and the order torch gives ties is implementation-defined (on torch 2.13's CPU
it equals the stable order only up to 16 tokens), so spandrel's module is run here with that
one sort made stable (``tests/swin_refs.py::atd_class``); srzoo's graph sorts stably on
every engine (``test_category_order_is_a_stable_sort_on_every_engine``).

No real community ATD file is available here (the records' files are on Google Drive and
GitHub outside this machine), so the random-network checks are the parity evidence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swin_refs import atd_class, randomise
from srzoo.convert import arch as archs
from srzoo.convert import converter_for, reference, torchload

torch = pytest.importorskip("torch", reason="parity with spandrel needs torch")
TOL = 1e-4

from convert.test_arch_swinir import image  # noqa: E402

BASE = dict(img_size=16, embed_dim=24, depths=[2, 3], num_heads=[2, 3], window_size=4, num_tokens=8,
            reducted_dim=4, mlp_ratio=2.0)
CASES = {  # id: ATD keyword arguments (on top of BASE); category_size as spandrel infers it
    "x2-ps": dict(upscale=2, upsampler="pixelshuffle"),
    "x3-ps-3conv-nobias": dict(upscale=3, upsampler="pixelshuffle", resi_connection="3conv", qkv_bias=False,
                               patch_norm=False, num_tokens=16, reducted_dim=6),
    "light-x4-psd-w8": dict(upscale=4, upsampler="pixelshuffledirect", embed_dim=48, depths=[2], num_heads=[4],
                            window_size=8, category_size=128, convffn_kernel_size=3, mlp_ratio=1.5),
    "x4-nearest": dict(upscale=4, upsampler="nearest+conv", depths=[3], num_heads=[3]),
    "x1-gray-nonorm": dict(upscale=1, upsampler="", in_chans=1, norm=False),
}
LIGHT = {"light-x4-psd-w8"}


def _case(tmp_path: Path, case: str, seed: int):
    kw = {**BASE, "category_size": 256, **CASES[case]}
    net = randomise(atd_class()(**kw), seed)
    f = tmp_path / "net.pth"
    torch.save(net.state_dict(), f)
    return net, kw, f


def openvino_f32(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    m = core.compile_model(core.read_model(onnx_bytes, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(m(x)[0])


@pytest.mark.parametrize("case", list(CASES))
def test_converted_graph_matches_spandrel(tmp_path, shared_dir, case):
    net, kw, f = _case(tmp_path, case, seed=len(case))
    s, ws = kw["upscale"], kw["window_size"]
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    assert (a.name, a.scale, a.in_channels) == ("atd", s, kw.get("in_chans", 3))
    pr = a.params
    assert (pr["embed_dim"], pr["depths"], pr["heads"], pr["window"], pr["tokens"], pr["reduced_dim"]) == \
        (kw["embed_dim"], kw["depths"], kw["num_heads"], ws, kw["num_tokens"], kw["reducted_dim"])
    assert pr["upsampler"] == (kw["upsampler"] or "none") and pr["category_size"] == kw["category_size"]
    assert pr["size"] == ("light" if case in LIGHT else "medium") and pr["norm"] == kw.get("norm", True)

    conv = converter_for("pytorch-pth").convert(f, None, {"tolerance": TOL})
    assert conv.probe_error <= TOL and "torch" in conv.checked_against

    import onnxruntime as ort

    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    gray = kw.get("in_chans", 3) == 1
    for h, w in ((19, 23), (11, 13), (16, 24)):  # odd (padded), fewer tokens than a group, a multiple
        x = image(shared_dir, h, w, gray=gray)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert want.shape == (1, x.shape[1], h * s, w * s) and want.std() > 0.05  # a real signal
        err = np.abs(sess.run(None, {"input": x})[0] - want).max()
        print(f"atd {case} {h}x{w}: max |onnxruntime - spandrel| = {err:.2g}")
        assert err <= TOL
        if (h, w) == (19, 23):
            err_ov = np.abs(openvino_f32(conv.onnx, x) - want).max()
            print(f"atd {case} {h}x{w}: max |openvino - spandrel| = {err_ov:.2g}")
            assert err_ov <= TOL


@pytest.mark.parametrize("case", ["x2-ps", "x1-gray-nonorm"])
def test_numpy_reference_matches_spandrel(tmp_path, shared_dir, case):
    """The check used where PyTorch is absent: srzoo's numpy forward pass against spandrel,
    on a batch of two (the categories, groups, dictionaries and windows keep images apart)."""
    net, kw, f = _case(tmp_path, case, seed=7)
    sd = torchload.load_state_dict(f)
    a = archs.detect(sd)
    gray = kw.get("in_chans", 3) == 1
    x = np.concatenate([image(shared_dir, 19, 17, gray=gray), image(shared_dir, 19, 17, gray=gray)[:, :, ::-1]])
    ops = reference.NumpyOps()
    got = ops.output(a.forward(ops, sd, a, ops.input(np.ascontiguousarray(x))))
    with torch.no_grad():
        want = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert np.abs(got - want).max() <= TOL
    assert np.abs(got[0] - got[1]).max() > 0.05  # two different images


def _graph_model(build, inputs: dict[str, tuple]):
    from srzoo.convert.onnxbuild import Graph

    g = Graph()
    for name, shape in inputs.items():
        g.inputs.append(g.onnx.helper.make_tensor_value_info(name, g.onnx.TensorProto.FLOAT, list(shape)))
    outs = build(g)
    for i, o in enumerate(outs):
        g.outputs.append(g.onnx.helper.make_tensor_value_info(f"o{i}", g.onnx.TensorProto.FLOAT, None))
        g.nodes.append(g.onnx.helper.make_node("Identity", [o], [f"o{i}"]))
    m = g.onnx.helper.make_model(g.onnx.helper.make_graph(g.nodes, "t", g.inputs, g.outputs, g.inits),
                                 opset_imports=[g.onnx.helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def test_category_order_is_a_stable_sort_on_every_engine():
    """``category_order`` (argmax, then a stable sort of the ids and its inverse) and
    ``group_tokens`` / ``ungroup_tokens`` in the graph on ONNX Runtime and OpenVINO, in torch
    and in numpy, against numpy's stable argsort: 300 tokens of 5 categories (every id tied
    ~60 times), a batch of two, groups of 64 (the last filled by 20 mirrored tokens)."""
    import onnxruntime as ort

    rng = np.random.default_rng(5)
    ids = rng.integers(0, 5, (2, 300))
    sim = (np.eye(5)[ids] + 0.1 * rng.random((2, 300, 5))).astype(np.float32)
    tok = rng.standard_normal((2, 300, 3)).astype(np.float32)
    perm = np.argsort(ids, -1, kind="stable")
    assert np.array_equal(np.argmax(sim, -1), ids)
    gidx = np.concatenate([np.arange(300), 299 - np.arange(20)])    # 5 groups of 64: 20 mirrored
    want_g = np.take_along_axis(tok, perm[:, gidx, None], 1).reshape(2, 5, 64, 3)

    def build(g):
        p, r = g.category_order("sim", 5)
        gr = g.group_tokens("tok", p, 64)
        return [g.node("Cast", [p], to=1), gr, g.ungroup_tokens(gr, r)]
    onnx = _graph_model(build, {"sim": ("b", "n", 5), "tok": ("b", "n", 3)})
    runs = {"onnxruntime": ort.InferenceSession(onnx, providers=["CPUExecutionProvider"]).run(
        None, {"sim": sim, "tok": tok})}
    try:
        import openvino as ov

        core = ov.Core()
        m = core.compile_model(core.read_model(onnx, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        res = m({"sim": sim, "tok": tok})
        runs["openvino"] = [np.asarray(res[i]) for i in range(3)]
    except ImportError:
        pass
    for ops in (reference.NumpyOps(), reference.TorchOps()):
        p, r = ops.category_order(ops.input(sim), 5)
        gr = ops.group_tokens(ops.input(tok), p, 64)
        runs[type(ops).__name__] = [np.asarray(p), ops.output(gr), ops.output(ops.ungroup_tokens(gr, r))]
    for name, (p, gr, back) in runs.items():
        assert np.array_equal(np.asarray(p).astype(np.int64), perm), name
        assert np.array_equal(gr, want_g), name
        assert np.array_equal(back, tok), name


def test_symmetric_padding_is_upstreams_flip():
    """``pad_symmetric_to_multiple`` against ATD's own ``cat([x, flip(x)])[:h]`` (the edge
    row repeated, unlike a reflection) in the graph, torch and numpy, to windows of 8."""
    import onnxruntime as ort

    x = np.random.default_rng(2).standard_normal((2, 3, 11, 13)).astype(np.float32)
    t = torch.from_numpy(x)
    want = torch.cat([t, torch.flip(t, [2])], 2)[:, :, :16]
    want = torch.cat([want, torch.flip(want, [3])], 3)[:, :, :, :16].numpy()
    onnx = _graph_model(lambda g: [g.pad_symmetric_to_multiple("x", 8, 8)], {"x": ("b", 3, "h", "w")})
    got = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(got, want)
    assert np.array_equal(reference.NumpyOps().pad_symmetric_to_multiple(x, 8, 8), want)
    o = reference.TorchOps()
    assert np.array_equal(o.output(o.pad_symmetric_to_multiple(o.input(x), 8, 8)), want)


def test_a_truncated_or_misshapen_state_dict_is_refused():
    net = atd_class()(**{**BASE, **CASES["x2-ps"]})
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    assert archs.detect(sd).name == "atd"
    for key, value in [("layers.1.residual_group.layers.2.convffn.fc2.bias", None),
                       ("layers.0.residual_group.layers.0.sigma", None),
                       ("layers.1.residual_group.td", np.zeros((8, 23), np.float32)),
                       ("layers.0.residual_group.layers.1.attn_atd.wk.weight", np.zeros((5, 24), np.float32)),
                       ("absolute_pos_embed", np.zeros((1, 256, 24), np.float32))]:
        bad = dict(sd)
        if value is None:
            del bad[key]
        else:
            bad[key] = value
        with pytest.raises(Exception, match="not a known architecture"):
            archs.detect(bad)
