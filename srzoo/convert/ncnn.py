"""ncnn models (``.param`` text + ``.bin`` weights) to ONNX.

The ``.param`` file: magic ``7767517``, a line with the layer and blob
counts, then one layer per line: type, name, input and output counts, blob
names, ``key=value`` parameters (a negative key ``-233xx`` holds the array
parameter ``xx``). The ``.bin`` holds the weights in layer order; a
convolution's weight block starts with a 4-byte tag (``0x01306B47``:
float16; ``0``: float32), biases and PReLU slopes are raw float32.

Translated layers: Input, Split, Convolution / ConvolutionDepthWise (with
fused ReLU / LeakyReLU / Sigmoid activations), PReLU, ReLU, Sigmoid,
BinaryOp (add, sub, mul, with a scalar or a second blob), Eltwise (prod,
sum with coefficients, max), Concat, PixelShuffle, Interp (nearest,
bilinear, bicubic by a scale factor). Any other layer type is named in
the error. The check runs the ``ncnn`` package (CPU, fp32 arithmetic) on
the same probe; float16 weights allow 1e-2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from srzoo.convert import Conversion, register
from srzoo.convert.arch import Arch
from srzoo.convert.check import build, compare, tool_versions
from srzoo.convert.reference import best
from srzoo.errors import ModelLoadError
from srzoo.hub.untrusted import guarded, read_bytes

MAGIC = 7767517
TAG_F16 = 0x01306B47
SUPPORTED = ("Input", "Split", "Convolution", "ConvolutionDepthWise", "PReLU", "ReLU", "Sigmoid", "BinaryOp",
             "Eltwise", "Concat", "PixelShuffle", "Interp", "Noop")


#: largest spatial scale any blob may have relative to the input (also bounds the probe's size)
MAX_SCALE = 16


class NcnnError(ModelLoadError):
    """A .param/.bin pair srzoo cannot read or translate."""


@dataclass
class Layer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, Any]
    weights: list[np.ndarray] = field(default_factory=list)

    def p(self, key: int, default: Any = 0) -> Any:
        return self.params.get(key, default)


@dataclass
class Net:
    layers: list[Layer]
    float16: bool
    param_path: Path

    @property
    def input(self) -> str:
        return next(lay.outputs[0] for lay in self.layers if lay.type == "Input")

    @property
    def output(self) -> str:
        used = {b for lay in self.layers for b in lay.inputs}
        outs = [b for lay in self.layers for b in lay.outputs if b not in used]
        return "output" if "output" in outs else outs[-1]


def bin_path(param: Path) -> Path:
    return param.with_suffix(".bin")


def _value(s: str) -> Any:
    return float(s) if any(c in s for c in ".eE") else int(s)


def parse_param(path: Path) -> list[Layer]:
    try:
        lines = read_bytes(path, "ncnn .param file").decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise NcnnError(f"{path}: cannot read as an ncnn .param text file ({e})") from None
    lines = [ln for ln in lines if ln.strip()]
    if not lines or lines[0].strip() != str(MAGIC):
        raise NcnnError(f"{path}: not an ncnn .param file (first line is not the magic {MAGIC}; "
                        f"binary .param.bin files are not supported)")
    layers = []
    for no, ln in enumerate(lines[2:], start=3):
        tok = ln.split()
        try:
            nin, nout = int(tok[2]), int(tok[3])
            ins, outs = tok[4:4 + nin], tok[4 + nin:4 + nin + nout]
            params: dict[int, Any] = {}
            for kv in tok[4 + nin + nout:]:
                k, v = kv.split("=", 1)
                key = int(k)
                if key <= -23300:
                    vals = v.split(",")
                    params[-key - 23300] = [_value(x) for x in vals[1:1 + int(vals[0])]]
                else:
                    params[key] = _value(v)
        except (ValueError, IndexError):
            raise NcnnError(f"{path}: line {no} is not a layer line: {ln[:80]!r}") from None
        layers.append(Layer(tok[0], tok[1], ins, outs, params))
    bad = sorted({lay.type for lay in layers} - set(SUPPORTED))
    if bad:
        raise NcnnError(f"{path}: layer types {', '.join(bad)} are not supported by srzoo's ncnn converter "
                        f"(it translates {', '.join(SUPPORTED)})")
    return layers


class _Bin:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise NcnnError(f"{path}: cannot read the weights of the ncnn model (no such file); the .bin "
                            f"must sit beside the .param with the same name")
        self.data = read_bytes(path, "ncnn .bin file")
        self.path, self.pos, self.f16 = path, 0, False

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NcnnError(f"{self.path}: ends after {len(self.data)} bytes, the .param needs more "
                            f"(truncated, or not the .bin of this .param)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def raw(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), "<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        tag = int.from_bytes(self.take(4), "little")
        if tag == TAG_F16:
            self.f16 = True
            arr = np.frombuffer(self.take(2 * count), "<f2").astype(np.float32)
            self.take((-2 * count) % 4)
            return arr
        if tag == 0:
            return self.raw(count)
        raise NcnnError(f"{self.path}: weight block with tag 0x{tag:08x} at byte {self.pos - 4} "
                        f"(srzoo reads float16 and float32 blocks; int8/quantized are not supported)")


def _int(lay: Layer, key: int, default: int, low: int, where: str, high: int | None = None) -> int:
    v = lay.p(key, default)
    if type(v) is not int or v < low or (high is not None and v > high):
        raise NcnnError(f"{where}: parameter {key}={v!r} must be an integer from {low}"
                        f"{' to ' + str(high) if high is not None else ''}")
    return v


_ARITY = {"Input": (0, 0), "Convolution": (1, 1), "ConvolutionDepthWise": (1, 1), "PReLU": (1, 1),
          "ReLU": (1, 1), "Sigmoid": (1, 1), "PixelShuffle": (1, 1), "Interp": (1, 1), "Split": (1, 1),
          "Noop": (1, 1), "BinaryOp": (1, 2), "Eltwise": (1, 64), "Concat": (1, 64)}


def validate(layers: list[Layer], path: Path) -> None:
    """The structure of a parsed ``.param``, checked before any weight is read or any
    probe allocated: exactly one Input, every blob read after it is written (no unknown
    blob, no cycle), positive sizes, weight counts that factor into the kernel shape,
    and spatial scales between 1/64 and :data:`MAX_SCALE` (Interp 1000 is refused here)."""
    inputs = [lay for lay in layers if lay.type == "Input"]
    if len(inputs) != 1:
        raise NcnnError(f"{path}: {len(inputs)} Input layers; srzoo translates networks with exactly one")
    produced: set[str] = set()
    for lay in layers:
        where = f"{path}: layer {lay.name} ({lay.type})"
        lo, hi = _ARITY[lay.type]
        if not lo <= len(lay.inputs) <= hi or not lay.outputs:
            raise NcnnError(f"{where}: {len(lay.inputs)} inputs and {len(lay.outputs)} outputs")
        for b in lay.inputs:
            if b not in produced:
                raise NcnnError(f"{where}: reads blob {b[:60]!r}, which no earlier layer writes "
                                "(an unknown blob, or a cycle)")
        dup = produced & set(lay.outputs)
        if dup:
            raise NcnnError(f"{where}: writes blob {sorted(dup)[0][:60]!r} a second time")
        produced.update(lay.outputs)
        if lay.type in ("Convolution", "ConvolutionDepthWise"):
            cout = _int(lay, 0, 0, 1, where, 1 << 16)
            kw = _int(lay, 1, 0, 1, where, 64)
            kh = _int(lay, 11, kw, 1, where, 64)
            _int(lay, 3, 1, 1, where, 64)
            _int(lay, 4, 0, 0, where, max(kw, kh))
            n = _int(lay, 6, 0, 1, where)
            groups = _int(lay, 7, 1, 1, where, cout) if lay.type == "ConvolutionDepthWise" else 1
            if n % (cout * kw * kh) or cout % groups:
                raise NcnnError(f"{where}: {n} weights do not make {cout} output channels of {kh}x{kw} "
                                f"kernels in {groups} groups")
            _int(lay, 5, 0, 0, where, 1)
        elif lay.type == "PReLU":
            _int(lay, 0, 0, 1, where, 1 << 16)
        elif lay.type == "PixelShuffle":
            _int(lay, 0, 1, 1, where, MAX_SCALE)
        elif lay.type == "Interp":
            for key in (1, 2):
                v = lay.p(key, 1.0)
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= MAX_SCALE:
                    raise NcnnError(f"{where}: scale {v!r} is not between 0 and {MAX_SCALE}")
        elif lay.type == "Eltwise" and lay.p(1, []):
            coeffs = lay.p(1)
            if not isinstance(coeffs, list) or len(coeffs) < len(lay.inputs):
                raise NcnnError(f"{where}: {len(coeffs) if isinstance(coeffs, list) else 0} coefficients "
                                f"for {len(lay.inputs)} inputs")


def _check_scales(net: Net, cin: int) -> float:
    """Every blob's spatial scale (from the parameters alone, nothing allocated) lies within
    1/64 and :data:`MAX_SCALE`, so the verification probe stays small; returns the output's."""
    scales = _forward(_ScaleOps(), net, Arch("ncnn", 1, in_channels=cin), 1.0)
    for blob, sc in scales.items():
        if not 1 / 64 <= float(sc) <= MAX_SCALE:
            raise NcnnError(f"{net.param_path}: blob {blob[:60]!r} is {float(sc):g} times the input's size "
                            f"(srzoo translates networks whose blobs stay within 1/64 and x{MAX_SCALE})")
    return float(scales[net.output])


def load(param: Path) -> Net:
    layers = parse_param(param)
    validate(layers, param)
    b = _Bin(bin_path(param))
    for lay in layers:
        if lay.type in ("Convolution", "ConvolutionDepthWise"):
            n = lay.p(6)
            lay.weights.append(b.tagged(n))
            if lay.p(5):
                lay.weights.append(b.raw(lay.p(0)))
        elif lay.type == "PReLU":
            lay.weights.append(b.raw(lay.p(0)))
    if b.pos != len(b.data):
        raise NcnnError(f"{b.path}: {len(b.data) - b.pos} bytes left after the weights the .param names "
                        f"(not the .bin of this .param?)")
    return Net(layers, b.f16, param)


def _act(F: Any, x: Any, kind: int, args: list, where: str) -> Any:
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x) if not args or args[0] == 0 else F.lrelu(x, args[0])
    if kind == 2:
        return F.lrelu(x, args[0] if args else 0.0)
    if kind == 4:
        return F.sigmoid(x)
    raise NcnnError(f"{where}: fused activation type {kind} is not supported (relu, leakyrelu, sigmoid)")


def forward(F: Any, net: Net, arch: Arch, x: Any) -> Any:
    return _forward(F, net, arch, x)[net.output]


def _rational_of(s: float, limit: int = 64) -> Fraction | None:
    """``s`` as a fraction with a small denominator, if it is exactly one."""
    f = Fraction(s).limit_denominator(limit)
    return f if f > 0 and float(f) == s else None


def _forward(F: Any, net: Net, arch: Arch, x: Any) -> dict[str, Any]:
    blobs: dict[str, Any] = {}
    # each blob's spatial scale relative to the input, for graphs that can use it (resize_cubic_rational)
    rational = not isinstance(F, _ScaleOps) and hasattr(F, "resize_cubic_rational")
    scales = _forward(_ScaleOps(), net, arch, 1.0) if rational else {}
    chans: dict[str, int] = {}
    for lay in net.layers:
        where = f"{net.param_path}: layer {lay.name} ({lay.type})"
        ins = [blobs[b] for b in lay.inputs]
        t = lay.type
        if t == "Input":
            y = x
            chans[lay.outputs[0]] = arch.in_channels
        elif t in ("Split", "Noop"):
            y = ins[0]
        elif t in ("Convolution", "ConvolutionDepthWise"):
            cout, kw = lay.p(0), lay.p(1)
            kh = lay.p(11, kw)
            if lay.p(2, 1) != 1 or lay.p(12, lay.p(2, 1)) != 1 or lay.p(8, 0):
                raise NcnnError(f"{where}: dilated or int8 convolutions are not supported")
            if isinstance(lay.p(9, 0), int) and lay.p(9, 0) and not isinstance(lay.p(10, []), list):
                raise NcnnError(f"{where}: activation parameters are not a list")
            stride = lay.p(3, 1)
            pad = lay.p(4, 0)
            if pad < 0 or len({pad, lay.p(14, pad), lay.p(15, pad), lay.p(16, lay.p(14, pad))}) > 1 \
                    or lay.p(13, stride) != stride or kh != kw:
                raise NcnnError(f"{where}: only square kernels with equal padding and stride are supported")
            groups = lay.p(7, 1) if t == "ConvolutionDepthWise" else 1
            cin = lay.p(6) // (cout * kw * kh) * groups
            have = chans.get(lay.inputs[0], 0)
            if have and have != cin:
                raise NcnnError(f"{where}: its weights take {cin} channels, its input has {have}")
            w = lay.weights[0].reshape(cout, cin // groups, kh, kw)
            y = F.conv(ins[0], w, lay.weights[1] if len(lay.weights) > 1 else None, stride=stride, pad=pad,
                       groups=groups)
            y = _act(F, y, lay.p(9, 0), lay.p(10, []), where)
            chans[lay.outputs[0]] = cout
        elif t == "PReLU":
            slope = lay.weights[0]
            c = chans[lay.inputs[0]]
            if slope.size not in (1, c):
                raise NcnnError(f"{where}: {slope.size} slopes for {c} channels")
            y = F.prelu(ins[0], np.full(c, slope[0], np.float32) if slope.size == 1 else slope)
        elif t == "ReLU":
            y = F.relu(ins[0]) if not lay.p(0, 0) else F.lrelu(ins[0], lay.p(0))
        elif t == "Sigmoid":
            y = F.sigmoid(ins[0])
        elif t == "BinaryOp":
            op = lay.p(0, 0)
            if lay.p(1, 0):  # with scalar
                s = float(lay.p(2, 0.0))
                table = {0: (1.0, s), 1: (1.0, -s), 2: (s, 0.0), 7: (-1.0, s)}
                if op == 3 and s != 0:
                    table[3] = (1.0 / s, 0.0)
                if op not in table:
                    raise NcnnError(f"{where}: BinaryOp {op} with a scalar is not supported")
                y = F.affine(ins[0], *table[op])
            elif op == 0:
                y = F.add(ins[0], ins[1])
            elif op == 1:
                y = F.add(ins[0], F.affine(ins[1], -1.0))
            elif op == 2:
                y = F.mul(ins[0], ins[1])
            else:
                raise NcnnError(f"{where}: BinaryOp {op} is not supported (add, sub, mul)")
        elif t == "Eltwise":
            op, coeffs = lay.p(0, 1), lay.p(1, [])
            if op == 1:
                terms = [F.affine(a, float(coeffs[i])) if coeffs and coeffs[i] != 1 else a for i, a in enumerate(ins)]
                y = terms[0]
                for a in terms[1:]:
                    y = F.add(y, a)
            elif op == 0:
                y = ins[0]
                for a in ins[1:]:
                    y = F.mul(y, a)
            else:
                raise NcnnError(f"{where}: Eltwise {op} is not supported (prod, sum)")
        elif t == "Concat":
            if lay.p(0, 0) != 0:
                raise NcnnError(f"{where}: Concat on axis {lay.p(0)} is not supported (channels only)")
            y = F.cat(ins)
            chans[lay.outputs[0]] = sum(chans[b] for b in lay.inputs)
        elif t == "PixelShuffle":
            r = lay.p(0, 1)
            if chans[lay.inputs[0]] % (r * r):
                raise NcnnError(f"{where}: {chans[lay.inputs[0]]} channels do not divide by {r}x{r}")
            y = F.pixel_shuffle(ins[0], r, "DCR" if lay.p(1, 0) else "CRD", channels=chans[lay.inputs[0]])
            chans[lay.outputs[0]] = chans[lay.inputs[0]] // (r * r)
        elif t == "Interp":
            mode = {1: "nearest", 2: "linear", 3: "cubic"}.get(lay.p(0, 0))
            sh, sw = float(lay.p(1, 1.0)), float(lay.p(2, 1.0))
            if mode is None or lay.p(3, 0) or lay.p(4, 0) or sh != sw or lay.p(6, 0):
                raise NcnnError(f"{where}: only Interp by one scale factor (nearest, bilinear, bicubic, "
                                f"align_corners off) is supported")
            frac = _rational_of(sh) if mode == "cubic" and scales else None
            size = _rational_of(float(scales[lay.inputs[0]])) if frac is not None else None
            if mode == "nearest" and sh == int(sh):
                y = F.up_nearest(ins[0], int(sh))
            elif frac is not None and size is not None and size.denominator == 1 \
                    and size.numerator % frac.denominator == 0 and chans[lay.inputs[0]] > 0:
                # the input's height and width are a multiple of the denominator for every input
                # size: exact convolutions (which cv2.dnn 4.x imports, unlike a cubic Resize)
                y = F.resize_cubic_rational(ins[0], frac.numerator, frac.denominator, chans[lay.inputs[0]])
            else:
                y = F.resize(ins[0], sh, mode)
        else:  # pragma: no cover - parse_param refused it
            raise NcnnError(f"{where}: unsupported layer")
        for o in lay.outputs:
            blobs[o] = y
            chans.setdefault(o, chans.get(lay.inputs[0], 0) if lay.inputs else 0)
    return blobs


def _arch(net: Net) -> Arch:
    """Scale and channels from the layers themselves (run shapes through the net's parameters)."""
    first = next((lay for lay in net.layers if lay.type.startswith("Convolution")), None)
    if first is None:
        raise NcnnError(f"{net.param_path}: no convolution; not a super-resolution network")
    cin = first.p(6) // (first.p(0) * first.p(1) * first.p(11, first.p(1))) * first.p(7, 1)
    scale = _check_scales(net, cin)
    s = int(round(scale))
    if s != scale or s < 1:
        raise NcnnError(f"{net.param_path}: the network scales by {scale:g}, not by a whole factor")
    kinds = {lay.type for lay in net.layers}
    name = "ncnn-rrdbnet" if "Eltwise" in kinds and "Interp" in kinds else \
        "ncnn-srvgg" if "PReLU" in kinds and "PixelShuffle" in kinds else "ncnn"
    return Arch(name, s, in_channels=cin, out_channels=cin, min_size=8,
                params={"layers": len(net.layers), "float16": net.float16})


class _ScaleOps:
    """Runs :func:`forward` on numbers: each value is its spatial scale relative to the input."""

    def __getattr__(self, name: str) -> Any:
        return lambda x, *a, **k: x  # activations, affine...

    def conv(self, x: float, w: Any, b: Any = None, *, stride: int = 1, **k: Any) -> float:
        return x / stride

    def pixel_shuffle(self, x: float, r: int, mode: str = "CRD", channels: int | None = None) -> float:
        return x * r

    def up_nearest(self, x: float, r: int) -> float:
        return x * r

    def resize(self, x: float, s: float, mode: str) -> float:
        return x * s

    def cat(self, xs: list) -> float:
        return xs[0]


class _NcnnReference:
    def __init__(self, net: Net) -> None:
        import ncnn

        self.ncnn = ncnn
        self.net = net
        self.name = f"ncnn {getattr(ncnn, '__version__', '?')} (CPU, fp32 arithmetic)"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ncnn = self.ncnn
        n = ncnn.Net()
        o = n.opt
        o.use_vulkan_compute = False
        for k in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage",
                  "use_int8_inference"):
            if hasattr(o, k):
                setattr(o, k, False)
        o.num_threads = 1
        if n.load_param(str(self.net.param_path)) != 0 or n.load_model(str(bin_path(self.net.param_path))) != 0:
            raise NcnnError(f"{self.net.param_path}: the ncnn package cannot load this model")
        ex = n.create_extractor()
        ex.input(self.net.input, ncnn.Mat(np.ascontiguousarray(x[0], np.float32)))
        ret, out = ex.extract(self.net.output)
        if ret != 0:
            raise NcnnError(f"{self.net.param_path}: the ncnn package failed to run this model ({ret})")
        return np.array(out)[None]


def run_ncnn(param: Path, x: np.ndarray) -> np.ndarray:
    """Run an ncnn model with the ``ncnn`` package (the reference runtime) on NCHW input."""
    return _NcnnReference(load(Path(param)))(x)


class NcnnToONNX:
    name = "ncnn-onnx"
    version = "3"  # 3: bicubic Interp on a known multiple of the denominator as convolutions
    source_formats = frozenset({"ncnn"})

    @guarded("ncnn model")
    def inspect(self, source: Path, scale: int | None = None, arch: str | None = None) -> dict[str, Any]:
        net = load(Path(source))
        a = _arch(net)
        counts: dict[str, int] = {}
        for lay in net.layers:
            counts[lay.type] = counts.get(lay.type, 0) + 1
        return {"format": "ncnn", "arch": a.describe(), "scale": a.scale, "scales": [a.scale], "color": "rgb",
                "pre_upsample": None, "layers": counts, "inputs": [net.input], "outputs": [net.output],
                "params": int(sum(w.size for lay in net.layers for w in lay.weights)),
                "weights": "float16" if net.float16 else "float32"}

    @guarded("ncnn model")
    def convert(self, source: Path, entry: Any, options: dict[str, Any]) -> Conversion:
        net = load(Path(source))
        a = _arch(net)
        onnx_bytes, params = build(forward, net, a, a.name)
        tol = float(options.get("tolerance", 1e-2 if net.float16 else 1e-3))
        try:
            ref: Any = _NcnnReference(net)
            ref_name = ref.name
        except ImportError:
            ops = best()
            ref = lambda x: ops.output(forward(ops, net, a, ops.input(x)))  # noqa: E731
            ref_name = f"{ops.name} (the ncnn package is not installed)"
        size = 32
        err = compare(onnx_bytes, ref, a.in_channels, size=size, tol=tol, what=str(source))
        info = {"opset": 17, "arch": a.name, "scale": a.scale, "params": params, "color": "rgb",
                "pre_upsample": None, **a.params}
        return Conversion(onnx=onnx_bytes, info=info, probe_error=err,
                          checked_against=f"{ref_name} on a {size}x{size} probe",
                          tools=tool_versions("ncnn"))


CONVERTER = register(NcnnToONNX())
