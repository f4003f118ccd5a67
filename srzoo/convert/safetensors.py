"""``.safetensors`` files, read without PyTorch (and without the ``safetensors`` package).

The format: 8 bytes little-endian u64 ``N``, then ``N`` bytes of JSON mapping
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the end of the header; an optional ``__metadata__`` of
strings), then the raw little-endian tensor bytes. Everything is checked
before a byte is interpreted: header size, JSON, dtypes, that each tensor's
byte range matches its shape and lies inside the file, and that ranges do
not overlap. Nothing in the file is executed. A converter for
``format = "safetensors"`` hands the state dict to :mod:`srzoo.convert`'s
architecture detection and ONNX builder, the same as a ``.pth``.
"""

from __future__ import annotations

import json
import re
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from srzoo.convert import Conversion, register
from srzoo.convert import arch as archs
from srzoo.convert.check import convert_arch
from srzoo.errors import ModelLoadError
from srzoo.hub.untrusted import Budget, checked_numel, guarded, json_loads, reading, regular_file

#: header bigger than this is refused (the spec caps it at 100 MB)
MAX_HEADER = 100 << 20
_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"), "BF16": np.dtype("<u2"),  # bf16: the top half of a float32
}


class SafetensorsError(ModelLoadError):
    """A ``.safetensors`` file is malformed; the message names the file and what is wrong."""


def read_header(path: str | Path) -> tuple[dict[str, Any], int]:
    """The parsed JSON header and the offset where tensor data starts."""
    path = Path(path)
    size = regular_file(path, "safetensors file")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{path}: {size} bytes, too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} does not fit the file ({size} bytes); "
                                   "not a safetensors file or truncated")
        raw = f.read(n)
    header = json_loads(raw, path, "the safetensors header", SafetensorsError)
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    return header, 8 + n


def load(path: str | Path, *, float32: bool = True) -> "OrderedDict[str, np.ndarray]":
    """Every tensor of the file, in file order; floating tensors as float32 when ``float32``."""
    path = Path(path)
    with reading(path, "safetensors file"):
        return _load(path, float32)


def _load(path: Path, float32: bool) -> "OrderedDict[str, np.ndarray]":
    header, start = read_header(path)
    data_len = path.stat().st_size - start
    budget = Budget(path, "the tensors")
    entries = []
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(t, dict) or not {"dtype", "shape", "data_offsets"} <= set(t):
            raise SafetensorsError(f"{path}: tensor {name!r}: needs dtype, shape and data_offsets")
        dt = _DTYPES.get(t["dtype"]) if isinstance(t["dtype"], str) else None
        if dt is None:
            raise SafetensorsError(f"{path}: tensor {name!r}: dtype {t['dtype']!r} is not supported "
                                   f"(srzoo reads {', '.join(_DTYPES)})")
        shape, offs = t["shape"], t["data_offsets"]
        if (not isinstance(shape, list) or not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int for o in offs)):  # noqa: E721 - not bool
            raise SafetensorsError(f"{path}: tensor {name!r}: malformed shape or data_offsets")
        begin, end = offs
        # Python ints: [2**62, 4] cannot wrap around to a small byte count
        want = checked_numel(shape, str(path), f"tensor {name!r}") * dt.itemsize
        if not 0 <= begin <= end <= data_len or end - begin != want:
            raise SafetensorsError(f"{path}: tensor {name!r}: bytes {begin}..{end} do not hold "
                                   f"{t['dtype']}{shape} inside the {data_len} data bytes")
        budget.take(want, f"tensor {name!r}")
        entries.append((begin, end, name, t["dtype"], dt, tuple(shape)))
    entries.sort()
    for a, b in zip(entries, entries[1:]):
        if b[0] < a[1]:
            raise SafetensorsError(f"{path}: tensors {a[2]!r} and {b[2]!r} overlap")
    blob = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(data_len,)) if data_len else \
        np.zeros(0, np.uint8)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for begin, end, name, tag, dt, shape in entries:
        arr = np.frombuffer(blob[begin:end].tobytes(), dtype=dt).reshape(shape)
        if tag == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        if float32 and arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        out[name] = arr
    del blob
    return out


def save(path: str | Path, tensors: "dict[str, np.ndarray]", metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as a ``.safetensors`` file (names sorted, 8-byte aligned header)."""
    rev = {np.dtype(v): k for k, v in _DTYPES.items() if k != "BF16"}
    header: dict[str, Any] = {}
    chunks = []
    pos = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        arr = arr.astype(arr.dtype.newbyteorder("<")) if arr.dtype.byteorder == ">" else arr
        tag = rev.get(arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype)
        if tag is None:
            raise SafetensorsError(f"tensor {name!r}: dtype {arr.dtype} cannot be written")
        b = arr.tobytes()
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [pos, pos + len(b)]}
        chunks.append(b)
        pos += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in chunks:
            f.write(b)


class SafetensorsToONNX:
    """Converter for ``format = "safetensors"``: the tensors go through the same
    architecture detection, ONNX builder and verification as a ``.pth``."""

    name = "safetensors-onnx"
    version = "1"
    source_formats = frozenset({"safetensors"})

    @staticmethod
    def _tensors(source: Path) -> "OrderedDict[str, np.ndarray]":
        sd = load(source)
        # the file stores names sorted as strings; give them in the modules' order (body.2 before body.10)
        return OrderedDict(sorted(sd.items(), key=lambda kv: [int(p) if p.isdigit() else p
                                                              for p in re.split(r"(\d+)", kv[0])]))

    @guarded("safetensors file")
    def inspect(self, source: Path, scale: int | None = None, arch: str | None = None) -> dict[str, Any]:
        """What the file is (architecture, scales, colour), as the ``.pth`` converter says it."""
        sd = self._tensors(source)
        a = archs.detect(sd, scale, arch)
        return {"format": "safetensors", "arch": a.describe(), "scale": a.scale,
                "scales": list(a.scales) or [a.scale], "color": a.color, "pre_upsample": a.pre_upsample,
                "tensors": len(sd), "params": int(sum(v.size for v in sd.values()))}

    @guarded("safetensors file")
    def convert(self, source: Path, entry: Any, options: dict[str, Any]) -> Conversion:
        sd = self._tensors(source)
        scale = options.get("scale") or (entry.scale if entry is not None else None)
        a = archs.detect(sd, scale, options.get("arch"))
        return convert_arch(sd, a, str(source), tol=float(options.get("tolerance", 1e-3)))


CONVERTER = register(SafetensorsToONNX())


__all__ = ["CONVERTER", "SafetensorsError", "SafetensorsToONNX", "load", "read_header", "save"]
