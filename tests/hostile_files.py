"""Builders of crafted model files for the hostile-file tests and fuzzers.

Pickles are written opcode by opcode (protocol 2), so a test says exactly what
the file asks for (``torch._utils._rebuild_tensor_v2`` with a stride of 0...)
without PyTorch and without any of it being importable here.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

#: ../shared/models beside the project, or under SRZOO_SHARED (as tests/conftest.py reads it)
SHARED_MODELS = Path(os.environ.get("SRZOO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "models"


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(frozen=True)
class Call:
    fn: Global
    args: tuple


@dataclass(frozen=True)
class Pid:
    """A persistent id (BINPERSID): how torch pickles refer to storages."""
    value: Any


@dataclass(frozen=True)
class Rec:
    """An instance of class ``module.name`` with ``state``: NEWOBJ then BUILD, as torch pickles
    a whole nn.Module."""
    module: str
    name: str
    state: Any


def _enc(x: Any) -> bytes:
    if isinstance(x, Global):
        return b"c" + x.module.encode() + b"\n" + x.name.encode() + b"\n"
    if isinstance(x, Rec):
        return _enc(Global(x.module, x.name)) + b")\x81" + _enc(x.state) + b"b"
    if isinstance(x, Call):
        return _enc(x.fn) + _enc(tuple(x.args)) + b"R"
    if isinstance(x, Pid):
        return _enc(x.value) + b"Q"
    if x is None:
        return b"N"
    if x is True:
        return b"\x88"
    if x is False:
        return b"\x89"
    if isinstance(x, int):
        n = (x.bit_length() + 8) // 8 if x else 0
        return b"\x8a" + bytes([n]) + x.to_bytes(n, "little", signed=True)
    if isinstance(x, float):
        return b"G" + struct.pack(">d", x)
    if isinstance(x, str):
        b = x.encode()
        return b"X" + struct.pack("<I", len(b)) + b
    if isinstance(x, tuple):
        return b"(" + b"".join(_enc(v) for v in x) + b"t"
    if isinstance(x, list):
        return b"](" + b"".join(_enc(v) for v in x) + b"e"
    if isinstance(x, dict):
        return b"}(" + b"".join(_enc(k) + _enc(v) for k, v in x.items()) + b"u"
    raise TypeError(type(x))


def pickle_bytes(obj: Any) -> bytes:
    return b"\x80\x02" + _enc(obj) + b"."


def nested_pickle(depth: int, leaf: Any = 1) -> bytes:
    """{"a": {"a": ... leaf}} ``depth`` dicts deep, written iteratively."""
    return b"\x80\x02" + (b'}X\x01\x00\x00\x00a' * depth) + _enc(leaf) + (b"s" * depth) + b"."


REBUILD = Global("torch._utils", "_rebuild_tensor_v2")
FLOAT = Global("torch", "FloatStorage")


def tensor(key: str = "0", numel: int = 4, offset: Any = 0, size: Any = (2, 2), stride: Any = (2, 1),
           stype: Global = FLOAT, pid: Any = None) -> Call:
    """What torch pickles for one tensor over storage ``key``."""
    p = pid if pid is not None else ("storage", stype, key, "cpu", numel)
    return Call(REBUILD, (Pid(p), offset, size, stride, False, Call(Global("collections", "OrderedDict"), ())))


def torch_zip(obj: Any, storages: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip checkpoint (torch >= 1.6 layout) holding ``obj``'s pickle and the storages."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        z.writestr("archive/data.pkl", pickle_bytes(obj) if not isinstance(obj, bytes) else obj)
        z.writestr("archive/byteorder", "little")
        for k, v in storages.items():
            z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def valid_pth() -> bytes:
    """A 2x2 float tensor 'w' = [[1, 2], [3, 4]]: the minimal valid zip checkpoint."""
    return torch_zip({"w": tensor()}, {"0": np.arange(1, 5, dtype="<f4").tobytes()})


def legacy_pth(obj: Any, storages: dict[str, np.ndarray]) -> bytes:
    """The pre-1.6 layout: magic, protocol, sys info, the object, storage keys, then each
    storage as an 8-byte count and its bytes."""
    out = pickle_bytes(0x1950A86A20F9469CFC6C) + pickle_bytes(1001) + pickle_bytes({"little_endian": True})
    out += pickle_bytes(obj) + pickle_bytes(list(storages))
    for a in storages.values():
        out += struct.pack("<q", a.size) + a.astype("<f4").tobytes()
    return out


def zip_member_offsets(data: bytes, name: str) -> tuple[int, int]:
    """(local header offset, central directory record offset) of ``name`` in a zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        local = z.getinfo(name).header_offset
    enc = name.encode()
    eocd = data.rindex(b"PK\x05\x06")
    pos = struct.unpack("<I", data[eocd + 16:eocd + 20])[0]  # start of the central directory
    while True:
        n = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + n] == enc:
            return local, pos
        m, c = struct.unpack("<HH", data[pos + 30:pos + 34])
        pos += 46 + n + m + c


def patch_zip(data: bytes, name: str, *, flags: int | None = None, method: int | None = None,
              size: int | None = None, compressed: int | None = None) -> bytes:
    """``data`` with the general-purpose flags, compression method, uncompressed or compressed
    size of member ``name`` rewritten in both its local header and its central directory record."""
    b = bytearray(data)
    local, central = zip_member_offsets(data, name)
    if flags is not None:
        struct.pack_into("<H", b, local + 6, flags)
        struct.pack_into("<H", b, central + 8, flags)
    if method is not None:
        struct.pack_into("<H", b, local + 8, method)
        struct.pack_into("<H", b, central + 10, method)
    if size is not None:
        struct.pack_into("<I", b, local + 22, size)
        struct.pack_into("<I", b, central + 24, size)
    if compressed is not None:
        struct.pack_into("<I", b, local + 18, compressed)
        struct.pack_into("<I", b, central + 20, compressed)
    return bytes(b)


# ---------------------------------------------------------------- ONNX
def onnx_conv_d2s(folder: Path, name: str = "model.onnx", *, location: str | None = None,
                  scale: int = 2, write_data: bool = True) -> tuple[Path, np.ndarray, np.ndarray]:
    """An x``scale`` model (Conv 3x3 3 -> 3*scale^2, DepthToSpace DCR). With ``location``
    its weight tensor W keeps its data in that external file (written beside the model
    when ``write_data``). Returns (model path, W, B)."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(7)
    c = 3 * scale * scale
    w = (rng.standard_normal((c, 3, 3, 3)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(c) * 0.1).astype(np.float32)
    wt = helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.tobytes(), raw=True)
    if location is not None:
        if write_data:
            (folder / location).parent.mkdir(parents=True, exist_ok=True)
            (folder / location).write_bytes(w.tobytes())
        wt.ClearField("raw_data")
        wt.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", str(w.nbytes))):
            e = wt.external_data.add()
            e.key, e.value = k, v
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W", "B"], ["f"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["f"], ["output"], blocksize=scale, mode="DCR")],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "oh", "ow"])],
        [wt, helper.make_tensor("B", TensorProto.FLOAT, b.shape, b.tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path, w, b


def onnx_manifest(folder: Path, model: Path, name: str, scale: int = 2) -> Path:
    """A user manifest running ``model`` from where it lies (``path =``)."""
    import hashlib

    data = model.read_bytes()
    m = folder / f"{name}.toml"
    m.write_text(f'schema = 1\n\n[[model]]\nname = "{name}"\nscale = {scale}\nformat = "onnx"\n'
                 f'license = "MIT"\npath = "{model}"\nsize = {len(data)}\n'
                 f'sha256 = "{hashlib.sha256(data).hexdigest()}"\n\n[model.io]\ncolor = "rgb"\n'
                 f'range = 1.0\nlayout = "nchw"\n')
    return m


def numpy_conv_d2s(img_rgb01: np.ndarray, w: np.ndarray, b: np.ndarray, scale: int) -> np.ndarray:
    """The reference of :func:`onnx_conv_d2s` in numpy (HWC float in, HWC float out)."""
    h, wd, _ = img_rgb01.shape
    xp = np.pad(img_rgb01, ((1, 1), (1, 1), (0, 0)))
    feats = np.zeros((h, wd, w.shape[0]), np.float64) + b
    for dy in range(3):
        for dx in range(3):
            feats += xp[dy:dy + h, dx:dx + wd, :] @ w[:, :, dy, dx].T
    return feats.reshape(h, wd, scale, scale, 3).transpose(0, 2, 1, 3, 4).reshape(h * scale, wd * scale, 3)


def refusal(call: Callable[[Path], Any], path: Path, exc: type[Exception], *words: str) -> str:
    """``call(path)`` raises ``exc`` with one line that names ``path`` and holds
    every one of ``words``; returns the line."""
    with pytest.raises(exc) as e:
        call(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg
