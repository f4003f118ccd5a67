"""An EDSR-shaped stand-in TensorFlow GraphDef, written with a tiny protobuf encoder.

The real EDSR files (38.5 MB each) are not mirrored, so the EDSR path is tested
with a graph built here that has the shape MODELS.md describes: a 3-channel
NHWC float input named ``IteratorGetNext`` (mean-subtracted BGR), convolutions
with a residual block, and a ``DepthToSpace`` pixel shuffle by ``scale``. A
skip path copies each input colour to every sub-pixel, so the output is a
nearest-neighbour upscale plus a small learned-looking texture: values stay in
range, and every layer matters to the result.

No TensorFlow or protobuf package is needed: the few message types of
``tensorflow/core/framework/*.proto`` used here are encoded by hand.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

DT_FLOAT = 1


# ---- protobuf wire format ---------------------------------------------------------
def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, n: int) -> bytes:
    return _key(field, 0) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return _key(field, 2) + _varint(len(data)) + data


def _packed_ints(field: int, values: list[int]) -> bytes:
    return _bytes(field, b"".join(_varint(v) for v in values))


# ---- tensorflow messages ----------------------------------------------------------
def _shape(dims: list[int]) -> bytes:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
    return b"".join(_bytes(2, _int(1, d)) for d in dims)


def _tensor(arr: np.ndarray) -> bytes:  # TensorProto: dtype=1, tensor_shape=2, tensor_content=4
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return _int(1, DT_FLOAT) + _bytes(2, _shape(list(arr.shape))) + _bytes(4, arr.tobytes())


# AttrValue: list=1 (ListValue: s=2, i=3 packed), s=2, i=3, f=4, b=5, type=6, shape=7, tensor=8
def _attr_type(t: int) -> bytes:
    return _int(6, t)


def _attr_s(s: str) -> bytes:
    return _bytes(2, s)


def _attr_i(i: int) -> bytes:
    return _int(3, i)


def _attr_ints(values: list[int]) -> bytes:
    return _bytes(1, _packed_ints(3, values))


def _attr_shape(dims: list[int]) -> bytes:
    return _bytes(7, _shape(dims))


def _attr_tensor(arr: np.ndarray) -> bytes:
    return _bytes(8, _tensor(arr))


def _node(name: str, op: str, inputs: list[str], attrs: dict[str, bytes]) -> bytes:
    # NodeDef: name=1, op=2, input=3 (repeated), attr=5 (map<string, AttrValue>)
    msg = _bytes(1, name) + _bytes(2, op) + b"".join(_bytes(3, i) for i in inputs)
    for k in sorted(attrs):
        msg += _bytes(5, _bytes(1, k) + _bytes(2, attrs[k]))
    return msg


def build_edsr_standin(scale: int, features: int = 8, seed: int = 0) -> bytes:
    """Serialized GraphDef of a small EDSR-like network for ``scale`` (2, 3 or 4)."""
    rng = np.random.default_rng(seed + scale)
    nodes: list[bytes] = []
    conv_attrs = {"T": _attr_type(DT_FLOAT), "strides": _attr_ints([1, 1, 1, 1]),
                  "padding": _attr_s("SAME"), "data_format": _attr_s("NHWC"),
                  "dilations": _attr_ints([1, 1, 1, 1])}

    def const(name: str, arr: np.ndarray) -> str:
        nodes.append(_node(name, "Const", [], {"dtype": _attr_type(DT_FLOAT), "value": _attr_tensor(arr)}))
        return name

    def conv(name: str, x: str, cin: int, cout: int, k: int = 3, std: float = 0.05,
             w: np.ndarray | None = None) -> str:
        if w is None:
            w = (rng.standard_normal((k, k, cin, cout)) * std).astype(np.float32)  # HWIO
        b = (rng.standard_normal(cout) * std).astype(np.float32)
        const(name + "/weights", w)
        const(name + "/biases", b)
        nodes.append(_node(name + "/Conv2D", "Conv2D", [x, name + "/weights"], conv_attrs))
        nodes.append(_node(name + "/BiasAdd", "BiasAdd", [name + "/Conv2D", name + "/biases"],
                           {"T": _attr_type(DT_FLOAT), "data_format": _attr_s("NHWC")}))
        return name + "/BiasAdd"

    def relu(name: str, x: str) -> str:
        nodes.append(_node(name, "Relu", [x], {"T": _attr_type(DT_FLOAT)}))
        return name

    def add(name: str, a: str, b: str) -> str:
        nodes.append(_node(name, "Add", [a, b], {"T": _attr_type(DT_FLOAT)}))
        return name

    nodes.append(_node("IteratorGetNext", "Placeholder", [],
                       {"dtype": _attr_type(DT_FLOAT), "shape": _attr_shape([1, -1, -1, 3])}))
    head = conv("conv1", "IteratorGetNext", 3, features, std=0.02)
    r = relu("res1/relu", conv("res1/conv1", head, features, features))
    r = conv("res1/conv2", r, features, features)
    body = add("res1/add", head, r)
    tail = conv("upsample/conv", body, features, 3 * scale * scale, std=0.2)
    # skip path: every sub-pixel of colour c starts as the input's colour c
    w = np.zeros((3, 3, 3, 3 * scale * scale), np.float32)
    for sub in range(scale * scale):
        for c in range(3):
            w[1, 1, c, sub * 3 + c] = 1.0
    skip = conv("skip", "IteratorGetNext", 3, 3 * scale * scale, w=w, std=0.0)
    out = add("upsample/add", tail, skip)
    nodes.append(_node("NHWC_output", "DepthToSpace", [out],
                       {"T": _attr_type(DT_FLOAT), "block_size": _attr_i(scale),
                        "data_format": _attr_s("NHWC")}))
    # GraphDef: node=1 (repeated), versions=4 (VersionDef producer=1)
    return b"".join(_bytes(1, n) for n in nodes) + _bytes(4, _int(1, 27))


def write_standins(folder: Path, scales: tuple[int, ...] = (2, 3, 4), *, name: str = "edsr",
                   io: dict | None = None) -> Path:
    """Write ``EDSR-standin_x{s}.pb`` files and a manifest registering them as
    ``name``; returns the manifest path. The urls are never used when the
    folder is on SRZOO_MIRROR (SRZOO_MIRROR_ONLY=1 in tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    io = io or {"color": "bgr", "range": 255.0, "mean": [103.1545782, 111.561547, 114.35629928],
                "algorithm": "edsr", "input": "IteratorGetNext", "export_layout": "nchw"}
    lines = ["schema = 1", "", "[defaults]", f'name = "{name}"', 'format = "tf-graphdef"',
             'license = "Apache-2.0"', 'description = "EDSR-shaped stand-in built by tests/standin.py"',
             "", "[defaults.io]"]
    for k, v in io.items():
        if v is None or v == () or v == []:
            continue
        if isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        elif isinstance(v, (list, tuple)):
            lines.append(f"{k} = [{', '.join(repr(x) if not isinstance(x, str) else chr(34) + x + chr(34) for x in v)}]")
        else:
            lines.append(f"{k} = {float(v) if isinstance(v, float) else v}")
    for s in scales:
        data = build_edsr_standin(s)
        fname = f"EDSR-standin_x{s}.pb"
        (folder / fname).write_bytes(data)
        lines += ["", "[[model]]", f"scale = {s}", f'file = "{fname}"', f"size = {len(data)}",
                  f'sha256 = "{hashlib.sha256(data).hexdigest()}"',
                  f'urls = ["https://example.invalid/srzoo-tests/{fname}"]']
    manifest = folder / "edsr-standin.toml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


# ---- ONNX stand-in -------------------------------------------------------------------
def _onnx_tensor(name: str, arr: np.ndarray) -> bytes:
    # TensorProto: dims=1 (packed int64), data_type=2 (FLOAT=1), name=8, raw_data=9
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return _packed_ints(1, list(arr.shape)) + _int(2, 1) + _bytes(8, name) + _bytes(9, arr.tobytes())


def _onnx_value_info(name: str, dims: list[int | str]) -> bytes:
    # ValueInfoProto: name=1, type=2 {tensor_type=1 {elem_type=1, shape=2 {dim=1 {value=1 | param=2}}}}
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, 1) + _bytes(2, shape)))


def _onnx_node(op: str, inputs: list[str], outputs: list[str], name: str, attrs: bytes = b"") -> bytes:
    # NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, name) + _bytes(4, op) + attrs)


def _onnx_attr_ints(name: str, values: list[int]) -> bytes:
    # AttributeProto: name=1, ints=8, type=20 (INTS=7)
    return _bytes(5, _bytes(1, name) + b"".join(_int(8, v) for v in values) + _int(20, 7))


def _onnx_attr_int(name: str, value: int) -> bytes:
    return _bytes(5, _bytes(1, name) + _int(3, value) + _int(20, 2))  # i=3, type INT=2


def onnx_standin_weights(scale: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Conv weights (OIHW) and bias of the ONNX stand-in: a copy of each colour to
    every sub-pixel plus a small random 3x3 texture."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((3 * scale * scale, 3, 3, 3)) * 0.05).astype(np.float32)
    for sub in range(scale * scale):
        for c in range(3):
            w[sub * 3 + c, c, 1, 1] += 1.0  # DCR DepthToSpace: channel = sub * C + c
    b = (rng.standard_normal(3 * scale * scale) * 0.02).astype(np.float32)
    return w, b


def build_onnx_standin(scale: int) -> bytes:
    """Serialized ONNX model: NCHW RGB input ``input`` -> Conv 3x3 -> DepthToSpace(DCR)."""
    w, b = onnx_standin_weights(scale)
    nodes = (_bytes(1, _onnx_node("Conv", ["input", "W", "B"], ["features"], "conv",
                                  _onnx_attr_ints("kernel_shape", [3, 3]) + _onnx_attr_ints("pads", [1, 1, 1, 1])))
             + _bytes(1, _onnx_node("DepthToSpace", ["features"], ["output"], "d2s",
                                    _onnx_attr_int("blocksize", scale) + _bytes(5, _bytes(1, "mode") + _bytes(4, "DCR") + _int(20, 3)))))
    graph = (nodes + _bytes(2, "standin") + _bytes(5, _onnx_tensor("W", w)) + _bytes(5, _onnx_tensor("B", b))
             + _bytes(11, _onnx_value_info("input", [1, 3, "height", "width"]))
             + _bytes(12, _onnx_value_info("output", [1, 3, "oh", "ow"])))
    # ModelProto: ir_version=1, producer_name=2, graph=7, opset_import=8 {domain=1, version=2}
    return _int(1, 7) + _bytes(2, "srzoo-tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))


def write_manifest(manifest: Path, model: Path, name: str, scale: int, **io: Any) -> Path:
    """A one-model manifest for the ONNX file ``model`` (its size and sha256 filled
    in; an unreachable URL, so tests serve the file from a mirror folder) with
    the given ``io`` keys; returns ``manifest``."""
    data = model.read_bytes()
    lines = ["schema = 1", "", "[[model]]", f'name = "{name}"', f"scale = {scale}", 'format = "onnx"',
             'license = "MIT"', f'file = "{model.name}"', f"size = {len(data)}",
             f'sha256 = "{hashlib.sha256(data).hexdigest()}"',
             f'urls = ["https://example.invalid/srzoo-tests/{model.name}"]', "", "[model.io]"]
    lines += [f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in io.items()]
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def write_onnx_standin(folder: Path, scale: int = 2, *, name: str = "onnx-standin",
                       mean: tuple[float, float, float] = (0.45, 0.5, 0.4)) -> Path:
    """Write the ONNX stand-in and a manifest (rgb, range 1, mean, nchw); returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"standin_x{scale}.onnx"
    model.write_bytes(build_onnx_standin(scale))
    return write_manifest(folder / "onnx-standin.toml", model, name, scale, color="rgb", range=1.0,
                          mean=mean, layout="nchw", input="input", outputs=["output"])


# ---- pytest fixtures (imported by the test modules that need the stand-in) ---------
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture(scope="session")
    def _standin_dir(tmp_path_factory: "pytest.TempPathFactory") -> Path:
        folder = tmp_path_factory.mktemp("edsr-standin")
        write_standins(folder)
        return folder

    @pytest.fixture
    def edsr_standin(models_env: Path, mirror, _standin_dir: Path, monkeypatch) -> Path:
        """Registers the stand-in as model ``edsr`` (x2, x3, x4) through SRZOO_REGISTRY,
        its files served from a local mirror folder after the HTTP mirror."""
        monkeypatch.setenv("SRZOO_REGISTRY", str(_standin_dir / "edsr-standin.toml"))
        monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{_standin_dir}")
        return _standin_dir


if __name__ == "__main__":  # pragma: no cover - manual check
    import sys

    import cv2

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "standin")
    m = write_standins(out)
    print(m.read_text())
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(out / "EDSR-standin_x2.pb"))
    sr.setModel("edsr", 2)
    print(sr.upsample(np.full((5, 7, 3), 128, np.uint8)).shape)
