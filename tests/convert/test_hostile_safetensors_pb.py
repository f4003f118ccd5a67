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


# ------------------------------------------------------------------ safetensors, exactly
# (issue 24: every message asserted in full, every boundary at N and N+1, srzoo's writer
# checked by parsing its bytes by hand, not by srzoo's reader)
def _one_error(call, path: Path, exc: type[Exception] = ModelLoadError) -> str:
    with pytest.raises(exc) as e:
        call(path)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def _padded(obj: dict, pad_to: int) -> bytes:
    raw = json.dumps(obj).encode()
    assert len(raw) <= pad_to
    return raw + b" " * (pad_to - len(raw))


def test_missing_file_and_fifo_messages(tmp_path):
    p = tmp_path / "absent.safetensors"
    assert _one_error(st.load, p) == f"{p}: cannot read the safetensors file: No such file or directory"
    assert _one_error(st.read_header, p) == f"{p}: cannot read the safetensors file: No such file or directory"
    import os

    f = tmp_path / "f.safetensors"
    os.mkfifo(f)
    assert _one_error(st.read_header, f) == (f"{f}: is a device, FIFO or socket, not a safetensors file; "
                                             "give a regular file")


def test_file_size_bound_exact(tmp_path, monkeypatch):
    p = craft(tmp_path, {"w": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}, b"abc")
    size = p.stat().st_size
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(size))
    assert st.load(p)["w"].tobytes() == b"abc"
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(size - 1))
    assert _one_error(st.load, p) == (
        f"{p}: the safetensors file ({size} bytes) needs {size} bytes, above SRZOO_MAX_MODEL_BYTES="
        f"{size - 1} ({size - 1} bytes); a crafted or damaged file? If you trust it, raise SRZOO_MAX_MODEL_BYTES")


def test_too_short(tmp_path):
    p = tmp_path / "short.safetensors"
    for n in range(8):
        p.write_bytes(b"\x02" * n)
        assert _one_error(st.load, p, st.SafetensorsError) == f"{p}: {n} bytes, too short for a safetensors file"


def test_header_length_against_the_file(tmp_path):
    # exactly fits: 8 + n == size
    p = craft(tmp_path, b"{}")
    assert st.read_header(p) == ({}, 10)
    assert st.load(p) == {}
    for n in (3, 100, 2 ** 63 + 2, 2 ** 64 - 1):  # one byte past the end ... a length with the top bit set
        p.write_bytes(struct.pack("<Q", n) + b"{}")
        assert _one_error(st.load, p, st.SafetensorsError) == (
            f"{p}: header length {n} does not fit the file (10 bytes); not a safetensors file or truncated")


def test_header_cap_exact(tmp_path, monkeypatch):
    """MAX_HEADER bytes of header are read, one more is refused even when the file holds it."""
    monkeypatch.setattr(st, "MAX_HEADER", 64)
    obj = {"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    p = craft(tmp_path, _padded(obj, 64), b"\x07" + bytes(64))
    header, start = st.read_header(p)
    assert (header, start) == (obj, 72)
    p = craft(tmp_path, _padded(obj, 65), b"\x07" + bytes(64))
    assert _one_error(st.load, p, st.SafetensorsError) == (
        f"{p}: header length 65 does not fit the file ({8 + 65 + 65} bytes); "
        "not a safetensors file or truncated")


def test_header_not_json(tmp_path):
    p = craft(tmp_path, b'{"w": ')
    for call in (st.load, st.read_header):
        msg = _one_error(call, p, st.SafetensorsError)
        assert msg.startswith(f"{p}: the safetensors header is not valid JSON (Expecting value"), msg
    p = craft(tmp_path, b"[1, 2]")
    assert _one_error(st.load, p, st.SafetensorsError) == f"{p}: header is not a JSON object"


def _t(dtype="F32", shape=(1,), offs=(0, 4)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}


def test_tensor_entry_messages(tmp_path):
    cases = {
        f"tensor 'w': needs dtype, shape and data_offsets": [{"w": 5}, {"w": ["dtype", "shape", "data_offsets"]},
                                                            {"w": {"dtype": "F32", "shape": [1]}}],
        "tensor 'w': dtype 'F8' is not supported (srzoo reads F64, F32, F16, I64, I32, I16, I8, U64, U32, U16, "
        "U8, BOOL, BF16)": [{"w": _t("F8")}],
        "tensor 'w': malformed shape or data_offsets": [
            {"w": _t(offs=(0, 4, 8))}, {"w": _t(offs=(0,))}, {"w": {**_t(), "shape": {"a": 1}}},
            {"w": {**_t(), "shape": 4}}, {"w": {**_t(), "data_offsets": "0,4"}}, {"w": _t(offs=(0, 4.0))}],
        "tensor 'w' has shape [-1]: sizes must be integers >= 0": [{"w": _t(shape=(-1,))}],
        "tensor 'w': bytes 0..8 do not hold F32[1] inside the 8 data bytes": [{"w": _t(offs=(0, 8))}],
        "tensor 'w': bytes 4..12 do not hold F32[1] inside the 8 data bytes": [{"w": _t(offs=(4, 12))}],
        "tensor 'w': bytes -4..0 do not hold F32[1] inside the 8 data bytes": [{"w": _t(offs=(-4, 0))}],
        "tensor 'w': bytes 4..0 do not hold F32[0] inside the 8 data bytes": [{"w": _t(shape=(0,), offs=(4, 0))}],
    }
    for words, headers in cases.items():
        for h in headers:
            p = craft(tmp_path, h, bytes(8))
            assert _one_error(st.load, p) == f"{p}: {words}", h


def test_exact_tensors_read_back(tmp_path):
    """Every dtype by offsets (not header order); floats as float32 unless float32=False;
    BF16 is the top half of a float32."""
    f16 = np.array([1.5, -2.0, 65504.0], "<f2")
    f64 = np.array([[0.1], [-2.5]], "<f8")
    i64 = np.array([-(2 ** 62), 7], "<i8")
    bf16 = np.array([0x3F80, 0xC000, 0x4049, 0x7F80], "<u2")  # 1, -2, 3.140625, inf
    u8 = np.array([[0, 255]], np.uint8)
    b = np.array([True, False, True])
    parts = [(n, a) for n, a in (("f16", f16), ("f64", f64), ("i64", i64), ("bf16", bf16), ("u8", u8), ("b", b))]
    tags = {"f16": "F16", "f64": "F64", "i64": "I64", "bf16": "BF16", "u8": "U8", "b": "BOOL"}
    header, data = {}, b""
    for name, a in reversed(parts):  # data in reverse header order
        header[name] = _t(tags[name], a.shape, (len(data), len(data) + a.nbytes))
        data += a.tobytes()
    header = dict(reversed(list(header.items())))
    p = craft(tmp_path, header, data)
    got = st.load(p)
    assert list(got) == ["b", "u8", "bf16", "i64", "f64", "f16"]  # the order of their bytes
    assert {k: (v.dtype.str, v.shape) for k, v in got.items()} == {
        "f16": ("<f4", (3,)), "f64": ("<f4", (2, 1)), "i64": ("<i8", (2,)), "bf16": ("<f4", (4,)),
        "u8": ("|u1", (1, 2)), "b": ("|b1", (3,))}
    assert got["f16"].tolist() == [1.5, -2.0, 65504.0]
    assert got["f64"].tolist() == [[np.float32(0.1)], [-2.5]]
    assert got["i64"].tolist() == [-(2 ** 62), 7]
    assert got["bf16"].tolist() == [1.0, -2.0, 3.140625, np.inf]
    assert got["u8"].tolist() == [[0, 255]] and got["b"].tolist() == [True, False, True]
    raw = st.load(p, float32=False)
    assert {k: v.dtype.str for k, v in raw.items()} == {
        "f16": "<f2", "f64": "<f8", "i64": "<i8", "bf16": "<f4", "u8": "|u1", "b": "|b1"}
    assert raw["f64"].tobytes() == f64.tobytes() and raw["f16"].tobytes() == f16.tobytes()


def test_zero_size_tensors_and_no_data(tmp_path):
    p = craft(tmp_path, {"e": _t(shape=(2, 0), offs=(0, 0))})
    got = st.load(p)
    assert list(got) == ["e"] and got["e"].shape == (2, 0) and got["e"].dtype == np.float32
    p = craft(tmp_path, {"z": _t("I32", (0,), (4, 4)), "e": _t(shape=(0, 3), offs=(0, 0)),
                         "w": _t(offs=(0, 4))}, struct.pack("<f", 2.5))
    got = st.load(p)
    assert list(got) == ["e", "w", "z"]
    assert got["w"].tolist() == [2.5] and got["z"].shape == (0,) and got["z"].dtype == np.int32
    assert got["e"].shape == (0, 3)
    assert st.load(craft(tmp_path, {"__metadata__": {"a": "b"}})) == {}


def test_metadata_is_skipped_wherever_it_is(tmp_path):
    p = craft(tmp_path, {"__metadata__": {"format": "pt"}, "w": _t(), "v": _t("U8", (2,), (4, 6))},
              struct.pack("<f", -1.25) + b"\x01\x02")
    got = st.load(p)
    assert list(got) == ["w", "v"] and got["w"].tolist() == [-1.25] and got["v"].tolist() == [1, 2]


def test_overlap_exact(tmp_path):
    # adjacent ranges are fine
    got = st.load(craft(tmp_path, {"b": _t(offs=(4, 8)), "a": _t(offs=(0, 4))}, struct.pack("<2f", 1, 2)))
    assert list(got) == ["a", "b"] and got["a"].tolist() == [1.0] and got["b"].tolist() == [2.0]
    p = craft(tmp_path, {"a": _t(offs=(0, 4)), "b": _t(offs=(2, 6))}, bytes(8))
    assert _one_error(st.load, p, st.SafetensorsError) == f"{p}: tensors 'a' and 'b' overlap"
    # the overlapping pair is not the first one (c listed first, bytes in order a, b, c)
    p = craft(tmp_path, {"c": _t(offs=(6, 10)), "a": _t(offs=(0, 4)), "b": _t(offs=(4, 8))}, bytes(12))
    assert _one_error(st.load, p, st.SafetensorsError) == f"{p}: tensors 'b' and 'c' overlap"
    # one range inside another
    p = craft(tmp_path, {"a": _t("U8", (8,), (0, 8)), "b": _t("U8", (2,), (2, 4))}, bytes(8))
    assert _one_error(st.load, p, st.SafetensorsError) == f"{p}: tensors 'a' and 'b' overlap"


def test_tensor_budget_exact(tmp_path, monkeypatch):
    """Tensors that name the same bytes add up against SRZOO_MAX_MODEL_BYTES before the overlap
    check: 1000 bytes fit the bound (the overlap is what is refused), 1001 do not."""
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", "1000")
    p = craft(tmp_path, {"a": _t("U8", (500,), (0, 500)), "b": _t("U8", (500,), (0, 500))}, bytes(501))
    assert _one_error(st.load, p, st.SafetensorsError) == f"{p}: tensors 'a' and 'b' overlap"
    p = craft(tmp_path, {"a": _t("U8", (500,), (0, 500)), "b": _t("U8", (501,), (0, 501))}, bytes(501))
    assert _one_error(st.load, p) == (
        f"{p}: the tensors (at tensor 'b') needs 1001 bytes, above SRZOO_MAX_MODEL_BYTES=1000 (1000 bytes); "
        "a crafted or damaged file? If you trust it, raise SRZOO_MAX_MODEL_BYTES")


def test_numpy_failures_become_one_named_line(tmp_path):
    """0 elements, but dimensions numpy cannot build: the backstop's line, naming the file."""
    for shape in ([0, 2 ** 70], [0, 2 ** 40, 2 ** 40]):
        p = craft(tmp_path, {"w": _t(shape=shape, offs=(0, 0))})
        msg = _one_error(st.load, p)
        assert msg.startswith(f"{p}: malformed safetensors file (") and msg.endswith(")"), msg


def test_file_is_mapped_read_only(tmp_path, monkeypatch):
    """The untrusted file is never opened for writing (np.memmap's default mode is r+)."""
    modes = []
    real = np.memmap

    def spy(*a, **kw):
        modes.append(kw.get("mode", "r+"))
        return real(*a, **kw)

    monkeypatch.setattr(np, "memmap", spy)
    p = craft(tmp_path, {"w": _t()}, struct.pack("<f", 3.0))
    assert st.load(p)["w"].tolist() == [3.0] and modes == ["r"]


def test_converter_orders_names_as_modules(tmp_path):
    """The file stores names sorted as strings; the converter gives body.2 before body.10."""
    names = ["body.10.weight", "body.2.weight", "body.1.bias", "conv_first.weight", "body.1.weight", "b2"]
    header, data = {}, b""
    for i, n in enumerate(sorted(names)):
        header[n] = _t(offs=(4 * i, 4 * i + 4))
        data += struct.pack("<f", float(i))
    sd = st.SafetensorsToONNX._tensors(craft(tmp_path, header, data))
    assert list(sd) == ["b2", "body.1.bias", "body.1.weight", "body.2.weight", "body.10.weight",
                        "conv_first.weight"]
    assert [v.tolist() for v in sd.values()] == [[0.0], [1.0], [2.0], [4.0], [3.0], [5.0]]


# ------------------------------------------------------------------ srzoo's writer, parsed by hand
def _parse(path: Path) -> tuple[int, dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n]), raw[8 + n:]


def test_save_exact_bytes(tmp_path):
    p = tmp_path / "w.safetensors"
    st.save(p, {"w": np.array([1.0, -2.0], np.float32)})
    hdr = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    assert len(hdr) == 54
    assert p.read_bytes() == struct.pack("<Q", 56) + hdr + b"  " + struct.pack("<2f", 1.0, -2.0)


def test_save_header_is_8_byte_aligned(tmp_path):
    p = tmp_path / "a.safetensors"
    for k in range(1, 12):
        st.save(p, {"x" * k: np.zeros(1, np.uint8)})
        n, header, data = _parse(p)
        assert n % 8 == 0 and n - 8 < len(json.dumps(header, separators=(",", ":"))) <= n, (k, n)
        assert header == {"x" * k: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}} and data == b"\0"


def test_save_dtypes_byte_order_and_metadata(tmp_path):
    arrays = {
        "f64": np.array([0.5, -3.0], "<f8"), "f32": np.array([[1.5]], ">f4"), "f16": np.array([2.0], "<f2"),
        "i64": np.array([-5], ">i8"), "i32": np.array([7, -7], "<i4"), "i16": np.array([-300], ">i2"),
        "i8": np.array([-1], "i1"), "u64": np.array([2 ** 63], "<u8"), "u32": np.array([4], ">u4"),
        "u16": np.array([65535, 1], "<u2"), "u8": np.array([9], "u1"), "bool": np.array([True, False]),
        "t": np.arange(6, dtype="<i2").reshape(2, 3).T,  # not contiguous
    }
    p = tmp_path / "all.safetensors"
    st.save(p, arrays, {"source": "test", "n": 3})
    _, header, data = _parse(p)
    assert header.pop("__metadata__") == {"source": "test", "n": "3"}
    tags = {"f64": "F64", "f32": "F32", "f16": "F16", "i64": "I64", "i32": "I32", "i16": "I16", "i8": "I8",
            "u64": "U64", "u32": "U32", "u16": "U16", "u8": "U8", "bool": "BOOL", "t": "I16"}
    assert list(header) == sorted(arrays)
    pos = 0
    for name in sorted(arrays):
        a = arrays[name]
        want = a.astype(a.dtype.newbyteorder("<")).tobytes() if a.dtype.itemsize > 1 else a.tobytes()
        assert header[name] == {"dtype": tags[name], "shape": list(a.shape), "data_offsets": [pos, pos + len(want)]}
        assert data[pos:pos + len(want)] == want, name
        pos += len(want)
    assert pos == len(data)
    assert data[header["f32"]["data_offsets"][0]:][:4] == struct.pack("<f", 1.5)
    assert data[header["i16"]["data_offsets"][0]:][:2] == struct.pack("<h", -300)
    assert data[header["t"]["data_offsets"][0]:][:12] == struct.pack("<6h", 0, 3, 1, 4, 2, 5)


def test_save_with_the_safetensors_package(tmp_path):
    stnp = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    arrays = {"a": np.array([1.5, -2.0], ">f4"), "u": np.array([65535], np.uint16), "h": np.array([1.0], np.float16)}
    p = tmp_path / "pkg.safetensors"
    st.save(p, arrays, {"k": "v"})
    back = stnp.load_file(str(p))
    assert {k: (v.dtype.str, v.tolist()) for k, v in back.items()} == {
        "a": ("<f4", [1.5, -2.0]), "u": ("<u2", [65535]), "h": ("<f2", [1.0])}
    with safe_open(str(p), "np") as f:
        assert f.metadata() == {"k": "v"}


def test_save_refuses_what_it_cannot_write(tmp_path):
    p = tmp_path / "c.safetensors"
    with pytest.raises(st.SafetensorsError) as e:
        st.save(p, {"a": np.zeros(1, np.float32), "z": np.zeros(2, np.complex64)})
    assert str(e.value) == "tensor 'z': dtype complex64 cannot be written" and not p.exists()
