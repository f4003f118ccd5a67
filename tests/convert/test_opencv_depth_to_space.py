"""cv2.dnn and torch-style pixel shuffles (ONNX ``DepthToSpace`` in CRD mode).

Loading a dnn_superres ``.pb`` registers OpenCV's own ``DepthToSpace`` layer
for the whole process, and from then on cv2.dnn computes every ONNX
``DepthToSpace`` in DCR order: a CRD graph (what PyTorch exports for
``pixel_shuffle``) gives wrong pixels with no error. The opencv engine rewrites
CRD nodes as a channel reorder plus a DCR ``DepthToSpace`` before loading; these tests load a real
``.pb`` first, then a real ONNX graph, and compare with a numpy reference.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import srzoo
from srzoo.convert import cvcompat, opencv_onnx
from standin import write_manifest


def _crd_model(path, weights: np.ndarray) -> None:
    """RGB in [0,1] -> 1x1 conv to 12 channels -> DepthToSpace(2, CRD) -> RGB x2."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])
    w = numpy_helper.from_array(weights.reshape(12, 3, 1, 1).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["f"]),
                           helper.make_node("DepthToSpace", ["f"], ["y"], blocksize=2, mode="CRD")],
                          "crd", [x], [y], initializer=[w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def _reference(img_bgr: np.ndarray, weights: np.ndarray) -> np.ndarray:
    rgb = img_bgr[:, :, ::-1].astype(np.float32) / 255.0
    f = rgb @ weights.T                                   # H x W x 12, channel = c*4 + i*2 + j
    h, w = rgb.shape[:2]
    out = f.reshape(h, w, 3, 2, 2).transpose(0, 3, 1, 4, 2).reshape(h * 2, w * 2, 3)
    return np.clip(np.rint(out[:, :, ::-1] * 255), 0, 255).astype(np.uint8)


def test_crd_pixel_shuffle_is_right_after_a_pb_was_loaded(models_env, mirror, tmp_path, monkeypatch,
                                                         shared_dir):
    rng = np.random.default_rng(7)
    weights = rng.uniform(0.0, 0.3, (12, 3)).astype(np.float32)
    folder = tmp_path / "m"
    folder.mkdir()
    _crd_model(folder / "crd_x2.onnx", weights)
    manifest = write_manifest(tmp_path / "crd.toml", folder / "crd_x2.onnx", "crd-standin", 2,
                              color="rgb", range=1.0, layout="nchw")
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    img = rng.integers(0, 256, (20, 26, 3), dtype=np.uint8)
    srzoo.Upscaler("espcn", 2, backend="opencv:cpu")(img)  # a .pb: registers OpenCV's DepthToSpace
    # (where this OpenCV still reads .pb files; 5.1 runs the derived ONNX instead)
    assert cvcompat.superres_layers_registered() == cvcompat.tf_importer()
    out = srzoo.Upscaler("crd-standin", 2, backend="opencv:cpu")(img)
    assert np.abs(out.astype(int) - _reference(img, weights).astype(int)).max() <= 1


def test_rewrite_leaves_other_graphs_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(opencv_onnx, "depth_to_space_ok", lambda: True)
    monkeypatch.setattr(opencv_onnx, "conv_kernel_shape_optional", lambda: True)
    _crd_model(tmp_path / "a.onnx", np.ones((12, 3), np.float32))
    rewritten = onnx.load_from_string(opencv_onnx.rewritten_for_opencv(tmp_path / "a.onnx"))
    modes = [helper.get_attribute_value(a) for n in rewritten.graph.node if n.op_type == "DepthToSpace"
             for a in n.attribute if a.name == "mode"]
    assert modes == [b"DCR"]
    onnx.checker.check_model(rewritten)
    # DCR (TensorFlow's order) is computed right by cv2 either way: not rewritten
    m = onnx.load(str(tmp_path / "a.onnx"))
    m.graph.node[1].attribute[1].s = b"DCR"
    onnx.save(m, str(tmp_path / "b.onnx"))
    assert opencv_onnx.rewritten_for_opencv(tmp_path / "b.onnx") is None


@pytest.mark.parametrize("mode", ["CRD", "DCR"])
def test_conv_transpose_form_is_exact_at_every_size(tmp_path, mode):
    """Where a build cannot run ONNX DepthToSpace at any size (OpenCV 4.10), it
    becomes a one-hot ConvTranspose: checked here in whatever cv2 is installed,
    at two sizes, against numpy's reshape/transpose definition of the op, with
    kernel_shape left to the weights as ONNX allows (filled in for 4.10)."""
    import cv2

    from srzoo.convert import opencv_onnx

    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])
    w = rng.uniform(-1, 1, (27, 3, 1, 1)).astype(np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["f"]),
                           helper.make_node("DepthToSpace", ["f"], ["y"], blocksize=3, mode=mode)],
                          "d2s", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    out = opencv_onnx.rewrite(data, crd_to_dcr=False, to_conv_transpose=True, kernel_shapes=True,
                              refuse=lambda why: pytest.fail(why))
    ops = [n.op_type for n in onnx.load_from_string(out).graph.node]
    assert ops == ["Conv", "ConvTranspose"]
    (tmp_path / "m.onnx").write_bytes(out)
    net = cv2.dnn.readNetFromONNX(str(tmp_path / "m.onnx"))
    for h, wd in ((5, 7), (8, 4)):
        inp = rng.uniform(0, 1, (1, 3, h, wd)).astype(np.float32)
        f = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], inp)
        if mode == "DCR":
            ref = f.reshape(1, 3, 3, 3, h, wd).transpose(0, 3, 4, 1, 5, 2).reshape(1, 3, h * 3, wd * 3)
        else:
            ref = f.reshape(1, 3, 3, 3, h, wd).transpose(0, 1, 4, 2, 5, 3).reshape(1, 3, h * 3, wd * 3)
        net.setInput(inp)
        assert np.abs(net.forward() - ref).max() < 1e-5


def test_unknown_channel_count_is_refused_where_a_rewrite_is_needed(tmp_path, monkeypatch):
    # a DepthToSpace fed by a graph input of unknown channels: no rewrite possible
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, None, None])
    g = helper.make_graph([helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")],
                          "d2s", [x], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "a.onnx"))
    monkeypatch.setattr(cvcompat, "_layers_registered", True)
    with pytest.raises(srzoo.ModelLoadError, match=r"a.onnx: uses DepthToSpace.*channel count is unknown"):
        opencv_onnx.rewritten_for_opencv(tmp_path / "a.onnx")
