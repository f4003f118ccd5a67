"""Keras HDF5 weight files (read with h5py) to ONNX: SRCNN and SRGAN/SRResNet.

Weights-only Keras files hold, per layer (in the file's ``layer_names``
order), the arrays named by its ``weight_names``. The architecture is told
from the layer kinds and kernel shapes:

* **SRCNN** (Keras 1, MarkPrecursor/SRCNN-keras): three convolutions,
  9x9 1->n ReLU ``valid``, kxk n->m ReLU ``same``, 5x5 m->1 ``valid``. The
  network sees the bicubic-upscaled Y; the two ``valid`` layers lose 6 px
  per side, so the graph reflect-pads its input by 6 and the output has the
  input's size (pixels 9 px or more from the border are the original
  network's exactly; nearer, the original's zero padding of the middle
  layer at the edge of its valid region no longer applies).
* **SRGAN / SRResNet** (krasserm/super-resolution generator): conv 9x9 +
  PReLU, residual blocks (conv, BatchNorm, PReLU, conv, BatchNorm, add),
  conv + BatchNorm + skip, ``log2(scale)`` upsampling blocks (conv,
  depth_to_space, PReLU), conv 9x9 + tanh. BatchNorm is folded into the
  convolutions; the [-1,1] output is mapped to [0,1].

Kernels are stored HWIO (TensorFlow order) and transposed to OIHW. The
check runs the original layers with TensorFlow (``tf.nn``, NHWC, BatchNorm
unfused) when installed, else the numpy reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srzoo.convert import Conversion, register
from srzoo.convert.arch import Arch
from srzoo.convert.check import build, compare, tool_versions
from srzoo.convert.onnxbuild import OPSET
from srzoo.convert.reference import NumpyOps
from srzoo.errors import ModelLoadError, SrzooError
from srzoo.hub.untrusted import Budget, guarded, reading, regular_file

BN_EPS = 1e-3  # Keras default


@dataclass
class Layer:
    name: str
    kind: str  # conv, bn, prelu
    weights: list[np.ndarray]


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise SrzooError("reading Keras .h5 files needs h5py: pip install 'srzoo[convert]'") from None
    return h5py


class KerasFileError(ModelLoadError):
    """A Keras weight file srzoo cannot read safely; the message names the file."""


def _member(h5py: Any, group: Any, name: str, path: Path, missing_ok: bool = False) -> Any:
    """``group[name]``, walking each component through hard links only: an HDF5 external
    link (another file, anywhere on disk) or a soft link is refused, never followed."""
    obj = group
    for part in [p for p in name.split("/") if p]:
        link = obj.get(part, getlink=True) if isinstance(obj, h5py.Group) else None
        if link is None:
            if missing_ok:
                return None
            raise KerasFileError(f"{path}: the file names {name[:80]!r}, which it does not hold "
                                 "(missing group or dataset)")
        if not isinstance(link, h5py.HardLink):
            raise KerasFileError(f"{path}: refused: {name[:80]!r} is an HDF5 "
                                 f"{'external link to another file' if isinstance(link, h5py.ExternalLink) else 'soft link'}; "
                                 "srzoo reads only data stored inside the weight file itself")
        obj = obj[part]
    return obj


def _either(h5py: Any, g: Any, root: Any, name: str, path: Path) -> Any:
    """A weight named relative to its layer's group, else to the root (Keras 1)."""
    obj = _member(h5py, g, name, path, missing_ok=True)
    return _member(h5py, root, name, path) if obj is None else obj


def _array(h5py: Any, ds: Any, name: str, path: Path, budget: Budget) -> np.ndarray:
    """A dataset's values as float32, after checking they live in the file (no HDF5 external
    storage, no virtual dataset), are numbers, and fit the byte budget."""
    if not isinstance(ds, h5py.Dataset):
        raise KerasFileError(f"{path}: {name[:80]!r} is not a dataset")
    if ds.external or ds.is_virtual:
        raise KerasFileError(f"{path}: refused: dataset {name[:80]!r} keeps its values in other files "
                             "(HDF5 external storage or a virtual dataset); srzoo reads only data stored "
                             "inside the weight file itself. Nothing was read from them")
    if ds.dtype.kind not in "fiu" or ds.ndim > 8:
        raise KerasFileError(f"{path}: dataset {name[:80]!r} holds {ds.dtype} of {ds.ndim} dimensions, "
                             "not weights")
    budget.take(int(ds.size) * 4, f"dataset {name[:80]}")
    return np.asarray(ds, np.float32)


def read_layers(path: Path) -> list[Layer]:
    """The layers that carry weights, in the file's order.

    Only a regular file within ``SRZOO_MAX_MODEL_BYTES`` is opened; every name is
    resolved through hard links inside the file, and datasets stored outside it are
    refused (:func:`_member`, :func:`_array`).
    """
    h5py = _h5py()
    regular_file(path, "Keras weight file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise SrzooError(f"{path}: not an HDF5 file h5py can read ({e})") from None
    with f, reading(path, "Keras weight file"):
        return _read_layers(h5py, f, path)


def _read_layers(h5py: Any, f: Any, path: Path) -> list[Layer]:
    budget = Budget(path, "the weights")
    mw = _member(h5py, f, "model_weights", path, missing_ok=True)
    root = f if mw is None else mw
    if "layer_names" not in root.attrs:
        raise SrzooError(f"{path}: HDF5 file without Keras 'layer_names': not a Keras weight file")
    out = []
    for raw in root.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        g = _member(h5py, root, name, path)
        if not isinstance(g, h5py.Group):
            raise KerasFileError(f"{path}: layer {name[:80]!r} is not a group")
        wn = [w.decode() if isinstance(w, bytes) else str(w) for w in g.attrs.get("weight_names", [])]
        if not wn:  # Keras 1 files may lack weight_names: datasets in sorted order (W, b)
            wn = []
            g.visit(lambda n: wn.append(n) if isinstance(g.get(n, getlink=True), h5py.HardLink)
                    and isinstance(g[n], h5py.Dataset) else None)
        arrays = [_array(h5py, _either(h5py, g, root, w, path), w, path, budget) for w in wn]
        if not arrays:
            continue
        base = wn[0].split("/")[-1]
        if arrays[0].ndim == 4:
            kind = "conv"
        elif len(arrays) == 4 and any("gamma" in w for w in wn):
            kind = "bn"
        elif "alpha" in base or "p_re_lu" in name:
            kind = "prelu"
        else:
            raise SrzooError(f"{path}: layer {name} with weights {wn} is not a layer srzoo converts "
                             f"(convolution, BatchNormalization, PReLU)")
        out.append(Layer(name, kind, arrays))
    return out


def _oihw(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _fold(conv: Layer, bn: Layer) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = bn.weights
    k = gamma / np.sqrt(var + BN_EPS)
    w = _oihw(conv.weights[0]) * k.reshape(-1, 1, 1, 1)
    b = conv.weights[1] if len(conv.weights) > 1 else np.zeros_like(beta)
    return w.astype(np.float32), ((b - mean) * k + beta).astype(np.float32)


def _check_shapes(layers: list[Layer], path: Path) -> None:
    """Kernels 4-D (HWIO) with non-zero sizes up to 64x64, one bias per output channel,
    BatchNorm and PReLU vectors as long as the channels before them."""
    chans = 0
    for lay in layers:
        w = lay.weights
        where = f"{path}: layer {lay.name}"
        if lay.kind == "conv":
            k = w[0].shape
            if min(k) < 1 or k[0] > 64 or k[1] > 64 or k[0] != k[1]:
                raise KerasFileError(f"{where}: kernel of shape {k} (want square HxWxCinxCout, sizes 1..64)")
            if len(w) > 2 or (len(w) == 2 and w[1].shape != (k[3],)):
                raise KerasFileError(f"{where}: bias of shape {w[1].shape if len(w) > 1 else '?'} for "
                                     f"{k[3]} output channels")
            chans = k[3]
        elif lay.kind == "bn":
            if any(a.shape != (chans,) for a in w):
                raise KerasFileError(f"{where}: BatchNormalization of shapes {[a.shape for a in w]} "
                                     f"after {chans} channels")
        elif lay.kind == "prelu":
            if w[0].size not in (1, chans, chans // 4) or w[0].size == 0:
                raise KerasFileError(f"{where}: PReLU with {w[0].size} slopes after {chans} channels")


def detect(layers: list[Layer], path: Path) -> Arch:
    _check_shapes(layers, path)
    kinds = [lay.kind for lay in layers]
    if kinds == ["conv"] * 3 and layers[0].weights[0].shape[2] in (1, 3):
        k1, k3 = layers[0].weights[0].shape[0], layers[2].weights[0].shape[0]
        border = (k1 // 2) + (k3 // 2)
        cin = layers[0].weights[0].shape[2]
        shapes = [lay.weights[0].shape for lay in layers]
        if shapes[1][2] != shapes[0][3] or shapes[2][2] != shapes[1][3] or shapes[2][3] != cin:
            raise KerasFileError(f"{path}: SRCNN kernels {shapes} do not chain (each layer's input "
                                 f"channels are the previous one's outputs, the last gives {cin})")
        # MarkPrecursor/SRCNN-keras trains on cv2.resize's default (bilinear) upsampling:
        # +2.2 dB on Set5 x2 over bicubic pre-upsampling, which scores below plain bicubic
        return Arch("srcnn", 2, in_channels=cin, out_channels=cin, color="y" if cin == 1 else "rgb",
                    pre_upsample="bilinear",
                    params={"layers": "-".join(str(lay.weights[0].shape[0]) for lay in layers), "border": border},
                    forward=forward_srcnn, scales=(2, 3, 4))
    if kinds and kinds[0] == "conv" and "bn" in kinds and "prelu" in kinds and kinds[-1] == "conv":
        ups = [i for i in range(len(layers) - 1) if layers[i].kind == "conv" and layers[i + 1].kind == "prelu"
               and layers[i].weights[0].shape[3] == 4 * layers[0].weights[0].shape[3]]
        blocks = (kinds.count("bn") - 1) // 2
        if not 1 <= len(ups) <= 4:  # the probe is 32 px times the scale: bounded by x16
            raise KerasFileError(f"{path}: {len(ups)} upsampling blocks (x{2 ** len(ups)}); srzoo converts "
                                 "SRGAN generators of x2 to x16")
        return Arch("srresnet", 2 ** len(ups), in_channels=3, out_channels=3,
                    params={"blocks": blocks, "features": layers[0].weights[0].shape[3]},
                    forward=forward_srgan)
    raise SrzooError(f"{path}: Keras layers {kinds[:6]}{'...' if len(kinds) > 6 else ''} are neither SRCNN "
                     f"nor an SRGAN/SRResNet generator")


def forward_srcnn(F: Any, layers: list[Layer], arch: Arch, x: Any) -> Any:
    x = F.pad_reflect(x, arch.params["border"])
    c1, c2, c3 = layers
    x = F.relu(F.conv(x, _oihw(c1.weights[0]), c1.weights[1], pad=0))
    x = F.relu(F.conv(x, _oihw(c2.weights[0]), c2.weights[1]))
    return F.conv(x, _oihw(c3.weights[0]), c3.weights[1], pad=0)


def forward_srgan(F: Any, layers: list[Layer], arch: Arch, x: Any) -> Any:
    it = iter(layers)

    def conv_bn() -> tuple[np.ndarray, np.ndarray]:
        return _fold(next(it), next(it))

    first = next(it)
    x = F.prelu(F.conv(x, _oihw(first.weights[0]), first.weights[1]), next(it).weights[0])
    x1 = x
    for _ in range(arch.params["blocks"]):
        t = F.prelu(F.conv(x, *conv_bn()), next(it).weights[0])
        x = F.add(x, F.conv(t, *conv_bn()))
    x = F.add(x1, F.conv(x, *conv_bn()))
    for _ in range(int(math.log2(arch.scale))):
        c = next(it)
        x = F.prelu(F.pixel_shuffle(F.conv(x, _oihw(c.weights[0]), c.weights[1]), 2, "DCR",
                                    channels=c.weights[0].shape[3]), next(it).weights[0])
    last = next(it)
    return F.affine(F.tanh(F.conv(x, _oihw(last.weights[0]), last.weights[1])), 0.5, 0.5)


class _TFReference:
    """The original Keras layers in TensorFlow (NHWC, HWIO kernels, BatchNorm unfused)."""

    def __init__(self) -> None:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        self.tf = tf
        self.name = f"tensorflow {tf.__version__} (tf.nn on the Keras layers, NHWC)"

    def run(self, arch: Arch, layers: list[Layer], x: np.ndarray) -> np.ndarray:
        tf = self.tf
        t = tf.constant(x.transpose(0, 2, 3, 1))

        def conv(t: Any, lay: Layer, padding: str = "SAME") -> Any:
            return tf.nn.bias_add(tf.nn.conv2d(t, lay.weights[0], 1, padding), lay.weights[1])

        def prelu(t: Any, lay: Layer) -> Any:
            a = lay.weights[0].reshape(-1)
            return tf.maximum(t, 0) + a * tf.minimum(t, 0)

        def bn(t: Any, lay: Layer) -> Any:
            g, b, m, v = lay.weights
            return tf.nn.batch_normalization(t, m, v, b, g, BN_EPS)

        if arch.name == "srcnn":
            p = arch.params["border"]
            t = tf.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
            t = tf.nn.relu(conv(t, layers[0], "VALID"))
            t = tf.nn.relu(conv(t, layers[1]))
            t = conv(t, layers[2], "VALID")
        else:
            it = iter(layers)
            t = prelu(conv(t, next(it)), next(it))
            t1 = t
            for _ in range(arch.params["blocks"]):
                u = prelu(bn(conv(t, next(it)), next(it)), next(it))
                t = t + bn(conv(u, next(it)), next(it))
            t = t1 + bn(conv(t, next(it)), next(it))
            for _ in range(int(math.log2(arch.scale))):
                t = prelu(tf.nn.depth_to_space(conv(t, next(it)), 2), next(it))
            t = (tf.tanh(conv(t, next(it))) + 1) / 2
        return t.numpy().transpose(0, 3, 1, 2)


def reference(arch: Arch, layers: list[Layer]) -> tuple[Any, str]:
    try:
        tfr = _TFReference()
        return (lambda x: tfr.run(arch, layers, x)), tfr.name
    except ImportError:
        ops = NumpyOps()
        return (lambda x: ops.output(arch.forward(ops, layers, arch, ops.input(x)))), \
            "numpy reference (srzoo.convert.reference.NumpyOps; TensorFlow not installed)"


class KerasToONNX:
    name = "keras-onnx"
    version = "2"
    source_formats = frozenset({"keras-h5"})

    @guarded("Keras weight file")
    def inspect(self, source: Path, scale: int | None = None, arch: str | None = None) -> dict[str, Any]:
        layers = read_layers(Path(source))
        a = detect(layers, Path(source))
        return {"format": "keras-h5", "arch": a.describe(), "scale": scale or a.scale,
                "scales": list(a.scales) or [a.scale], "color": a.color, "pre_upsample": a.pre_upsample,
                "tensors": sum(len(lay.weights) for lay in layers),
                "params": int(sum(w.size for lay in layers for w in lay.weights))}

    @guarded("Keras weight file")
    def convert(self, source: Path, entry: Any, options: dict[str, Any]) -> Conversion:
        layers = read_layers(Path(source))
        a = detect(layers, Path(source))
        if a.pre_upsample:  # the network itself is scale-free: the entry's scale is the pipeline's
            a.scale = options.get("scale") or (entry.scale if entry is not None else None) or a.scale
        onnx_bytes, params = build(a.forward, layers, a, a.name)
        ref, ref_name = reference(a, layers)
        size = 32
        err = compare(onnx_bytes, ref, a.in_channels, size=size, tol=float(options.get("tolerance", 1e-3)),
                      what=str(source))
        info = {"opset": OPSET, "arch": a.name, "scale": a.scale, "params": params, "color": a.color,
                "pre_upsample": a.pre_upsample, **a.params}
        return Conversion(onnx=onnx_bytes, info=info, probe_error=err,
                          checked_against=f"{ref_name} on a {size}x{size} probe",
                          tools=tool_versions("h5py", "tensorflow"))


CONVERTER = register(KerasToONNX())
