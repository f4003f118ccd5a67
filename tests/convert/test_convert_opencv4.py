"""Converted CARN-M and RFDN graphs in the installed cv2.dnn (4.x or 5.x).

cv2.dnn 4.x infers shapes once while importing, with the symbolic height and
width taken as 0: a Concat joining a tensor that went through a two-tensor
Add/Mul (``NaryEltwise``, which reports such a dimension as 1) with one that
did not failed with "Inconsistent shape for ConcatLayer", and a Resize to sizes
computed by Shape did not import at all. The graphs are fetched and converted
through the registry (the conversion's own probe runs cv2.dnn too), run on an
odd-sized input and compared with onnxruntime; the structural checks below hold
the two constructs in place where the installed OpenCV (5.x) would pass anyway.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

NARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow"}


def converted(name: str, scale: int | None) -> Path:
    return srzoo.model_file(srzoo.get_model(name, scale), quiet=True)


def x_odd() -> np.ndarray:
    return np.random.default_rng(7).random((1, 3, 37, 41), dtype=np.float32)


@pytest.mark.parametrize("name,scale", [("carn-m", 2), ("carn-m", 3), ("rfdn", 4)])
def test_cv2_dnn_runs_the_converted_graph_like_onnxruntime(models_env, name, scale):
    path = converted(name, scale)
    x = x_odd()
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(x)
    got = net.forward()
    assert got.shape == want.shape == (1, 3, 37 * scale, 41 * scale)
    assert np.abs(got - want).max() <= 1e-4, (cv2.__version__, float(np.abs(got - want).max()))
    # the same net again at another odd size: the sizes are not fixed at import
    x2 = np.random.default_rng(8).random((1, 3, 19, 23), dtype=np.float32)
    want2 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x2})[0]
    net.setInput(x2)
    got2 = net.forward()
    assert got2.shape == want2.shape and np.abs(got2 - want2).max() <= 1e-4


def _producers(model) -> dict:
    return {o: n for n in model.graph.node for o in n.output}


@pytest.mark.parametrize("name,scale", [("carn-m", 4), ("rfdn", 4)])
def test_concat_inputs_agree_on_import_time_shapes(models_env, name, scale):
    """cv2.dnn 4.x's import-time rule: a tensor's placeholder height/width is 1
    once it comes from an NaryEltwise (an op in NARY on two computed tensors),
    0 before; every channel Concat must see the same on all its inputs."""
    m = onnx.load(str(converted(name, scale)))
    consts = {i.name for i in m.graph.initializer} | {o for n in m.graph.node if n.op_type == "Constant"
                                                       for o in n.output}
    nary: set[str] = set()
    concats = 0
    for n in m.graph.node:  # nodes are in topological order
        computed = [i for i in n.input if i and i not in consts]
        if n.op_type == "Concat" and any(a.name == "axis" and a.i == 1 for a in n.attribute):
            concats += 1
            flags = {i in nary for i in computed}
            assert len(flags) == 1, (n.name, [(i, i in nary) for i in computed])
        if any(i in nary for i in computed) or (n.op_type in NARY and len(computed) >= 2):
            nary.update(n.output)
    assert concats >= 4


def test_rfdn_resizes_through_the_pattern_opencv4_fuses(models_env):
    """ESA's resize to its input's size: opset 12, sizes from Shape/Gather(Constant)/
    Unsqueeze(axes attribute)/Concat/Cast beside Slice(Shape(x)), Constant roi and
    scales (what cv2.dnn 4.x's importer replaces by one resize to the reference)."""
    m = onnx.load(str(converted("rfdn", 4)))
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) == 12
    prod = _producers(m)
    resizes = [n for n in m.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 4  # one per block
    for r in resizes:
        x, roi, scales, sizes = r.input
        assert prod[roi].op_type == prod[scales].op_type == "Constant"
        cat = prod[sizes]
        assert cat.op_type == "Concat" and len(cat.input) == 2
        sl, cast = (prod[i] for i in cat.input)
        assert sl.op_type == "Slice" and prod[sl.input[0]].op_type == "Shape"
        assert prod[sl.input[0]].input[0] == x
        assert cast.op_type == "Cast"
        hw = prod[cast.input[0]]
        assert hw.op_type == "Concat" and len(hw.input) == 2
        refs = set()
        for u, axis in zip(hw.input, (2, 3)):
            un = prod[u]
            assert un.op_type == "Unsqueeze" and len(un.input) == 1
            g = prod[un.input[0]]
            assert g.op_type == "Gather" and prod[g.input[1]].op_type == "Constant"
            assert onnx.numpy_helper.to_array(prod[g.input[1]].attribute[0].t) == axis
            assert prod[g.input[0]].op_type == "Shape"
            refs.add(prod[g.input[0]].input[0])
        assert len(refs) == 1


def test_swinir_graph_in_this_opencv(tmp_path):
    """A transformer graph (SwinIR: window partitions and the shift mask sized at run time
    by Shape) converts on any OpenCV: the conversion check runs it on cv2.dnn where that
    imports it (5.x: then it agrees with ONNX Runtime) and on ONNX Runtime where it does not
    (4.x: "dynamic 'zero' shapes are not supported" in its Shape importer); there the opencv
    engine refuses in one line and auto skips it (test_opencv_compat's
    test_a_graph_this_opencv_cannot_import holds that for any such graph)."""
    st = pytest.importorskip("safetensors.numpy")
    import golden
    from srzoo.convert import converter_for
    from srzoo.convert.onnxbuild import run_cv2

    g = golden.load("swinir_ps-x2-w4")
    sd = golden.weights(g["spec"], gain=g["meta"].get("gain", 1.0))
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    path = tmp_path / "swinir.safetensors"
    st.save_file(sd, str(path))
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "swinir" and conv.probe_error <= 1e-4
    x = x_odd()
    want = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert want.shape == (1, 3, 74, 82)
    if int(cv2.__version__.split(".")[0]) >= 5:
        assert np.abs(run_cv2(conv.onnx, x) - want).max() <= 1e-4
    else:
        with pytest.raises(cv2.error, match="Shape"):
            run_cv2(conv.onnx, x)
