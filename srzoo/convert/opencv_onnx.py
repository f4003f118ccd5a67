"""ONNX graphs made loadable, and right, in the installed ``cv2.dnn``.

Two known problems with ``DepthToSpace`` (pixel shuffle), both handled by
rewriting the graph before OpenCV reads it, never by version checks:

* Once ``cv2.dnn_superres`` has registered its own ``DepthToSpace`` layer
  (which the ``.pb`` models need), cv2.dnn computes every later ONNX
  ``DepthToSpace`` in DCR order, process-wide: a CRD graph (torch's
  ``pixel_shuffle``) would give wrong pixels with no error. CRD nodes become a
  one-hot 1x1 channel reorder followed by a DCR ``DepthToSpace`` (exact).
* Some builds (OpenCV 4.10) import ONNX ``DepthToSpace`` as reshapes of the
  first input's size and fail on any other size. :func:`depth_to_space_ok`
  probes that once per process on a tiny graph at two sizes; where it fails,
  every ``DepthToSpace`` becomes a stride-``b`` ``ConvTranspose`` with a
  one-hot kernel (exact, any size).

Both need the channel count of the node's input, from ONNX shape inference.

And one about convolutions: ONNX makes ``kernel_shape`` optional (it is the
weights' shape), but some builds (OpenCV 4.10) refuse a ``Conv`` without it;
where :func:`conv_kernel_shape_optional` finds that, it is filled in from the
weights.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srzoo.convert import cvcompat
from srzoo.convert.reference import NumpyOps
from srzoo.errors import ModelLoadError


def _tiny_model(node: Any, channels: tuple[int, int], inits: tuple[Any, ...] = ()) -> bytes:
    """A one-node ONNX graph from ``x`` ([1, cin, h, w]) to ``y`` ([1, cout, ?, ?])."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels[0], "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels[1], "h2", "w2"])
    m = helper.make_model(helper.make_graph([node], "probe", [x], [y], list(inits)),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def _runs_right(model: bytes, cases: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Does this cv2.dnn load ``model`` and give each expected output for its
    input, in turn on one net? Any failure means "not usable as it is"."""
    import cv2

    try:
        with tempfile.TemporaryDirectory(prefix="srzoo-probe-") as tmp, cvcompat.quiet_opencv():
            p = Path(tmp) / "probe.onnx"
            p.write_bytes(model)
            net = cv2.dnn.readNetFromONNX(str(p), **cvcompat.classic_kw())
            for x, want in cases:
                net.setInput(x)
                if not np.array_equal(net.forward(), want):
                    return False
        return True
    except Exception:  # noqa: BLE001
        return False


@functools.lru_cache(maxsize=1)
def depth_to_space_ok() -> bool:
    """Does this cv2.dnn run an ONNX DCR ``DepthToSpace`` right at a size other
    than the first one it saw? (False on OpenCV 4.10.)"""
    from onnx import helper

    ops = NumpyOps()
    xs = [np.arange(8 * h * w, dtype=np.float32).reshape(1, 8, h, w) for h, w in ((3, 5), (4, 7))]
    node = helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="DCR")
    return _runs_right(_tiny_model(node, (8, 2)), [(x, ops.pixel_shuffle(x, 2, "DCR")) for x in xs])


@functools.lru_cache(maxsize=1)
def conv_kernel_shape_optional() -> bool:
    """Does this cv2.dnn load a ``Conv`` whose ``kernel_shape`` is left to the
    weights, as ONNX allows? (False on OpenCV 4.10.)"""
    from onnx import helper, numpy_helper

    w = np.arange(6, dtype=np.float32).reshape(3, 2, 1, 1)
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    x = np.ones((1, 2, 3, 4), np.float32)
    want = np.broadcast_to(w.sum(axis=(1, 2, 3)).reshape(1, 3, 1, 1), (1, 3, 3, 4))
    return _runs_right(_tiny_model(node, (2, 3), (numpy_helper.from_array(w, "w"),)), [(x, want)])


def _fill_kernel_shapes(model: Any) -> bool:
    """Add ``kernel_shape`` (from the initializer weights) to every Conv and
    ConvTranspose without one; True when something changed."""
    from onnx import helper

    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    changed = False
    for n in model.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose") or len(n.input) < 2:
            continue
        if any(a.name == "kernel_shape" for a in n.attribute) or n.input[1] not in weights:
            continue
        dims = weights[n.input[1]]
        if len(dims) >= 3:
            n.attribute.append(helper.make_attribute("kernel_shape", [int(d) for d in dims[2:]]))
            changed = True
    return changed


def _channels(model: Any) -> dict[str, int]:
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - an unusual graph: no channel counts then
        inferred = model.graph
    out: dict[str, int] = {}
    for vi in [*inferred.input, *inferred.value_info, *inferred.output]:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            out[vi.name] = int(dims[1].dim_value)
    return out


def rewrite(data: bytes, *, crd_to_dcr: bool, to_conv_transpose: bool, kernel_shapes: bool = False,
            refuse: Callable[[str], None]) -> bytes | None:
    """``data`` with its ``DepthToSpace`` nodes rewritten and (``kernel_shapes``)
    missing convolution kernel shapes filled in (see the module docstring), or
    None when nothing needed rewriting. ``refuse(why)`` is called for a node
    that needs a rewrite srzoo cannot make (unknown channel count); it raises or
    returns (the node is then left as it is)."""
    d2s = b"DepthToSpace" in data and (crd_to_dcr or to_conv_transpose)
    if not d2s and not (kernel_shapes and b"Conv" in data):
        return None
    from onnx import helper, load_from_string, numpy_helper

    model = load_from_string(data)
    graph = model.graph
    changed = _fill_kernel_shapes(model) if kernel_shapes else False
    channels = _channels(model) if d2s else {}
    nodes: list[Any] = []
    for i, n in enumerate(graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        mode = attrs.get("mode", b"DCR")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if n.op_type != "DepthToSpace" or not (to_conv_transpose or (crd_to_dcr and mode == "CRD")):
            nodes.append(n)
            continue
        b = int(attrs["blocksize"])
        cbb = channels.get(n.input[0])
        if not cbb or cbb % (b * b):
            refuse("its channel count is unknown, so srzoo cannot rewrite it")
            nodes.append(n)
            continue
        c = cbb // (b * b)
        if to_conv_transpose:
            # output (k, i, j) of each block takes DCR channel (i*b + j)*c + k, CRD k*b*b + i*b + j
            w = np.zeros((cbb, c, b, b), np.float32)
            for k in range(c):
                for p in range(b):
                    for q in range(b):
                        src = (p * b + q) * c + k if mode == "DCR" else k * b * b + p * b + q
                        w[src, k, p, q] = 1.0
            name = f"_srzoo_d2s{i}_kernel"
            graph.initializer.append(numpy_helper.from_array(w, name))
            nodes.append(helper.make_node("ConvTranspose", [n.input[0], name], list(n.output),
                                          kernel_shape=[b, b], strides=[b, b]))
            changed = True
            continue
        if c == 1:  # one output channel: CRD and DCR are the same order
            nodes.append(n)
            continue
        # DCR input channel (i*b + j)*c + k must be CRD channel k*b*b + i*b + j
        # (a one-hot 1x1 convolution: exact, and cv2.dnn's Gather mis-shapes this case)
        perm = np.zeros((cbb, cbb, 1, 1), np.float32)
        for q in range(b * b):
            for k in range(c):
                perm[q * c + k, k * b * b + q] = 1.0
        w_name = f"_srzoo_d2s{i}_order"
        graph.initializer.append(numpy_helper.from_array(perm, w_name))
        nodes += [helper.make_node("Conv", [n.input[0], w_name], [f"_srzoo_d2s{i}_dcr"], kernel_shape=[1, 1]),
                  helper.make_node("DepthToSpace", [f"_srzoo_d2s{i}_dcr"], list(n.output),
                                   blocksize=b, mode="DCR")]
        changed = True
    if not changed:
        return None
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def rewritten_for_opencv(path: Path) -> bytes | None:
    """The ONNX file made right and loadable for this cv2.dnn: CRD
    ``DepthToSpace`` reordered into DCR, every ``DepthToSpace`` a one-hot
    ``ConvTranspose`` where this build cannot run it at any size, ``Conv``
    kernel shapes filled in where it needs them; None when nothing needed
    changing. Raises :class:`srzoo.ModelLoadError` when a graph needs a rewrite
    that cannot be made."""
    data = path.read_bytes()

    def refuse(why: str) -> None:
        if cvcompat.superres_layers_registered() or not d2s_ok:
            raise ModelLoadError(f"{path}: uses DepthToSpace, which this cv2.dnn computes wrongly or "
                                 f"not at every size, and {why}")

    d2s_ok = depth_to_space_ok()
    return rewrite(data, crd_to_dcr=b"CRD" in data, to_conv_transpose=not d2s_ok,
                   kernel_shapes=not conv_kernel_shape_optional(), refuse=refuse)


__all__ = ["conv_kernel_shape_optional", "depth_to_space_ok", "rewrite", "rewritten_for_opencv"]
