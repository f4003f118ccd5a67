"""TensorFlow GraphDef (``.pb``) to ONNX without TensorFlow.

Two small parts:

* a reader for the few ``tensorflow/core/framework/*.proto`` messages a frozen
  inference graph uses (:mod:`srzoo.convert.graphdef_proto`);
* an ONNX builder (the ``onnx`` package) for the ops of the ``cv2.dnn_superres``
  families: Const, Placeholder, Identity, Conv2D, BiasAdd, Add/AddV2, Sub, Mul,
  Relu, Abs, Tanh, DepthToSpace, Transpose (ESPCN, FSRCNN, FSRCNN-small,
  LapSRN, EDSR).

The ONNX graph keeps the source's interface: the same input name and NHWC
input layout, the same output names (``NCHW_output``...). Inside, activations
are kept NCHW so every convolution is a plain ONNX ``Conv``; the graph's own
closing ``Transpose`` to NCHW then becomes an ``Identity``.

:class:`GraphDefToONNX` is registered for ``format = "tf-graphdef"``. It checks
its output itself: the ONNX (ONNX Runtime, or OpenVINO) and ``cv2.dnn`` on the
``.pb`` run the same probe image and the largest difference is recorded; above
:data:`MAX_PROBE_ERROR` the conversion fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from srzoo.convert import Conversion, register
from srzoo.convert.cvcompat import (
    classic_kw,
    quiet_opencv,
    register_superres_layers,
    tf_importer,
)
from srzoo.convert.graphdef_eval import evaluate
from srzoo.convert.graphdef_proto import GraphDefError, Node, _clean, read_graphdef
from srzoo.convert.opencv_onnx import rewritten_for_opencv
from srzoo.errors import ConversionFailed, ModelLoadError
from srzoo.hub.manifest import ModelEntry
from srzoo.hub.untrusted import guarded, read_bytes

#: largest accepted |ONNX - cv2.dnn| on the probe, in [0, 1] output units
MAX_PROBE_ERROR = 1e-4
OPSET = 17

class _Builder:
    """Translates nodes to ONNX, keeping 4-D activations NCHW.

    ``self.nchw[name]`` is True when the value of TF tensor ``name`` (logically
    NHWC) is stored NCHW in the ONNX graph.
    """

    def __init__(self, nodes: list[Node], input_name: str, outputs: list[str],
                 nchw_input: bool = False) -> None:
        from onnx import helper

        self.nchw_input = nchw_input
        self.helper = helper
        self.by_name = {n.name: n for n in nodes}
        self.input_name = input_name
        self.outputs = outputs
        self.onnx_nodes: list[Any] = []
        self.inits: list[Any] = []
        self.consts: dict[str, np.ndarray] = {}
        self.values: dict[str, str] = {}  # tf tensor -> onnx value name
        self.nchw: dict[str, bool] = {}
        self.ops: dict[str, int] = {}
        self.macs_per_pixel = 0  # multiply-adds per input pixel (convolutions)
        self._n = 0

    def _uid(self, base: str) -> str:
        self._n += 1
        return f"{base}__{self._n}"

    def _init(self, base: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._uid(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def _node(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        self.onnx_nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, name: str) -> np.ndarray | None:
        """The value of a tensor when it is a constant (through Identity nodes)."""
        name = _clean(name)
        node = self.by_name.get(name)
        while node is not None and node.op == "Identity":
            node = self.by_name.get(_clean(node.inputs[0]))
        if node is not None and node.op == "Const":
            return np.asarray(node.attrs["value"])
        return None

    def value(self, name: str) -> str:
        """The ONNX value of TF tensor ``name``, translating what it depends on first."""
        name = _clean(name)
        if name in self.values:
            return self.values[name]
        stack = [name]
        while stack:  # iterative post-order: deep graphs (LapSRN) exceed Python's recursion
            cur = stack[-1]
            if cur in self.values:
                stack.pop()
                continue
            node = self.by_name.get(cur)
            if node is None:
                raise GraphDefError(f"node {cur!r} is referenced but not defined")
            deps = [] if node.op == "Const" else [_clean(i) for i in node.inputs
                                                  if not i.startswith("^")]
            todo = [d for d in deps if d not in self.values and self.const(d) is None]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            self._translate(node)
        return self.values[name]

    def _operand(self, name: str, other_nchw: bool) -> tuple[str, bool]:
        """An elementwise operand: activations as they are, constants reshaped
        to broadcast against an NCHW activation."""
        c = self.const(name)
        if c is None:
            return self.value(name), self.nchw[_clean(name)]
        c = c.astype(np.float32)
        if other_nchw:
            if c.ndim == 4:
                c = c.transpose(0, 3, 1, 2)
            elif c.ndim >= 1 and c.size > 1:
                c = c.reshape(-1, 1, 1)
        return self._init(_clean(name), c), other_nchw

    def _translate(self, node: Node) -> None:
        op, name = node.op, node.name
        self.ops[op] = self.ops.get(op, 0) + 1
        ins = [i for i in node.inputs if not i.startswith("^")]
        if op == "Placeholder":
            if name != self.input_name:
                raise GraphDefError(f"second input {name!r} (expected only {self.input_name!r})")
            # the graph input is NHWC like the .pb's, or already NCHW (what cv2.dnn_superres feeds)
            self.values[name] = name if self.nchw_input else \
                self._node("Transpose", [name], self._uid("input_nchw"), perm=[0, 3, 1, 2])
            self.nchw[name] = True
        elif op == "Const":
            self.values[name] = self._init(name, np.asarray(node.attrs["value"]))
            self.nchw[name] = False
        elif op == "Identity":
            self.values[name] = self.values[_clean(ins[0])] if _clean(ins[0]) in self.values \
                else self.value(ins[0])
            self.nchw[name] = self.nchw.get(_clean(ins[0]), False)
        elif op == "Conv2D":
            self._conv(node, ins)
        elif op == "BiasAdd":
            b = self.const(ins[1])
            if b is None:
                raise GraphDefError(f"{name}: BiasAdd with a non-constant bias")
            x = self.value(ins[0])
            bias = self._init(_clean(ins[1]), b.astype(np.float32).reshape(-1, 1, 1))
            self.values[name] = self._node("Add", [x, bias], self._uid(name))
            self.nchw[name] = self.nchw[_clean(ins[0])]
        elif op in ("Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum", "RealDiv"):
            a_const, b_const = self.const(ins[0]) is not None, self.const(ins[1]) is not None
            if a_const and b_const:
                raise GraphDefError(f"{name}: {op} of two constants is not supported")
            ref = ins[1] if a_const else ins[0]
            layout = self.nchw[_clean(ref)] if self.value(ref) else False
            a, la = self._operand(ins[0], layout)
            b, lb = self._operand(ins[1], layout)
            if la != lb:
                raise GraphDefError(f"{name}: {op} of tensors in different layouts")
            onnx_op = {"AddV2": "Add", "Maximum": "Max", "Minimum": "Min", "RealDiv": "Div"}.get(op, op)
            self.values[name] = self._node(onnx_op, [a, b], self._uid(name))
            self.nchw[name] = layout
        elif op in ("Relu", "Abs", "Tanh", "Sigmoid", "Neg"):
            x = self.value(ins[0])
            self.values[name] = self._node(op, [x], self._uid(name))
            self.nchw[name] = self.nchw[_clean(ins[0])]
        elif op == "DepthToSpace":
            if node.attrs.get("data_format", "NHWC") != "NHWC":
                raise GraphDefError(f"{name}: DepthToSpace with data_format {node.attrs['data_format']}")
            x = self.value(ins[0])
            if not self.nchw[_clean(ins[0])]:
                raise GraphDefError(f"{name}: DepthToSpace of a tensor not in image layout")
            # TF's NHWC DepthToSpace reads channels as (i, j, c): ONNX's DCR order
            self.values[name] = self._node("DepthToSpace", [x], self._uid(name),
                                           blocksize=int(node.attrs["block_size"]), mode="DCR")
            self.nchw[name] = True
        elif op == "Transpose":
            perm = self.const(ins[1])
            if perm is None:
                raise GraphDefError(f"{name}: Transpose with a non-constant permutation")
            perm = [int(p) for p in perm.reshape(-1)]
            x = self.value(ins[0])
            stored = [0, 3, 1, 2] if self.nchw[_clean(ins[0])] else [0, 1, 2, 3]
            inv = [stored.index(i) for i in range(4)]  # logical axis -> stored axis
            q = [inv[p] for p in perm]
            if q == [0, 1, 2, 3]:
                self.values[name] = self._node("Identity", [x], self._uid(name))
            else:
                self.values[name] = self._node("Transpose", [x], self._uid(name), perm=q)
            self.nchw[name] = False  # stored exactly as the graph's tensor
        else:
            raise GraphDefError(f"unsupported op {op} (node {name!r}); this converter handles the "
                                "dnn_superres families (ESPCN, FSRCNN, LapSRN, EDSR)")

    def _conv(self, node: Node, ins: list[str]) -> None:
        a = node.attrs
        if a.get("data_format", "NHWC") != "NHWC":
            raise GraphDefError(f"{node.name}: Conv2D with data_format {a['data_format']}")
        w = self.const(ins[1])
        if w is None:
            raise GraphDefError(f"{node.name}: Conv2D with non-constant weights")
        x = self.value(ins[0])
        if not self.nchw[_clean(ins[0])]:
            raise GraphDefError(f"{node.name}: Conv2D of a tensor not in image layout")
        kh, kw, cin, cout = w.shape
        strides = list(a.get("strides", [1, 1, 1, 1]))[1:3]
        dil = list(a.get("dilations", [1, 1, 1, 1]))[1:3]
        pad = a.get("padding", "SAME")
        attrs: dict[str, Any] = {"kernel_shape": [kh, kw], "strides": strides, "dilations": dil}
        if pad == "SAME":
            if strides != [1, 1]:
                attrs["auto_pad"] = "SAME_UPPER"
            else:  # explicit pads: the same as TF's SAME (extra pixel at the end)
                ph, pw = dil[0] * (kh - 1), dil[1] * (kw - 1)
                attrs["pads"] = [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]
        elif pad != "VALID":
            raise GraphDefError(f"{node.name}: Conv2D padding {pad!r}")
        wt = self._init(_clean(ins[1]), w.astype(np.float32).transpose(3, 2, 0, 1))
        self.values[node.name] = self._node("Conv", [x, wt], self._uid(node.name), **attrs)
        self.nchw[node.name] = True
        self._macs.append((kh * kw * cin * cout, node.name))

    def build(self) -> Any:
        from onnx import TensorProto, helper

        self._macs: list[tuple[int, str]] = []
        outs = []
        for o in self.outputs:
            v = self.value(o)
            if self.nchw[_clean(o)] and not self.nchw_input:  # an image-layout output: the graph's NHWC
                v = self._node("Transpose", [v], self._uid(o), perm=[0, 2, 3, 1])
            self.onnx_nodes.append(helper.make_node("Identity", [v], [o], name=f"{o}__out"))
            outs.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, ["n", "d1", "d2", "d3"]))
        inp_node = self.by_name[self.input_name]
        shape = inp_node.attrs.get("shape") or [1, -1, -1, 1]
        channels = shape[3] if len(shape) == 4 and shape[3] > 0 else 1
        dims: list[Any] = [1, int(channels), "height", "width"] if self.nchw_input else \
            [1, "height", "width", int(channels)]
        inp = helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT, dims)
        graph = helper.make_graph(self.onnx_nodes, "srzoo_graphdef", [inp], outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="srzoo.convert.graphdef")
        model.ir_version = 8
        return model


def graphdef_to_onnx(data: bytes, input_name: str | None = None, outputs: list[str] | None = None,
                     input_layout: str = "nhwc") -> tuple[bytes, dict[str, Any]]:
    """ONNX bytes for a frozen GraphDef, and facts about it (ops, parameters,
    multiply-adds per input pixel of the convolutions at stride 1).

    ``input_name``: the Placeholder (default: the only one); ``outputs``: the
    tensors to expose (default: nodes nothing else consumes); ``input_layout``:
    ``nhwc`` keeps the ``.pb``'s interface, ``nchw`` takes an NCHW input and
    gives image-layout outputs NCHW too (what OpenCV 5.1's ``dnn_superres``
    feeds and reads for EDSR: ``io.export_layout``).
    """
    nodes = read_graphdef(data)
    placeholders = [n.name for n in nodes if n.op == "Placeholder"]
    if input_name is None:
        if len(placeholders) != 1:
            raise GraphDefError(f"expected one Placeholder, found {placeholders}")
        input_name = placeholders[0]
    elif input_name not in placeholders:
        raise GraphDefError(f"no input {input_name!r} (placeholders: {', '.join(placeholders)})")
    if not outputs:
        used = {_clean(i) for n in nodes for i in n.inputs}
        outputs = [n.name for n in nodes if n.name not in used and n.op not in ("Const", "Placeholder")]
    if input_layout not in ("nhwc", "nchw"):
        raise GraphDefError(f"input_layout must be 'nhwc' or 'nchw', not {input_layout!r}")
    b = _Builder(nodes, input_name, list(outputs), nchw_input=input_layout == "nchw")
    model = b.build()
    import onnx

    onnx.checker.check_model(model)
    params = int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
    info = {"opset": OPSET, "tf_ops": dict(sorted(b.ops.items())), "params": params,
            "conv_macs_per_pixel": _macs_per_input_pixel(b), "input": input_name,
            "input_layout": input_layout, "outputs": list(outputs)}
    return model.SerializeToString(), info


def _macs_per_input_pixel(b: _Builder) -> int:
    """Multiply-adds per input pixel, from each conv's resolution relative to
    the input (found by DepthToSpace steps before it)."""
    # resolution factor of each tensor relative to the input (area ratio)
    factor: dict[str, int] = {}

    def area(name: str) -> int:
        name = _clean(name)
        if name in factor:
            return factor[name]
        stack = [name]
        while stack:
            cur = stack[-1]
            node = b.by_name[cur]
            deps = [_clean(i) for i in node.inputs if not i.startswith("^")
                    and b.const(i) is None] if node.op not in ("Const", "Placeholder") else []
            todo = [d for d in deps if d not in factor]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            f = max([factor[d] for d in deps], default=1)
            if node.op == "DepthToSpace":
                f *= int(node.attrs["block_size"]) ** 2
            factor[cur] = f
        return factor[name]

    return int(sum(m * area(n) for m, n in b._macs))


# --------------------------------------------------------------------------- converter
def _probe_image(entry: "ModelEntry") -> np.ndarray:
    """A deterministic 48x40 probe in the network's input units."""
    rng = np.random.default_rng(20240)
    ch = 1 if entry.io.color == "y" else 3
    img = rng.random((40, 48, ch), dtype=np.float32)
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float32)
    img = 0.5 * img + 0.25 * (1 + np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None])
    img = img * np.float32(entry.io.range)
    if entry.io.color != "y":
        mean = np.asarray(entry.io.mean if len(entry.io.mean) == 3 else list(entry.io.mean) * 3,
                          np.float32)
        img = img - mean
    return img.astype(np.float32)


def _reference_cv2(pb: Path, x: np.ndarray, outputs: list[str]) -> tuple[list[np.ndarray], str]:
    """cv2.dnn on the .pb itself (the classic engine where OpenCV 5.0 has a choice)."""
    import cv2

    register_superres_layers()
    with quiet_opencv():
        net = cv2.dnn.readNetFromTensorflow(str(pb), **classic_kw())
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        net.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        ref = net.forward(outputs) if len(outputs) > 1 else [net.forward(outputs[0])]
    return list(ref), f"cv2.dnn {cv2.__version__} on the .pb"


def _reference_numpy(pb: Path, x: np.ndarray, outputs: list[str],
                     input_name: str) -> tuple[list[np.ndarray], str]:
    """srzoo's NumPy evaluation of the GraphDef (TF semantics); the outputs of
    these graphs are already NCHW (their own closing ``Transpose``)."""

    vals = evaluate(read_graphdef(Path(pb).read_bytes()), {input_name: x[None]}, outputs)
    return vals, "srzoo's NumPy evaluation of the .pb (this OpenCV has no TensorFlow importer)"


def probe_error(pb: Path, onnx_bytes: bytes, entry: "ModelEntry", outputs: list[str],
                input_name: str, input_layout: str = "nhwc") -> tuple[float, str]:
    """Largest |ONNX - reference on the .pb| on the probe, in [0, 1] output units.

    The reference is ``cv2.dnn`` on the ``.pb`` where this OpenCV still reads
    TensorFlow graphs, else :mod:`srzoo.convert.graphdef_eval` (OpenCV 5.1 and
    later): never the ONNX being checked.
    """
    x = _probe_image(entry)

    if tf_importer():
        ref, what = _reference_cv2(pb, x, outputs)
    else:
        ref, what = _reference_numpy(pb, x, outputs, input_name)
    feed = x[None] if input_layout == "nhwc" else np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    got, used = _run_onnx(onnx_bytes, input_name, feed, outputs)
    err = 0.0
    for r, g in zip(ref, got):
        if r.shape != g.shape and g.ndim == 4 and g.transpose(0, 3, 1, 2).shape == r.shape:
            g = g.transpose(0, 3, 1, 2)  # an NHWC graph output: the reference gives NCHW
        elif r.shape != g.shape and r.ndim == 4 and r.transpose(0, 3, 1, 2).shape == g.shape:
            r = r.transpose(0, 3, 1, 2)  # an NCHW output (export layout) against the graph's NHWC
        if r.shape != g.shape:
            raise GraphDefError(f"probe output shape {g.shape} differs from the reference's {r.shape}")
        err = max(err, float(np.max(np.abs(r.astype(np.float64) - g))) / float(entry.io.range))
    return err, f"{what} (ONNX run with {used})"


def _run_onnx(onnx_bytes: bytes, input_name: str, x: np.ndarray,
              outputs: list[str]) -> tuple[list[np.ndarray], str]:
    try:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
        return sess.run(outputs, {input_name: x}), f"onnxruntime {ort.__version__}"
    except ImportError:
        pass
    try:
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(onnx_bytes), "CPU",
                                      {"INFERENCE_PRECISION_HINT": "f32"})
        res = compiled({input_name: x})
        return [res[compiled.output(o)] for o in outputs], f"openvino {ov.__version__}"
    except ImportError:
        pass
    import tempfile

    import cv2

    with tempfile.TemporaryDirectory(prefix="srzoo-probe-") as tmp:
        path = Path(tmp) / "model.onnx"  # from a file: OpenCV 5.1 reads no ONNX buffer
        path.write_bytes(onnx_bytes)
        fixed = rewritten_for_opencv(path)  # what the opencv engine would load
        if fixed is not None:
            path.write_bytes(fixed)
        with quiet_opencv():
            net = cv2.dnn.readNetFromONNX(str(path), **classic_kw())
            net.setInput(x, input_name)
            return list(net.forward(outputs)), f"cv2.dnn {cv2.__version__} (ONNX)"


class GraphDefToONNX:
    """``tf-graphdef`` -> ONNX with srzoo's own reader (no TensorFlow)."""

    name = "graphdef-onnx"
    version = "1"
    source_formats = frozenset({"tf-graphdef"})

    @guarded("TensorFlow GraphDef")
    def convert(self, source: Path, entry: "ModelEntry", options: dict[str, Any]) -> Conversion:
        import onnx

        data = read_bytes(source, "TensorFlow GraphDef")
        input_name = entry.io.input
        outputs = list(entry.io.outputs) or None
        try:
            read_graphdef(data)
        except GraphDefError as e:
            scale = f" --scale {entry.scale}" if entry.scale is not None else ""
            raise ModelLoadError(f"{source}: cannot load {entry.name} x{entry.scale} as tf-graphdef "
                                 f"({e}); the file may be corrupt or truncated: run "
                                 f"'srzoo fetch {entry.name}{scale} --force'") from None
        layout = str(options.get("input_layout", "nhwc"))
        try:
            onnx_bytes, info = graphdef_to_onnx(data, input_name, outputs, input_layout=layout)
        except GraphDefError as e:
            raise ConversionFailed(f"{source}: cannot convert {entry.name} x{entry.scale} to ONNX: "
                                   f"{e}") from None
        outs = info["outputs"]
        try:
            err, against = probe_error(Path(source), onnx_bytes, entry, outs, info["input"], layout)
        except GraphDefError as e:
            raise ConversionFailed(f"{source}: cannot check the ONNX conversion of {entry.name} "
                                   f"x{entry.scale}: {e}") from None
        if not err <= MAX_PROBE_ERROR:
            raise ConversionFailed(f"{source}: the ONNX conversion of {entry.name} x{entry.scale} "
                                   f"differs from {against} by {err:.3g} (limit {MAX_PROBE_ERROR}); "
                                   "please report it")
        tools = {"onnx": onnx.__version__}
        return Conversion(onnx=onnx_bytes, info=info, probe_error=err, checked_against=against,
                          tools=tools)


register(GraphDefToONNX())

__all__ = ["GraphDefError", "GraphDefToONNX", "MAX_PROBE_ERROR", "Node", "graphdef_to_onnx",
           "read_graphdef"]
