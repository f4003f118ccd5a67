"""Crafted .safetensors headers and TensorFlow GraphDef .pb files (edited real ones):
one ModelLoadError line naming the file, nothing allocated from a lying header."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import hostile_files as hf
from srzoo.convert import safetensors as st
from srzoo.convert.graphdef import GraphDefToONNX
from srzoo.convert.graphdef_proto import GraphDefError, read_graphdef
from srzoo.errors import ModelLoadError, SrzooError
from srzoo.hub.manifest import IOSpec, ModelEntry


def craft(tmp_path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = tmp_path / "crafted.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return p


def refused(path: Path, *words: str) -> str:
    return hf.refusal(st.load, path, ModelLoadError, *words)


def test_valid_file_round_trips(tmp_path):
    p = tmp_path / "ok.safetensors"
    st.save(p, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    assert st.load(p)["w"].tolist() == [[0, 1, 2], [3, 4, 5]]


HEADERS = {
    # int64 product of [2**62, 4] wraps to 0: it used to pass as a 0-byte tensor
    "int64 overflow": ({"w": {"dtype": "I64", "shape": [2 ** 62, 4], "data_offsets": [0, 0]}}, "more elements"),
    "huge integers": ({"w": {"dtype": "F32", "shape": [10 ** 30], "data_offsets": [0, 4]}}, "more elements"),
    "bool in shape": ({"w": {"dtype": "F32", "shape": [True, 1], "data_offsets": [0, 4]}}, "integers >= 0"),
    "float in shape": ({"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, "integers >= 0"),
    "negative dim": ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "integers >= 0"),
    "list as dtype": ({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, "dtype ['F32']"),
    "dict as shape": ({"w": {"dtype": "F32", "shape": {"a": 1}, "data_offsets": [0, 4]}}, "shape"),
    "bool offsets": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [False, True]}}, "data_offsets"),
    "offsets past the end": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}, "do not hold"),
    "overlap": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, "do not hold"),
    "not an object": ([1, 2], "not a JSON object"),
}


@pytest.mark.parametrize("case", list(HEADERS))
def test_crafted_header(tmp_path, case):
    header, words = HEADERS[case]
    refused(craft(tmp_path, header if not isinstance(header, list) else json.dumps(header).encode(), bytes(4)),
            words)


def test_deep_json(tmp_path):
    deep = b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    refused(craft(tmp_path, deep), "nested 100001 levels deep")


def test_tensors_over_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(1 << 20))
    p = tmp_path / "big.safetensors"
    st.save(p, {f"w{i}": np.zeros(100_000, np.float32) for i in range(4)})
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(1 << 21))
    assert len(st.load(p)) == 4  # 1.6 MB of tensors under a 2 MiB bound
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(1200_000))
    refused(p, "SRZOO_MAX_MODEL_BYTES")


def test_device_and_fifo(tmp_path):
    import os

    os.mkfifo(tmp_path / "f.safetensors")
    refused(tmp_path / "f.safetensors", "FIFO")
    refused(Path("/dev/zero"), "device")


# ------------------------------------------------------------------ GraphDef
@pytest.fixture
def pb(shared_dir) -> bytes:
    return (shared_dir / "models" / "opencv" / "FSRCNN-small_x2.pb").read_bytes()


def test_graphdef_truncations_are_one_line(pb):
    assert len(read_graphdef(pb)) > 10
    for cut in (7, 100, len(pb) // 3, len(pb) - 1):
        try:
            read_graphdef(pb[:cut])
        except GraphDefError as e:
            assert "\n" not in str(e)


def test_graphdef_const_with_negative_or_huge_dims(tmp_path):
    """A Const whose shape says -1 or 2**40 x 2**40 (splat value): refused, not allocated."""
    def field(num: int, wire: int, payload: bytes) -> bytes:
        return _varint(num << 3 | wire) + (_varint(len(payload)) + payload if wire == 2 else payload)

    for dims in ([-5], [1 << 40, 1 << 40]):
        shape = b"".join(field(2, 2, field(1, 0, _varint(d & (2 ** 64 - 1)))) for d in dims)
        tensor = field(1, 0, _varint(1)) + field(2, 2, shape) + field(5, 5, struct.pack("<f", 1.0))
        attr = field(1, 2, b"value") + field(2, 2, field(8, 2, tensor))
        node = field(1, 2, b"c") + field(2, 2, b"Const") + field(5, 2, attr)
        tracemalloc.start()
        with pytest.raises(GraphDefError):
            read_graphdef(field(1, 2, node))
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
        tracemalloc.stop()


def test_graphdef_converter_names_the_file(tmp_path, pb):
    p = tmp_path / "bad.pb"
    b = bytearray(pb)
    b[len(b) // 2: len(b) // 2 + 64] = b"\xff" * 64
    p.write_bytes(bytes(b))
    entry = ModelEntry(name="fsrcnn-bad", scale=2, format="tf-graphdef", license="MIT", io=IOSpec())
    with pytest.raises(SrzooError) as e:  # ModelLoadError, or ConversionFailed when it parses
        GraphDefToONNX().convert(p, entry, {})
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_graphdef_string_field_as_a_number(pb):
    """Found by test_fuzz_graphdef: 8 zero bytes at offset 585 of FSRCNN-small_x2.pb make a
    node's text field a varint; `int.decode` escaped as an AttributeError traceback."""
    b = bytearray(pb)
    b[585:593] = bytes(8)
    with pytest.raises(GraphDefError, match="text field holds a number"):
        read_graphdef(bytes(b))
