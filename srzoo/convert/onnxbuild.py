"""Emit ONNX graphs with a few deterministic helpers over the ``onnx`` package.

Architectures (:mod:`srzoo.convert.arch`) describe their forward pass once,
against the small set of operations below; :class:`Graph` turns each call
into ONNX nodes, while :mod:`srzoo.convert.reference` runs the same calls
eagerly in PyTorch or numpy to check the result. Every converted graph takes
one NCHW float input ``input`` and gives one output ``output``, both in
[0, 1] (any range or mean of the original network is folded in).

Names are numbered in call order and nothing depends on time or hashing
order, so the same weights give the same bytes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from srzoo.errors import SrzooError
from srzoo.resample import cubic_kernel

OPSET = 17
#: the opset of graphs that use :meth:`Graph.resize_bilinear_like` (see there)
OPSET_RESIZE_LIKE = 12
PRODUCER = "srzoo"

#: elementwise operators that cv2.dnn 4.x imports as one ``NaryEltwise`` layer
#: when two or more of their inputs are computed tensors (not initializers)
_NARY = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow"})


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise SrzooError("converting needs the onnx package: pip install 'srzoo[convert]'") from None
    return onnx


class Graph:
    """An ONNX graph under construction; values are tensor names (str)."""

    def __init__(self, name: str = "srzoo", opset: int = OPSET) -> None:
        self.onnx = _onnx()
        self.name = name
        self.opset = int(opset)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0
        self.params = 0
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.consts: set[str] = set()
        # tensors computed through an _NARY op on two computed tensors (see cat), and
        # the same-valued Max(x, x) already emitted for other tensors
        self.nary: set[str] = set()
        self._as_nary: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------
    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def const(self, value: Any, kind: str = "c", count: bool = False) -> str:
        arr = np.ascontiguousarray(value)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        name = self._id(kind)
        self.consts.add(name)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        if count:
            self.params += int(arr.size)
        return name

    def const_node(self, value: Any) -> str:
        """A ``Constant`` node (not an initializer), for patterns that importers match node by node."""
        arr = np.array(value)  # (np.ascontiguousarray would make a 0-d index 1-d)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        name = self._id("const")
        tensor = self.onnx.numpy_helper.from_array(arr, name + "_value")
        self.nodes.append(self.onnx.helper.make_node("Constant", [], [name], name=name, value=tensor))
        self.consts.add(name)
        return name

    def node(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        out = self._id(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        computed = [i for i in inputs if i and i not in self.consts]
        if any(i in self.nary for i in computed) or (op in _NARY and len(computed) >= 2):
            self.nary.add(out)
        return out

    def input(self, channels: int, name: str = "input") -> str:
        t = self.onnx.TensorProto.FLOAT
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, t, [1, channels, "height", "width"]))
        return name

    def finish(self, x: str, channels: int, name: str = "output") -> bytes:
        """Name ``x`` the output and return the serialized model."""
        h = self.onnx.helper
        self.nodes.append(h.make_node("Identity", [x], [name], name="output_identity"))
        t = self.onnx.TensorProto.FLOAT
        self.outputs.append(h.make_tensor_value_info(name, t, [1, channels, "out_height", "out_width"]))
        graph = h.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        model = h.make_model(graph, producer_name=PRODUCER, opset_imports=[h.make_opsetid("", self.opset)])
        model.ir_version = 8
        self.onnx.checker.check_model(model)
        return model.SerializeToString()

    # -- operations (the same names as srzoo.convert.reference) -------------
    def conv(self, x: str, w: np.ndarray, b: np.ndarray | None = None, *, stride: int = 1,
             pad: int | None = None, groups: int = 1) -> str:
        # pad None: "same" for odd kernels, also rectangular ones (kh//2 rows, kw//2 columns)
        ph, pw = (int(w.shape[2]) // 2, int(w.shape[3]) // 2) if pad is None else (pad, pad)
        ins = [x, self.const(w, "w", True)] + ([self.const(b, "b", True)] if b is not None else [])
        return self.node("Conv", ins, kernel_shape=[int(w.shape[2]), int(w.shape[3])],
                         strides=[stride, stride], pads=[ph, pw, ph, pw], group=groups)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def lrelu(self, x: str, alpha: float) -> str:
        return self.node("LeakyRelu", [x], alpha=float(alpha))

    def prelu(self, x: str, slope: np.ndarray) -> str:
        s = np.asarray(slope, np.float32).reshape(-1, 1, 1)
        return self.node("PRelu", [x, self.const(s, "slope", True)])

    def sigmoid(self, x: str) -> str:
        return self.node("Sigmoid", [x])

    def tanh(self, x: str) -> str:
        return self.node("Tanh", [x])

    def gelu(self, x: str) -> str:
        """torch's exact GELU, ``x/2 * (1 + erf(x/sqrt 2))``."""
        e = self.node("Erf", [self.node("Mul", [x, self.const(np.float32(1 / math.sqrt(2)), "k")])])
        return self.node("Mul", [self.node("Mul", [x, self.const(np.float32(0.5), "k")]),
                                 self.node("Add", [e, self.const(np.float32(1.0), "k")])])

    def mish(self, x: str) -> str:
        """``x * tanh(softplus(x))`` (ONNX ``Mish`` needs opset 18)."""
        return self.node("Mul", [x, self.node("Tanh", [self.node("Softplus", [x])])])

    def channels(self, x: str, lo: int, hi: int) -> str:
        """Channels ``lo`` .. ``hi - 1`` of ``x``."""
        return self.node("Slice", [x, self.const(np.array([lo], np.int64), "lo"),
                                   self.const(np.array([hi], np.int64), "hi"),
                                   self.const(np.array([1], np.int64), "axes")])

    def layer_norm_channels(self, x: str, w: np.ndarray, b: np.ndarray, eps: float) -> str:
        """Normalise every pixel over its channels (a channels-first LayerNorm):
        ``(x - mean) / sqrt(var + eps) * w + b``, the biased variance."""
        d = self.node("Sub", [x, self.node("ReduceMean", [x], axes=[1], keepdims=1)])
        var = self.node("ReduceMean", [self.node("Mul", [d, d])], axes=[1], keepdims=1)
        sd = self.node("Sqrt", [self.node("Add", [var, self.const(np.float32(eps), "eps")])])
        return self.affine(self.node("Div", [d, sd]), np.asarray(w, np.float32), np.asarray(b, np.float32))

    def group_norm(self, x: str, groups: int, w: np.ndarray, b: np.ndarray, eps: float) -> str:
        """torch's GroupNorm: statistics over each group of channels and all pixels.

        Emitted without reshapes (every runtime, and static shapes): per-channel means
        over the pixels (``ReduceMean``), then a 1x1 convolution with the group-averaging
        matrix gives each channel its group's mean; the variance likewise on the centred
        values."""
        c = int(np.asarray(w).size)
        avg = np.kron(np.eye(groups), np.full((c // groups, c // groups), groups / c))
        avg = avg.astype(np.float32).reshape(c, c, 1, 1)
        a = self.const(avg, "groupavg")

        def group_mean(t: str) -> str:
            return self.node("Conv", [self.node("ReduceMean", [t], axes=[2, 3], keepdims=1), a],
                             kernel_shape=[1, 1])
        d = self.node("Sub", [x, group_mean(x)])
        var = group_mean(self.node("Mul", [d, d]))
        sd = self.node("Sqrt", [self.node("Add", [var, self.const(np.float32(eps), "eps")])])
        return self.affine(self.node("Div", [d, sd]), np.asarray(w, np.float32), np.asarray(b, np.float32))

    def dysample(self, x: str, offset: str, r: int, groups: int, channels: int) -> str:
        """DySample's resampling (Liu et al. 2023): ``x`` (``channels`` channels in ``groups``
        groups) upsampled by ``r``, output pixel ``(r*i + a, r*j + b)`` of group ``g`` read
        bilinearly (edges repeated) at ``(i + dy, j + dx)`` where ``offset`` (channels
        ``[dx for g, a, b]`` then ``[dy ...]``, at the input's size) holds ``dx``, ``dy``.

        As GridSample (opset 16, bilinear, border, align_corners 0) on the grid torch's
        DySample builds, ``2 * (index + 0.5 + offset) / size - 1`` after a pixel shuffle; the
        pixel centres and the size come from ``CumSum`` over ones, so no shape is computed."""
        n = groups * r * r
        ones = self.node("Add", [self.node("Mul", [self.channels(x, 0, 1), self.const(np.float32(0), "k")]),
                                 self.const(np.float32(1), "k")])  # (1, 1, H, W)
        grid = []
        for k, axis in enumerate((3, 2)):  # x (width) first, then y
            ax = self.const(np.array(axis, np.int64), "axis")
            centre = self.node("Sub", [self.node("CumSum", [ones, ax]), self.const(np.float32(0.5), "k")])
            size = self.node("ReduceSum", [ones, self.const(np.array([axis], np.int64), "axes")], keepdims=1)
            pos = self.node("Add", [centre, self.channels(offset, k * n, (k + 1) * n)])
            g = self.node("Sub", [self.node("Div", [self.node("Mul", [pos, self.const(np.float32(2), "k")]), size]),
                                  self.const(np.float32(1), "k")])
            g = self.pixel_shuffle(g, r, channels=n)  # (1, groups, rH, rW)
            grid.append(self.node("Unsqueeze", [g, self.const(np.array([4], np.int64), "axes")]))
        grid5 = self.node("Concat", grid, axis=4)  # (1, groups, rH, rW, 2)
        grid4 = self.node("Squeeze", [grid5, self.const(np.array([0], np.int64), "axes")])
        xg = self.node("Reshape", [x, self.const(np.array([groups, channels // groups, 0, 0], np.int64), "shape")])
        y = self.node("GridSample", [xg, grid4], mode="bilinear", padding_mode="border", align_corners=0)
        return self.node("Reshape", [y, self.const(np.array([1, channels, 0, 0], np.int64), "shape")])

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.node("Mul", [a, b])

    def affine(self, x: str, mul: float | np.ndarray = 1.0, add: float | np.ndarray = 0.0) -> str:
        """``x * mul + add`` with constants (scalars or per channel)."""
        def c(v: Any) -> str:
            a = np.asarray(v, np.float32)
            return self.const(a.reshape(-1, 1, 1) if a.ndim == 1 else a, "k")
        if not np.all(np.asarray(mul) == 1.0):
            x = self.node("Mul", [x, c(mul)])
        if not np.all(np.asarray(add) == 0.0):
            x = self.node("Add", [x, c(add)])
        return x

    def cat(self, xs: Sequence[str]) -> str:
        """Concatenate on channels.

        cv2.dnn 4.x infers every shape once while importing, with each symbolic
        dimension (``height``, ``width``) taken as 0; its ``NaryEltwise`` layer
        (an Add, Mul, ... of two computed tensors) reports such a dimension as 1
        (its broadcast starts from 1), every other layer keeps 0. A Concat that
        joins a tensor computed through such an op with one that was not (CARN's
        and RFDN's residual branches next to a plain convolution) then sees
        ``[1, C, 1, 1]`` beside ``[1, C, 0, 0]`` and the import fails with
        "Inconsistent shape for ConcatLayer". Here the latter inputs go through
        ``Max(x, x)`` (exactly x, once per tensor), so every input of the Concat
        has come through an NaryEltwise; graphs without such a mix are unchanged.
        """
        xs = list(xs)
        if any(x in self.nary for x in xs):
            xs = [x if x in self.nary else self._through_nary(x) for x in xs]
        return self.node("Concat", xs, axis=1)

    def _through_nary(self, x: str) -> str:
        if x not in self._as_nary:
            self._as_nary[x] = self.node("Max", [x, x])
        return self._as_nary[x]

    def pixel_shuffle(self, x: str, r: int, mode: str = "CRD", channels: int | None = None) -> str:
        """torch's pixel_shuffle (``CRD``) or TensorFlow's depth_to_space (``DCR``).

        Emitted as a stride-r ConvTranspose with a one-hot kernel (exact), not as
        ``DepthToSpace``: cv2.dnn_superres registers a process-wide custom layer
        of that name which then replaces the ONNX operator in every later import.
        ``channels``: input channels (C*r*r), needed for the kernel.
        """
        if channels is None:
            raise ValueError("pixel_shuffle in a graph needs the input channel count")
        r = int(r)
        c = channels // (r * r)
        if mode == "CRD":  # output channel k takes inputs k*r*r .. k*r*r + r*r - 1: one group each
            w = np.zeros((channels, 1, r, r), np.float32)
            for k in range(c):
                for i in range(r):
                    for j in range(r):
                        w[k * r * r + i * r + j, 0, i, j] = 1.0
            groups = c
        else:  # DCR: output channel k takes inputs (i*r + j)*c + k
            w = np.zeros((channels, c, r, r), np.float32)
            for k in range(c):
                for i in range(r):
                    for j in range(r):
                        w[(i * r + j) * c + k, k, i, j] = 1.0
            groups = 1
        return self.node("ConvTranspose", [x, self.const(w, "shuffle")], kernel_shape=[r, r], strides=[r, r],
                         group=groups)

    def pad_reflect(self, x: str, p: int) -> str:
        pads = self.const(np.array([0, 0, p, p, 0, 0, p, p], np.int64), "pads")
        return self.node("Pad", [x, pads], mode="reflect")

    def pixel_unshuffle(self, x: str, r: int, channels: int) -> str:
        """torch's pixel_unshuffle as a stride-r convolution with a one-hot kernel (exact)."""
        w = np.zeros((channels * r * r, channels, r, r), np.float32)
        for c in range(channels):
            for i in range(r):
                for j in range(r):
                    w[c * r * r + i * r + j, c, i, j] = 1.0
        ins = [x, self.const(w, "unshuffle")]
        return self.node("Conv", ins, kernel_shape=[r, r], strides=[r, r], pads=[0, 0, 0, 0])

    # -- shifted windows (srzoo.convert.arch._swin; the token and window operations are below)
    def roll(self, x: str, sh: int, sw: int) -> str:
        """torch.roll over H (by ``sh``) and W (by ``sw``): two Slices and a Concat per axis."""
        for axis, s in ((2, int(sh)), (3, int(sw))):
            if s == 0:
                continue
            ax = self._i64([axis])
            big = np.iinfo(np.int64).max
            tail = self.node("Slice", [x, self._i64([-s]), self._i64([big]), ax])
            head = self.node("Slice", [x, self._i64([0]), self._i64([-s]), ax])
            x = self.node("Concat", [tail, head], axis=axis)
        return x

    def ramp(self, like: str, axis: int, reverse: bool = False) -> str:
        """(B, 1, H, W): 1, 2, ... n along ``axis`` (2 or 3) of ``like``, or n ... 1 with
        ``reverse`` (CumSum over ones; srzoo.convert.arch._swin's shifted-window masks)."""
        ones = self.node("Add", [self.node("Mul", [self.channels(like, 0, 1), self.const(np.float32(0), "k")]),
                                 self.const(np.float32(1), "k")])
        return self.node("CumSum", [ones, self.const(np.array(axis, np.int64), "axis")], reverse=int(reverse))

    def _roi(self) -> str:
        """Resize's unused ``roi``: may be left out from opset 13 on, an empty tensor before."""
        return "" if self.opset >= 13 else self.const(np.zeros(0, np.float32), "roi")

    def up_nearest(self, x: str, r: int) -> str:
        scales = self.const(np.array([1, 1, r, r], np.float32), "scales")
        return self.node("Resize", [x, self._roi(), scales], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def resize(self, x: str, s: float, mode: str) -> str:
        """Resize by ``s`` (``linear`` or ``cubic``, a=-0.75, half-pixel: PyTorch/ncnn conventions)."""
        scales = self.const(np.array([1, 1, s, s], np.float32), "scales")
        extra = {"cubic_coeff_a": -0.75} if mode == "cubic" else {}
        return self.node("Resize", [x, self._roi(), scales], mode=mode,
                         coordinate_transformation_mode="half_pixel", **extra)

    def resize_cubic_rational(self, x: str, p: int, q: int, channels: int) -> str:
        """:meth:`resize` ``cubic`` by ``p/q`` as exact convolutions, for inputs whose height and
        width are multiples of ``q`` (the caller must know that; elsewhere the sizes differ).

        cv2.dnn 4.x cannot import a cubic ``Resize`` (only nearest and bilinear). With half-pixel
        coordinates, output index ``i = p*k + j`` samples input coordinate ``q*k + c_j``,
        ``c_j = (j + 0.5) * q / p - 0.5``: each of the ``p`` phases is a fixed 4-tap cubic filter
        (a=-0.75) at stride ``q``, and clamping at the borders (``exclude_outside=0``) is an edge
        Pad. Emitted as: ``Pad`` mode edge by the taps that reach past a border, one depthwise
        ``Conv`` (stride ``q``, kernel the union of the taps, ``p*p`` outputs per channel: the outer
        products of the phase filters) and :meth:`pixel_shuffle` by ``p`` to interleave the phases.
        """
        from fractions import Fraction

        p, q, channels = int(p), int(q), int(channels)

        def w(d: Fraction) -> float:
            return float(cubic_kernel(float(d), a=-0.75))

        taps = []  # per phase: {offset from q*k: weight}
        for j in range(p):
            c = (Fraction(2 * j + 1) * q / p - 1) / 2
            f = math.floor(c)
            taps.append({f + m: w(c - (f + m)) for m in (-1, 0, 1, 2)})
        lo = min(0, min(min(t) for t in taps))
        hi = max(0, max(max(t) for t in taps))
        k = hi - lo + 1
        filt = np.zeros((p, k), np.float64)
        for j, t in enumerate(taps):
            for off, v in t.items():
                filt[j, off - lo] = v
        before, after = -lo, max(0, hi - q + 1)
        if before or after:
            pads = self.const(np.array([0, 0, before, before, 0, 0, after, after], np.int64), "pads")
            x = self.node("Pad", [x, pads], mode="edge")
        kern = np.einsum("ik,jl->ijkl", filt, filt).reshape(p * p, 1, k, k)
        wt = np.tile(kern, (channels, 1, 1, 1)).astype(np.float32)  # channel ch: outputs ch*p*p + i*p + j
        y = self.node("Conv", [x, self.const(wt, "cubic")], kernel_shape=[k, k], strides=[q, q],
                      pads=[0, 0, 0, 0], group=channels)
        return y if p == 1 else self.pixel_shuffle(y, p, "CRD", channels=channels * p * p)

    def maxpool(self, x: str, k: int, stride: int) -> str:
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride])

    def resize_bilinear_like(self, x: str, ref: str) -> str:
        """Bilinear resize of ``x`` to the height and width of ``ref`` (align_corners=False).

        cv2.dnn 4.x computes no shapes at run time: it folds ``Shape`` while
        importing, and refuses to when the height and width are symbolic, so a
        plain ``Shape -> Concat -> Resize(sizes)`` cannot load there. What it does
        run is the subgraph torch.onnx (opset 11/12) writes for
        ``F.interpolate(x, size=ref.shape[2:])``, which its importer matches node
        for node (``ResizeSubgraph3``) and replaces by one resize to ``ref``'s
        size. That is what is emitted here: ``Shape``, ``Gather`` of a Constant
        index and ``Unsqueeze`` (``axes`` an attribute) for each of height and
        width, ``Concat``, ``Cast``, then the first two dimensions of ``x``'s
        shape and ``Resize`` with Constant empty roi and scales. ``Unsqueeze``
        takes ``axes`` as an input from opset 13 on, which the pattern does not
        match, hence a graph using this is opset :data:`OPSET_RESIZE_LIKE`
        (:attr:`srzoo.convert.arch.Arch.opset`). Every runtime computes the
        same sizes from it.
        """
        if self.opset > OPSET_RESIZE_LIKE:
            # opset 13 on (graphs cv2.dnn does not import anyway, e.g. the transformers'):
            # the plain form, sizes = x's batch and channels with ref's height and width
            sizes = self.node("Concat", [self._dims(x, 0, 2), self._dims(ref, 2, 4)], axis=0)
            return self.node("Resize", [x, "", "", sizes], mode="linear",
                             coordinate_transformation_mode="half_pixel")
        hw = []
        for axis in (2, 3):
            index = self.const_node(np.array(axis, np.int64))
            dim = self.node("Gather", [self.node("Shape", [ref]), index], axis=0)
            hw.append(self.node("Unsqueeze", [dim], axes=[0]))
        hw_ = self.node("Cast", [self.node("Concat", hw, axis=0)], to=self.onnx.TensorProto.INT64)
        nc = self.node("Slice", [self.node("Shape", [x]), self.const_node(np.array([0], np.int64)),
                                 self.const_node(np.array([2], np.int64)), self.const_node(np.array([0], np.int64))])
        sizes = self.node("Concat", [nc, hw_], axis=0)
        roi = self.const_node(np.zeros(0, np.float32))
        scales = self.const_node(np.zeros(0, np.float32))
        return self.node("Resize", [x, roi, scales, sizes], mode="linear",
                         coordinate_transformation_mode="half_pixel")

    # -- tokens and windows (the transformers: tokens are [B, L, C], images NCHW; every
    # height and width is read from the tensors at run time, none is baked into the graph)
    def _i64(self, v: Any) -> str:
        return self.const(np.asarray(v, np.int64).reshape(-1), "shape")

    def _dims(self, x: str, lo: int, hi: int) -> str:
        """Dimensions ``lo`` .. ``hi - 1`` of ``x``'s shape (an int64 vector)."""
        return self.node("Slice", [self.node("Shape", [x]), self._i64([lo]), self._i64([hi]), self._i64([0])])

    def to_tokens(self, x: str) -> str:
        """NCHW -> [B, H*W, C]."""
        return self.node("Transpose", [self.reshape(x, [0, 0, -1])], perm=[0, 2, 1])

    def from_tokens(self, t: str, like: str) -> str:
        """[B, H*W, C] -> NCHW with ``like``'s height and width."""
        shape = self.node("Concat", [self._i64([0, -1]), self._dims(like, 2, 4)], axis=0)
        return self.node("Reshape", [self.node("Transpose", [t], perm=[0, 2, 1]), shape])

    def linear(self, t: str, w: np.ndarray, b: np.ndarray | None = None) -> str:
        """torch's Linear on the last axis: ``t @ w.T + b``."""
        y = self.node("MatMul", [t, self.const(np.asarray(w, np.float32).T, "w", True)])
        return y if b is None else self.node("Add", [y, self.const(np.asarray(b, np.float32), "b", True)])

    def layer_norm(self, t: str, w: np.ndarray, b: np.ndarray, eps: float) -> str:
        """torch's LayerNorm over the last axis (the biased variance)."""
        wc, bc = self.const(np.asarray(w, np.float32), "w", True), self.const(np.asarray(b, np.float32), "b", True)
        if self.opset >= 17:
            return self.node("LayerNormalization", [t, wc, bc], axis=-1, epsilon=float(eps))
        d = self.node("Sub", [t, self.node("ReduceMean", [t], axes=[-1], keepdims=1)])
        var = self.node("ReduceMean", [self.node("Mul", [d, d])], axes=[-1], keepdims=1)
        sd = self.node("Sqrt", [self.node("Add", [var, self.const(np.float32(eps), "eps")])])
        return self.node("Add", [self.node("Mul", [self.node("Div", [d, sd]), wc]), bc])

    def matmul(self, a: str, b: str) -> str:
        return self.node("MatMul", [a, b])

    def softmax(self, t: str, axis: int = -1) -> str:
        if self.opset < 13 and axis != -1:  # before 13 Softmax flattens from axis on
            raise ValueError("softmax before opset 13: only over the last axis (axis=-1)")
        return self.node("Softmax", [t], axis=int(axis))

    def transpose(self, t: str, perm: Sequence[int]) -> str:
        return self.node("Transpose", [t], perm=[int(p) for p in perm])

    def reshape(self, t: str, shape: Sequence[int]) -> str:
        """ONNX Reshape: 0 copies that dimension of ``t``, -1 is inferred."""
        return self.node("Reshape", [t, self._i64(list(shape))])

    def pad_to_multiple(self, x: str, mh: int, mw: int, mode: str = "reflect") -> str:
        """Pad bottom and right up to multiples of ``mh``, ``mw`` (as upstream ``check_image_size``);
        ``mode`` reflect or constant (zeros)."""
        m = self._i64([mh, mw])
        hw = self._dims(x, 2, 4)
        p = self.node("Mod", [self.node("Sub", [m, self.node("Mod", [hw, m])]), m])
        pads = self.node("Concat", [self._i64([0, 0, 0, 0, 0, 0]), p], axis=0)
        return self.node("Pad", [x, pads], mode={"zeros": "constant"}.get(mode, mode))

    def crop_to(self, x: str, like: str, scale: int = 1) -> str:
        """The top-left ``H*scale`` x ``W*scale`` of ``x``, ``H``, ``W`` being ``like``'s."""
        hw = self._dims(like, 2, 4)
        if scale != 1:
            hw = self.node("Mul", [hw, self._i64([scale, scale])])
        return self.node("Slice", [x, self._i64([0, 0]), hw, self._i64([2, 3])])

    def _blocks_shape(self, like: str, wh: int, ww: int, c: int) -> str:
        """[B, H/wh, W/ww, wh, ww, C] for ``like`` (NCHW)."""
        hw = self.node("Div", [self._dims(like, 2, 4), self._i64([wh, ww])])
        return self.node("Concat", [self._dims(like, 0, 1), hw, self._i64([wh, ww, c])], axis=0)

    def window_partition(self, x: str, wh: int, ww: int) -> str:
        """NCHW (H % wh == 0, W % ww == 0) -> [B*nW, wh*ww, C], windows row by row, pixels
        row by row inside each."""
        t = self.reshape(x, [0, 0, 0, -1, ww])                      # B C H Wb ww
        t = self.reshape(self.transpose(t, [0, 3, 4, 1, 2]), [0, 0, 0, 0, -1, wh])  # B Wb ww C Hb wh
        t = self.transpose(t, [0, 4, 1, 5, 2, 3])                   # B Hb Wb wh ww C
        return self.node("Reshape", [t, self.node("Concat", [self._i64([-1, wh * ww]), self._dims(x, 1, 2)],
                                                  axis=0)])

    def _image_shape(self, like: str) -> str:
        """[B, -1, H, W] for ``like`` (NCHW): the channels come from the tensor reshaped."""
        return self.node("Concat", [self._dims(like, 0, 1), self._i64([-1]), self._dims(like, 2, 4)], axis=0)

    def window_reverse(self, t: str, wh: int, ww: int, like: str) -> str:
        """:meth:`window_partition` undone, to ``like``'s batch, height and width (the
        channels are ``t``'s: DRCT's blocks reverse tokens wider than ``like``)."""
        t = self.node("Reshape", [t, self._blocks_shape(like, wh, ww, -1)])
        t = self.transpose(t, [0, 5, 1, 3, 2, 4])                   # B C Hb wh Wb ww
        return self.node("Reshape", [t, self._image_shape(like)])

    def grid_partition(self, x: str, wh: int, ww: int) -> str:
        """NCHW -> [B*nW, wh*ww, C] where window ``(i, j)`` holds the pixels
        ``(a*H/wh + i, b*W/ww + j)`` (a dilated, image-wide grid: MaxViT / OmniSR's grid attention)."""
        t = self.reshape(x, [0, 0, 0, ww, -1])                      # B C H ww Wg
        t = self.reshape(self.transpose(t, [0, 3, 4, 1, 2]), [0, 0, 0, 0, wh, -1])  # B ww Wg C wh Hg
        t = self.transpose(t, [0, 5, 2, 4, 1, 3])                   # B Hg Wg wh ww C
        return self.node("Reshape", [t, self.node("Concat", [self._i64([-1, wh * ww]), self._dims(x, 1, 2)],
                                                  axis=0)])

    def grid_reverse(self, t: str, wh: int, ww: int, like: str) -> str:
        """:meth:`grid_partition` undone, to ``like``'s shape."""
        # [B, Hg, Wg, wh, ww, C]: Hg = H/wh windows down, as _blocks_shape computes
        t = self.node("Reshape", [t, self._blocks_shape(like, wh, ww, -1)])
        t = self.transpose(t, [0, 5, 3, 1, 4, 2])                   # B C wh Hg ww Wg
        return self.node("Reshape", [t, self._image_shape(like)])

    def split_batch(self, t: str, like: str) -> str:
        """[B*n, ...] -> [B, n, ...], B being ``like``'s first dimension."""
        rest = self._dims(t, 1, 2 ** 31 - 1)
        return self.node("Reshape", [t, self.node("Concat", [self._dims(like, 0, 1), self._i64([-1]), rest],
                                                  axis=0)])

    def l2_normalize(self, t: str, eps: float = 1e-12) -> str:
        """torch's ``F.normalize(t, dim=-1)``: ``t / max(||t||, eps)`` over the last axis."""
        n = self.node("ReduceL2", [t], axes=[-1], keepdims=1)
        return self.node("Div", [t, self.node("Max", [n, self.const(np.float32(eps), "eps")])])

    def global_mean(self, x: str) -> str:
        """NCHW -> [B, C, 1, 1], the mean over the pixels."""
        return self.node("ReduceMean", [x], axes=[2, 3], keepdims=1)

    # --- ops added by 22d ---
    def overlap_windows(self, x: str, ws: int, ows: int) -> str:
        """NCHW (H, W multiples of ``ws``) -> [B*nW, ows*ows, C]: for each ``ws x ws`` window
        of :meth:`window_partition` (same order), the ``ows x ows`` window centred on it,
        zeros outside the image (torch's ``Unfold(ows, stride=ws, padding=(ows-ws)//2)``,
        HAT's overlapping cross-attention); ``ows - ws`` even and at most ``ws``.

        No gather and no shape arithmetic: a constant zero Pad (``p`` before, ``ws - p``
        after, so each side holds one more window), a split of each axis into windows, and
        the Concat of window ``i`` with the first ``ows - ws`` rows of window ``i + 1``."""
        e, p = ows - ws, (ows - ws) // 2
        if e < 0 or e % 2 or e > ws:
            raise ValueError(f"overlapping windows of {ows} on a {ws} grid: ows - ws must be even and <= ws")
        if e == 0:
            return self.window_partition(x, ws, ws)
        big = self._i64([2 ** 62])
        x = self.node("Pad", [x, self._i64([0, 0, p, p, 0, 0, ws - p, ws - p])], mode="constant")

        def overlap(t: str, axis: int) -> str:  # axis `axis` counts windows, `axis + 1` their pixels
            a = self.node("Slice", [t, self._i64([0]), self._i64([-1]), self._i64([axis])])
            b = self.node("Slice", [t, self._i64([1, 0]), self.node("Concat", [big, self._i64([e])], axis=0),
                                    self._i64([axis, axis + 1])])
            return self.node("Concat", [a, b], axis=axis + 1)
        t = overlap(self.reshape(x, [0, 0, 0, -1, ws]), 3)                 # B C H' m ows
        t = self.reshape(self.transpose(t, [0, 3, 4, 1, 2]), [0, 0, 0, 0, -1, ws])  # B m ows C n' ws
        t = self.transpose(overlap(t, 4), [0, 4, 1, 5, 2, 3])             # B n m ows ows C
        return self.node("Reshape", [t, self.node("Concat", [self._i64([-1, ows * ows]), self._dims(x, 1, 2)],
                                                  axis=0)])

    def resize_cubic_to(self, x: str, like: str, scale: int) -> str:
        """Bicubic resize of ``x`` to ``like``'s height and width times ``scale`` (torch's
        ``interpolate(size=..., mode="bicubic", align_corners=False)``: half-pixel, a=-0.75,
        the ratio of the sizes, which differs from ``scale`` where ``x`` was padded)."""
        hw = self.node("Mul", [self._dims(like, 2, 4), self._i64([scale, scale])])
        sizes = self.node("Concat", [self._dims(x, 0, 2), hw], axis=0)
        return self.node("Resize", [x, "", "", sizes], mode="cubic", cubic_coeff_a=-0.75,
                         coordinate_transformation_mode="half_pixel")
    # --- end 22d ---
    # --- ops added by 22f ---
    def sqrt(self, x: str) -> str:
        """Elementwise square root."""
        return self.node("Sqrt", [x])
    # --- end 22f ---
    # --- ops added by 22g ---
    def conv_transpose(self, x: str, w: np.ndarray, b: np.ndarray | None = None, *, stride: int = 1,
                       pad: int = 0) -> str:
        """torch's ``conv_transpose2d`` (weights ``[Cin, Cout, k, k]``): output side
        ``stride * (n - 1) + k - 2 * pad``."""
        ins = [x, self.const(w, "w", True)] + ([self.const(b, "b", True)] if b is not None else [])
        return self.node("ConvTranspose", ins, kernel_shape=[int(w.shape[2]), int(w.shape[3])],
                         strides=[stride, stride], pads=[pad, pad, pad, pad])

    def pad_reflect_multiple(self, x: str, p: int, m: int) -> str:
        """Reflect-pad ``p`` pixels on every side plus, at the bottom and right, what takes
        H and W up to multiples of ``m`` (one Pad, as torch's ``F.pad(x, (p, p + ew, p, p + eh),
        "reflect")``; two reflections in a row would mirror a different pixel)."""
        mm = self._i64([m, m])
        extra = self.node("Mod", [self.node("Sub", [mm, self.node("Mod", [self._dims(x, 2, 4), mm])]), mm])
        ends = self.node("Add", [extra, self._i64([p, p])])
        pads = self.node("Concat", [self._i64([0, 0, p, p, 0, 0]), ends], axis=0)
        return self.node("Pad", [x, pads], mode="reflect")

    def crop_border(self, x: str, p: int) -> str:
        """``p`` pixels off every side (torch's ``F.pad`` with negative padding)."""
        return self.node("Slice", [x, self._i64([p, p]), self._i64([-p, -p]), self._i64([2, 3])])
    # --- end 22g ---
    # --- ops added by 22h ---
    def pad_symmetric_to_multiple(self, x: str, mh: int, mw: int) -> str:
        """Pad bottom and right up to multiples of ``mh``, ``mw`` by mirroring with the edge
        repeated (numpy's ``symmetric``; ATD's ``cat([x, flip(x)])[:h]``); at most H (W) rows
        (columns) are added, so the input must be at least ``mh`` (``mw``) high (wide).
        ONNX Pad has no such mode: the flipped copy (a Slice with step -1) is concatenated
        and the result sliced to the multiple."""
        big = np.iinfo(np.int64).max
        for axis, m in ((2, int(mh)), (3, int(mw))):
            if m <= 1:
                continue
            flip = self.node("Slice", [x, self._i64([-1]), self._i64([-big]), self._i64([axis]), self._i64([-1])])
            n = self._dims(x, axis, axis + 1)
            mm = self._i64([m])
            end = self.node("Add", [n, self.node("Mod", [self.node("Sub", [mm, self.node("Mod", [n, mm])]), mm])])
            x = self.node("Slice", [self.node("Concat", [x, flip], axis=axis), self._i64([0]), end,
                                    self._i64([axis])])
        return x

    def normalize_last(self, t: str, eps: float) -> str:
        """``(t - mean) / sqrt(var + eps)`` over the last axis (biased variance), no affine:
        torch's InstanceNorm1d on [B, C, L] before its per-channel weight and bias."""
        d = self.node("Sub", [t, self.node("ReduceMean", [t], axes=[-1], keepdims=1)])
        var = self.node("ReduceMean", [self.node("Mul", [d, d])], axes=[-1], keepdims=1)
        return self.node("Div", [d, self.node("Sqrt", [self.node("Add", [var, self.const(np.float32(eps), "eps")])])])

    def category_order(self, sim: str, m: int) -> tuple[str, str]:
        """For ``sim`` [B, N, m]: (perm, rank), int64 [B, N]. Token i's category is the first
        argmax of its row; ``perm`` lists the tokens sorted by category, ties kept in token
        order (a stable sort), and ``rank`` is its inverse (token i's place in that order).

        No TopK: engines break its ties differently (OpenVINO's is not stable). The rank is
        counted with one-hot vectors instead, ``rank[i] = #(tokens of a lower category) +
        #(earlier tokens of the same category)``: two CumSums of 0/1 values in float32 (exact
        below 2**24 tokens), and ``perm`` is ScatterElements of the positions at ``rank``."""
        tk = self.node("ArgMax", [sim], axis=-1, keepdims=1, select_last_index=0)      # [B, N, 1]
        onehot = self.node("Cast", [self.node("Equal", [tk, self._i64(list(range(int(m))))])],
                           to=self.onnx.TensorProto.FLOAT)                                # [B, N, m]
        one = self.const(np.array(1, np.int64), "axis")
        offset = self.node("CumSum", [self.node("ReduceSum", [onehot, self._i64([1])], keepdims=1),
                                      self.const(np.array(2, np.int64), "axis")], exclusive=1)  # [B, 1, m]
        within = self.node("CumSum", [onehot, one], exclusive=1)                          # [B, N, m]
        rankf = self.node("ReduceSum", [self.node("Mul", [onehot, self.node("Add", [offset, within])]),
                                        self._i64([2])], keepdims=0)                       # [B, N]
        ones = self.node("ReduceSum", [onehot, self._i64([2])], keepdims=0)               # [B, N] of 1
        pos = self.node("CumSum", [ones, one], exclusive=1)
        rank = self.node("Cast", [rankf], to=self.onnx.TensorProto.INT64)
        pos_i = self.node("Cast", [pos], to=self.onnx.TensorProto.INT64)
        perm = self.node("ScatterElements", [pos_i, rank, pos_i], axis=1)
        return perm, rank

    def group_tokens(self, t: str, perm: str, size: int) -> str:
        """[B, N, C] -> [B, ng, gs, C]: the tokens in ``perm``'s order, in groups of
        ``gs = min(N, size)``, the last group filled up with the last ``ng*gs - N`` tokens
        (of that order) mirrored (ATD's AC-MSA)."""
        n = self._dims(t, 1, 2)
        gs = self.node("Min", [n, self._i64([int(size)])])
        ng = self.node("Div", [self.node("Sub", [self.node("Add", [n, gs]), self._i64([1])]), gs])
        total = self.node("Mul", [ng, gs])
        scalar = self._i64([])
        j = self.node("Range", [self.node("Reshape", [self._i64([0]), scalar]), self.node("Reshape", [total, scalar]),
                                self.node("Reshape", [self._i64([1]), scalar])])                   # [L]
        mirror = self.node("Sub", [self.node("Sub", [self.node("Add", [n, n]), self._i64([1])]), j])
        idx = self.node("Where", [self.node("Less", [j, n]), j, mirror])
        pp = self.node("Gather", [perm, idx], axis=1)                                              # [B, L]
        g = self.node("GatherND", [t, self.node("Unsqueeze", [pp, self._i64([-1])])], batch_dims=1)  # [B, L, C]
        shape = self.node("Concat", [self._i64([0, -1]), gs, self._dims(t, 2, 3)], axis=0)
        return self.node("Reshape", [g, shape])

    def ungroup_tokens(self, g: str, rank: str) -> str:
        """:meth:`group_tokens` undone: [B, ng, gs, C] -> [B, N, C], token i taken from place
        ``rank[i]`` of the flattened groups (the filling is dropped)."""
        y = self.node("Reshape", [g, self.node("Concat", [self._i64([0, -1]), self._dims(g, 3, 4)], axis=0)])
        return self.node("GatherND", [y, self.node("Unsqueeze", [rank, self._i64([-1])])], batch_dims=1)
    # --- end 22h ---


def run_cv2(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Run a serialized ONNX model with cv2.dnn on an NCHW float32 array."""
    import os
    import tempfile

    import cv2

    fd, tmp = tempfile.mkstemp(suffix=".onnx")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(onnx_bytes)
        net = cv2.dnn.readNetFromONNX(tmp)
    finally:
        os.unlink(tmp)
    net.setInput(np.ascontiguousarray(x, np.float32))
    return np.asarray(net.forward(), np.float32)


def probe(channels: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """A deterministic NCHW probe in [0, 1]: smooth shapes plus noise, like an image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = 0.5 + 0.35 * np.sin(6 * xx + 3 * yy)[None] * np.linspace(0.6, 1.0, channels)[:, None, None]
    return np.clip(base + 0.1 * rng.standard_normal((channels, size, size)), 0, 1)[None].astype(np.float32)


__all__ = ["Graph", "OPSET", "OPSET_RESIZE_LIKE", "probe", "run_cv2"]
