"""A reader for the few ``tensorflow/core/framework/*.proto`` messages a frozen
inference graph uses (GraphDef, NodeDef, AttrValue, TensorProto,
TensorShapeProto), decoding the protobuf wire format by hand: no TensorFlow,
no protobuf package. Shared by the ONNX builder (:mod:`.graphdef`) and the
NumPy evaluator (:mod:`.graphdef_eval`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srzoo.errors import ModelLoadError
from srzoo.hub.untrusted import max_model_bytes

# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}


class GraphDefError(ModelLoadError):
    """A .pb file is not a GraphDef this reader understands."""


# --------------------------------------------------------------------------- wire format
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphDefError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise GraphDefError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of every field of one message; bytes for
    length-delimited fields, int for varints and fixed-width fields."""
    out = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise GraphDefError("truncated field")
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise GraphDefError(f"unsupported wire type {wire}")
        if pos > end:
            raise GraphDefError("truncated message")
        out.append((num, wire, val))
    return out


def _text(val: Any, errors: str = "strict") -> str:
    """A string field's value; a string field sent as a number (wrong wire type) is refused."""
    if not isinstance(val, bytes):
        raise GraphDefError("a text field holds a number (wrong protobuf wire type)")
    return val.decode(errors=errors)


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _packed_varints(data: bytes) -> list[int]:
    vals, pos = [], 0
    while pos < len(data):
        v, pos = _varint(data, pos)
        vals.append(_signed(v))
    return vals


# --------------------------------------------------------------------------- messages
def _shape(buf: bytes) -> list[int]:
    """TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}; unknown dims are -1."""
    dims = []
    for num, _, val in _fields(buf):
        if num == 2:
            size = 0
            for n2, _, v2 in _fields(val):
                if n2 == 1:
                    size = _signed(v2)
            dims.append(size)
    return dims


def _tensor(buf: bytes) -> np.ndarray:
    """TensorProto: dtype=1, tensor_shape=2, tensor_content=4, float_val=5,
    int_val=7, int64_val=10 (packed or not)."""
    dtype, dims, content = 1, [], None
    floats: list[float] = []
    ints: list[int] = []
    for num, wire, val in _fields(buf):
        if num == 1:
            dtype = val
        elif num == 2:
            dims = _shape(val)
        elif num == 4:
            content = val
        elif num == 5:
            floats.extend(struct.unpack(f"<{len(val) // 4}f", val)) if wire == 2 else \
                floats.append(struct.unpack("<f", val)[0])
        elif num in (7, 10):
            ints.extend(_packed_varints(val)) if wire == 2 else ints.append(_signed(val))
    np_dtype = _DTYPES.get(dtype)
    if np_dtype is None:
        raise GraphDefError(f"unsupported tensor dtype {dtype}")
    if len(dims) > 32 or any(d < 0 for d in dims):
        raise GraphDefError(f"constant tensor of shape {dims[:8]}: sizes must be >= 0")
    count = 1
    for d in dims:  # Python ints: no int64 wrap-around
        count *= d
    if count * np.dtype(np_dtype).itemsize > max_model_bytes():
        raise GraphDefError(f"constant tensor of shape {dims[:8]} needs more than SRZOO_MAX_MODEL_BYTES")
    if content is not None and len(content) % np.dtype(np_dtype).itemsize:
        raise GraphDefError(f"tensor content of {len(content)} bytes is not a whole number of values")
    if content is not None:
        arr = np.frombuffer(content, dtype=np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
    else:
        vals = floats if np_dtype in (np.float32, np.float64) else ints
        arr = np.asarray(vals, dtype=np_dtype)
        if arr.size == 1 and count > 1:  # TF stores splat constants as one value
            arr = np.full(count, arr[0], dtype=np_dtype)
        elif arr.size == 0:
            arr = np.zeros(count, dtype=np_dtype)
    if arr.size != count:
        raise GraphDefError(f"tensor of shape {dims} holds {arr.size} values")
    return arr.reshape(dims)


def _attr(buf: bytes) -> Any:
    """AttrValue: list=1, s=2, i=3, f=4, b=5, type=6, shape=7, tensor=8."""
    for num, wire, val in _fields(buf):
        if num == 1:  # ListValue: s=2, i=3 (packed), f=4 (packed), type=6
            items: list[Any] = []
            for n2, w2, v2 in _fields(val):
                if n2 == 2:
                    items.append(_text(v2))
                elif n2 == 3:
                    items.extend(_packed_varints(v2) if w2 == 2 else [_signed(v2)])
                elif n2 == 4:
                    items.extend(struct.unpack(f"<{len(v2) // 4}f", v2) if w2 == 2
                                 else struct.unpack("<f", v2))
                elif n2 == 6:
                    items.append(v2)
            return items
        if num == 2:
            return _text(val, errors="replace")
        if num == 3:
            return _signed(val)
        if num == 4:
            return struct.unpack("<f", val)[0]
        if num in (5, 6):
            return val
        if num == 7:
            return _shape(val)
        if num == 8:
            return _tensor(val)
    return None


@dataclass
class Node:
    """One NodeDef: name=1, op=2, input=3, attr=5 (map<string, AttrValue>)."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def read_graphdef(data: bytes) -> list[Node]:
    """The nodes of a serialized GraphDef, in file order. Malformed bytes (bad UTF-8 names,
    short fixed-width values, oversized constants...) raise :class:`GraphDefError`."""
    try:
        return _read_graphdef(data)
    except (struct.error, UnicodeDecodeError, ValueError, OverflowError, MemoryError, TypeError,
            AttributeError) as e:  # a field of the wrong wire type reaching struct/numpy
        raise GraphDefError(f"malformed GraphDef ({type(e).__name__}: {str(e)[:100]})") from None


def _read_graphdef(data: bytes) -> list[Node]:
    nodes = []
    held = 0
    for num, wire, val in _fields(data):
        if num != 1 or wire != 2:
            continue
        node = Node("", "")
        for n2, _, v2 in _fields(val):
            if n2 == 1:
                node.name = _text(v2)
            elif n2 == 2:
                node.op = _text(v2)
            elif n2 == 3:
                node.inputs.append(_text(v2))
            elif n2 == 5:
                key, value = "", None
                for n3, _, v3 in _fields(v2):
                    if n3 == 1:
                        key = _text(v3)
                    elif n3 == 2:
                        value = _attr(v3)
                node.attrs[key] = value
                held += value.nbytes if isinstance(value, np.ndarray) else 0
                if held > max_model_bytes():
                    raise GraphDefError("its constants need more than SRZOO_MAX_MODEL_BYTES")
        if not node.name or not node.op:
            raise GraphDefError("a node without a name or op")
        nodes.append(node)
    if not nodes:
        raise GraphDefError("no nodes (not a TensorFlow GraphDef)")
    return nodes


def _clean(name: str) -> str:
    """A node input reference without control-dependency mark and output index 0."""
    name = name.lstrip("^")
    return name[:-2] if name.endswith(":0") else name


__all__ = ["GraphDefError", "Node", "read_graphdef"]
