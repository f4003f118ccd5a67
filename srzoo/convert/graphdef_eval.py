"""A NumPy evaluator of the GraphDef ops the dnn_superres families use.

The check of :class:`~srzoo.convert.graphdef.GraphDefToONNX` needs a
reference for the ``.pb`` that does not go through the ONNX it just built.
Where the installed OpenCV still has its TensorFlow importer (4.x, 5.0), that
reference is ``cv2.dnn`` on the ``.pb``. OpenCV 5.1 removed the importer, so
this module computes the graph itself, op by op, with TensorFlow's own
semantics (NHWC tensors, ``SAME`` padding with the extra pixel at the end,
``DepthToSpace`` in TF's channel order): an implementation that shares nothing
with the ONNX translation but the file reader.

Only small probe images are meant to run here (tens of pixels a side). Memory
is bounded by the activations: a convolution is a sum of one matrix product
per kernel tap, never an im2col copy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from srzoo.convert.graphdef_proto import GraphDefError, Node, _clean

#: largest activation (elements) the evaluator will hold, ~256 MB of float32
MAX_ELEMENTS = 64 << 20


def _conv2d(x: np.ndarray, w: np.ndarray, attrs: dict) -> np.ndarray:
    """TF ``Conv2D`` (NHWC input, HWIO weights); float32 products summed in float64."""
    if attrs.get("data_format", "NHWC") not in ("NHWC", b"NHWC"):
        raise GraphDefError(f"Conv2D with data_format {attrs['data_format']}")
    if w.ndim != 4 or x.ndim != 4 or w.shape[2] != x.shape[3]:
        raise GraphDefError(f"Conv2D of {x.shape} with weights {w.shape}")
    kh, kw, _, cout = w.shape
    sh, sw = (list(attrs.get("strides", [1, 1, 1, 1])) + [1, 1, 1, 1])[1:3]
    dh, dw = (list(attrs.get("dilations", [1, 1, 1, 1])) + [1, 1, 1, 1])[1:3]
    n, h, wd, _ = x.shape
    pad = attrs.get("padding", "SAME")
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if pad == "SAME":
        oh, ow = -(-h // sh), -(-wd // sw)
        ph = max((oh - 1) * sh + ekh - h, 0)
        pw = max((ow - 1) * sw + ekw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    elif pad == "VALID":
        oh, ow = (h - ekh) // sh + 1, (wd - ekw) // sw + 1
    else:
        raise GraphDefError(f"Conv2D padding {pad!r}")
    if oh < 1 or ow < 1 or n * oh * ow * cout > MAX_ELEMENTS:
        raise GraphDefError(f"Conv2D output {n}x{oh}x{ow}x{cout} is empty or too large to check")
    out = np.zeros((n, oh, ow, cout), np.float64)
    for i in range(kh):
        for j in range(kw):
            tap = x[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
            out += tap.astype(np.float32) @ w[i, j].astype(np.float32)
    return out


def _depth_to_space(x: np.ndarray, attrs: dict) -> np.ndarray:
    """TF ``DepthToSpace`` (NHWC): output pixel (i, j) of a block takes channels
    ``(i * b + j) * c ... + c``."""
    if attrs.get("data_format", "NHWC") not in ("NHWC", b"NHWC"):
        raise GraphDefError(f"DepthToSpace with data_format {attrs['data_format']}")
    b = int(attrs["block_size"])
    n, h, w, cbb = x.shape
    if b < 1 or cbb % (b * b):
        raise GraphDefError(f"DepthToSpace of {cbb} channels with block size {b}")
    c = cbb // (b * b)
    return x.reshape(n, h, w, b, b, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c)


_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Relu": lambda a: np.maximum(a, 0), "Abs": np.abs, "Tanh": np.tanh, "Neg": np.negative,
    "Sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add, "AddV2": np.add, "BiasAdd": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Maximum": np.maximum, "Minimum": np.minimum, "RealDiv": np.divide,
}


def evaluate(nodes: list[Node], feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    """The values (float64, the graph's own NHWC layout) of ``outputs`` when the
    placeholders are fed ``feeds``; evaluated in dependency order without
    recursion, each node once."""
    by_name = {n.name: n for n in nodes}
    values: dict[str, np.ndarray] = {}
    for want in outputs:
        stack = [_clean(want)]
        while stack:
            cur = stack[-1]
            if cur in values:
                stack.pop()
                continue
            node = by_name.get(cur)
            if node is None:
                raise GraphDefError(f"node {cur!r} is referenced but not defined")
            ins = [_clean(i) for i in node.inputs if not i.startswith("^")]
            todo = [i for i in ins if i not in values] if node.op not in ("Const", "Placeholder") else []
            if todo:
                if len(stack) > len(by_name):
                    raise GraphDefError(f"the graph has a cycle through {cur!r}")
                stack.extend(todo)
                continue
            stack.pop()
            values[cur] = _op(node, [values[i] for i in ins] if node.op not in ("Const", "Placeholder")
                              else [], feeds)
    return [values[_clean(o)] for o in outputs]


def _op(node: Node, args: list[np.ndarray], feeds: dict[str, np.ndarray]) -> np.ndarray:
    op = node.op
    if op == "Placeholder":
        if node.name not in feeds:
            raise GraphDefError(f"no value fed for input {node.name!r}")
        return np.asarray(feeds[node.name], np.float64)
    if op == "Const":
        return np.asarray(node.attrs["value"])
    if op == "Identity":
        return args[0]
    if op == "Conv2D":
        return _conv2d(args[0], np.asarray(args[1], np.float64), node.attrs)
    if op in _BINARY:
        a, b = (np.asarray(v, np.float64) for v in args[:2])
        return _BINARY[op](a, b)
    if op in _UNARY:
        return _UNARY[op](np.asarray(args[0], np.float64))
    if op == "DepthToSpace":
        return _depth_to_space(args[0], node.attrs)
    if op == "Transpose":
        return np.transpose(args[0], [int(p) for p in np.asarray(args[1]).reshape(-1)])
    raise GraphDefError(f"unsupported op {op} (node {node.name!r}); the reference evaluator handles "
                        "the dnn_superres families (ESPCN, FSRCNN, LapSRN, EDSR)")


__all__ = ["MAX_ELEMENTS", "evaluate"]
