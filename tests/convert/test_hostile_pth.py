"""Crafted PyTorch checkpoints: each is refused with one ModelLoadError line naming the
file and what is wrong, before a large allocation; no traceback, nothing run.

The crafted files are built opcode by opcode (tests/hostile_files.py) or cut from the
real ../shared/models/carn/carn_m.pth.
"""

from __future__ import annotations

import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_files as hf  # noqa: E402

from srzoo.convert import torchload  # noqa: E402
from srzoo.convert.files import inspect_file  # noqa: E402
from srzoo.errors import ModelLoadError  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "hostile"
F4 = np.arange(1, 5, dtype="<f4").tobytes()


def refused(path: Path, *words: str, fn=torchload.load_state_dict) -> str:
    return hf.refusal(fn, path, ModelLoadError, *words)


def write(tmp_path: Path, data: bytes, name: str = "crafted.pth") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_minimal_valid_checkpoint_reads(tmp_path):
    sd = torchload.load_state_dict(write(tmp_path, hf.valid_pth()))
    assert list(sd) == ["w"] and sd["w"].tolist() == [[1.0, 2.0], [3.0, 4.0]]


CASES = {
    "negative shape": (dict(size=(-1, 2), stride=(2, 1)), "negative"),
    "huge shape": (dict(size=(1 << 40, 1 << 40), stride=(1, 1)), "reaches past its storage"),
    "stride/shape length mismatch": (dict(size=(2, 2), stride=(1,)), "has 1 strides"),
    "stride 0, 2**29 elements": (dict(size=(1 << 29,), stride=(0,)), "SRZOO_MAX_MODEL_BYTES"),
    "None offset": (dict(offset=None), "offset None is not an integer"),
    "string shape": (dict(size="abc"), "shape 'abc' is not a list of integers"),
    "float stride": (dict(stride=(2.0, 1)), "strides (2.0, 1) is not a list of integers"),
    "bool in shape": (dict(size=(True, 2)), "is not a list of integers"),
    "offset past the end": (dict(offset=3), "reaches past its storage"),
    "short persistent id": (dict(pid=("storage", hf.FLOAT)), "storage reference with 2 fields"),
    "list as storage key": (dict(pid=("storage", hf.FLOAT, ["0"], "cpu", 4)), "a key of type list"),
    "unknown storage type": (dict(stype=hf.Global("torch", "ByteTensor")), "refused"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_tensor_is_refused(tmp_path, case):
    kwargs, words = CASES[case]
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(**kwargs)}, {"0": F4}))
    refused(p, words)
    refused(p, fn=inspect_file)  # `srzoo inspect` says the same


def test_stride_zero_bomb_stays_small(tmp_path):
    """690 bytes whose tensor has stride 0 and 2**29 elements: refused before the 2 GiB copy."""
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(size=(1 << 29,), stride=(0,))}, {"0": F4}))
    assert p.stat().st_size < 1200
    tracemalloc.start()
    refused(p, "SRZOO_MAX_MODEL_BYTES")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_deflate_bomb_total_is_capped(tmp_path, monkeypatch):
    """Storages that each fit the bound but together do not: the cap is on the total."""
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(16 << 20))
    zeros = bytes(6 << 20)
    obj = {f"w{i}": hf.tensor(key=str(i), numel=len(zeros) // 4, size=(len(zeros) // 4,), stride=(1,))
           for i in range(4)}
    p = write(tmp_path, hf.torch_zip(obj, {str(i): zeros for i in range(4)},
                                     compression=zipfile.ZIP_DEFLATED))
    assert p.stat().st_size < 200_000  # 24 MiB of storages in a small file
    tracemalloc.start()
    refused(p, "SRZOO_MAX_MODEL_BYTES=16777216", "storage")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 48 << 20, peak  # under 3x the bound (tensor copies + the storage being read)


def test_one_storage_over_the_bound_is_not_inflated(tmp_path, monkeypatch):
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(4 << 20))
    zeros = bytes(8 << 20)
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(numel=len(zeros) // 4, size=(4,), stride=(1,))},
                                     {"0": zeros}, compression=zipfile.ZIP_DEFLATED))
    tracemalloc.start()
    refused(p, "storage archive/data/0", "8 MiB")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 << 20, peak


def test_file_over_the_bound_is_not_read(tmp_path, monkeypatch, shared_dir):
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(1 << 20))
    refused(shared_dir / "models" / "carn" / "carn_m.pth", "SRZOO_MAX_MODEL_BYTES=1048576")


def test_nesting_3000_deep(tmp_path):
    p = write(tmp_path, hf.torch_zip(hf.nested_pickle(3000), {}))
    refused(p, "more than 64 deep")


@pytest.mark.parametrize("model", ["carn/carn_m.pth", "esrgan/realesr-animevideov3.pth"])
def test_truncated_real_checkpoint(tmp_path, shared_dir, model):
    data = (shared_dir / "models" / model).read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 200):
        msg = refused(write(tmp_path, data[:cut]))
        assert "truncated" in msg or "PyTorch checkpoint" in msg, msg


def test_corrupt_deflate(tmp_path):
    data = hf.torch_zip({"w": hf.tensor(numel=4096, size=(4096,), stride=(1,))},
                        {"0": np.linspace(0, 1, 4096, dtype="<f4").tobytes()}, compression=zipfile.ZIP_DEFLATED)
    local, _ = hf.zip_member_offsets(data, "archive/data/0")
    b = bytearray(data)
    start = local + 30 + len("archive/data/0")
    b[start:start + 40] = bytes(40)  # zeros in the middle of the deflate stream
    refused(write(tmp_path, bytes(b)), "PyTorch checkpoint")


@pytest.mark.parametrize("patch,words", [
    (dict(flags=1), "encrypted"),
    (dict(method=99), "compression"),
    (dict(size=8), "Bad CRC-32"),  # the listing understates the member's size
])
def test_zip_listing_lies(tmp_path, patch, words):
    data = hf.torch_zip({"w": hf.tensor()}, {"0": F4})
    refused(write(tmp_path, hf.patch_zip(data, "archive/data/0", **patch)), words)


def test_understated_size_in_real_checkpoint(tmp_path, shared_dir):
    real = shared_dir / "models" / "esrgan" / "realesr-animevideov3.pth"  # a zip checkpoint
    data = real.read_bytes()
    with zipfile.ZipFile(real) as z:
        member = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size > 1000)
    refused(write(tmp_path, hf.patch_zip(data, member.filename, size=member.file_size // 2)), "Bad CRC-32")


def test_legacy_checkpoint_bombs(tmp_path):
    good = hf.legacy_pth({"w": hf.tensor(pid=("storage", hf.FLOAT, "0", "cpu", 4, None))}, {"0": np.arange(4.0)})
    assert torchload.load_state_dict(write(tmp_path, good))["w"].tolist() == [[0, 1], [2, 3]]
    # a storage count of 2**60 values: refused from its 8-byte header, nothing allocated
    at = good.index(np.arange(4.0).astype("<f4").tobytes()) - 8
    bomb = good[:at] + (1 << 60).to_bytes(8, "little") + good[at + 8:]
    refused(write(tmp_path, bomb, "bomb.pth"), "SRZOO_MAX_MODEL_BYTES")
    refused(write(tmp_path, good[:at + 10], "cut.pth"), "truncated inside storage 0")
    view = hf.legacy_pth({"w": hf.tensor(pid=("storage", hf.FLOAT, "0", "cpu", 4, ("0", -5, "x")))},
                         {"0": np.arange(4.0)})
    refused(write(tmp_path, view, "view.pth"), "storage view")


def test_legacy_storage_views_read_their_slice(tmp_path):
    """Pre-1.0 checkpoints could share one root storage between views: (view key, offset,
    size) in elements. Each tensor reads its own slice of the root, whichever comes first."""
    root = np.arange(10.0)
    w = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 10, ("v1", 2, 4)))  # root[2:6] as 2x2
    b = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 10, ("v2", 6, 4)), size=(4,), stride=(1,))
    whole = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 10, None), size=(10,), stride=(1,))
    sd = torchload.load_state_dict(write(tmp_path, hf.legacy_pth({"w": w, "b": b, "all": whole}, {"r": root})))
    assert sd["w"].tolist() == [[2, 3], [4, 5]] and sd["b"].tolist() == [6, 7, 8, 9]
    assert sd["all"].tolist() == list(range(10))
    # an empty view (size 0) at the end of the root is a valid, empty slice
    e = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 10, ("v3", 10, 0)), size=(0,), stride=(1,))
    assert torchload.load_state_dict(write(tmp_path, hf.legacy_pth({"e": e, "all": whole}, {"r": root}),
                                           "empty.pth"))["e"].shape == (0,)
    for bad in [("v", -1, 4), ("v", 0, -1), ("v", 0), ("v", 0.0, 4), ("v", 0, "4"), ["v", 0, 4]]:
        t = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 10, bad))
        refused(write(tmp_path, hf.legacy_pth({"w": t}, {"r": root}), "bad.pth"),
                f"storage view {str(bad)}", "is not (key, offset, size)")


def test_legacy_layout_errors_are_one_line_naming_the_file(tmp_path):
    root = np.arange(4.0)
    t = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 4, None))
    good = hf.legacy_pth({"w": t}, {"r": root})
    head = hf.pickle_bytes(0x1950A86A20F9469CFC6C) + hf.pickle_bytes(1001)
    # a storage reference in a header pickle (the sys info), where none may be
    sysinfo = b"\x80\x02" + hf._enc(("storage", hf.FLOAT, "r", "cpu", 4)) + b"Q."
    refused(write(tmp_path, head + sysinfo + good[len(head) + len(hf.pickle_bytes({"little_endian": True})):],
                  "hdr.pth"), "refused: storage reference in a header pickle")
    body = head + hf.pickle_bytes({"little_endian": True}) + hf.pickle_bytes({"w": t})
    refused(write(tmp_path, body + hf.pickle_bytes({"r": 1}), "keys.pth"), "storage keys are a dict")
    refused(write(tmp_path, body + hf.pickle_bytes(["r", "q"]) + np.int64(4).tobytes()
                  + root.astype("<f4").tobytes(), "never.pth"), "storage q listed but never used")
    refused(write(tmp_path, body + hf.pickle_bytes(["r"]) + b"\x04\x00", "before.pth"), "truncated before storage r")
    # a class no checkpoint of weights needs: refused, naming the file
    evil = hf.Call(hf.Global("os", "system"), ("true",))
    refused(write(tmp_path, hf.legacy_pth({"w": evil}, {}), "evil.pth"), "refused: its pickle asks for os.system")
    # the byte bound names the storage it was reached at
    at = good.index(root.astype("<f4").tobytes()) - 8
    bomb = good[:at] + (1 << 60).to_bytes(8, "little") + good[at + 8:]
    refused(write(tmp_path, bomb, "bomb.pth"), "SRZOO_MAX_MODEL_BYTES", "storage r")
    # a view at offset 0 is the root's first elements
    v0 = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 4, ("v", 0, 2)), size=(2,), stride=(1,))
    assert torchload.load_state_dict(write(tmp_path, hf.legacy_pth({"v": v0, "w": t}, {"r": root}),
                                           "v0.pth"))["v"].tolist() == [0, 1]


def test_tensor_copies_count_their_whole_size_against_the_bound(tmp_path, monkeypatch):
    """A 10x100 float tensor: its storage (4000 bytes) and its copy (4000 bytes) share the
    bound, counted exactly: 8000 fits in 8000, not in 7999 (nor would a copy counted as 2x)."""
    root = np.arange(1000.0)
    t = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 1000, None), size=(10, 100), stride=(100, 1))
    p = write(tmp_path, hf.legacy_pth({"w": t}, {"r": root}))
    assert p.stat().st_size < 7999
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", "8000")
    assert torchload.load_state_dict(p)["w"].reshape(-1).tolist() == list(range(1000))
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", "7999")
    refused(p, "SRZOO_MAX_MODEL_BYTES", "a tensor of shape (10, 100)")


def test_storage_used_but_never_stored_is_one_line(tmp_path):
    """The pickle refers to storage "r" but the file lists (and stores) only "s"."""
    t = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 4, None))
    u = hf.tensor(pid=("storage", hf.FLOAT, "s", "cpu", 4, None))
    data = hf.legacy_pth({"w": t, "u": u}, {"s": np.arange(4.0)})
    refused(write(tmp_path, data), "tensor storage was never read (truncated file?)")


def test_whole_module_records_keep_only_their_state():
    """Classes of a pickled nn.Module become inert records, one per (module, name), that
    keep the pickled state: a dict, or the dict of a (dict, slots) pair."""
    net, seq = torchload._record_class("vdsr", "Net"), torchload._record_class("torch.nn.modules.container", "Sequential")
    assert net is torchload._record_class("vdsr", "Net") and net is not seq
    assert issubclass(net, torchload.ModuleRecord) and net.__name__ == "Net"
    assert net.__module__ == "srzoo.convert.torchload.records"
    assert repr(net()) == "<record of vdsr.Net>" and repr(seq()) == "<record of torch.nn.modules.container.Sequential>"
    r = net()
    r.__setstate__(({"a": 1}, {"slot": 2}))
    assert r.a == 1 and not hasattr(r, "slot")
    r.__setstate__((None, {"b": 3}))
    assert not hasattr(r, "b")
    r.__setstate__({"c": 4})
    r.__setstate__(({"d": 5}, None, None))  # not a (dict, slots) pair: ignored
    r.__setstate__([{"e": 6}, None])
    assert (r.a, r.c) == (1, 4) and not hasattr(r, "d") and not hasattr(r, "e")


def test_module_state_that_is_not_a_dict_is_one_line(tmp_path):
    # a pickled module (NEWOBJ of its class, then BUILD with its state) whose _parameters
    # is a list instead of a dict
    pkl = hf.pickle_bytes(hf.Rec("mymodels", "Net", {"_parameters": [1, 2]}))
    refused(write(tmp_path, hf.torch_zip(pkl, {})), "module state is a list, not a dict")


def test_not_a_regular_file(tmp_path):
    import os

    fifo = tmp_path / "model.pth"
    os.mkfifo(fifo)
    refused(fifo, "FIFO")  # would block forever in open() if it were opened
    refused(Path("/dev/zero"), "device")


def test_regression_files_from_the_fuzzer():
    """Inputs the fuzzers found crashing (tests/data/hostile/*.pth), each refused in one line
    with little memory. pickle-*-length-bomb.pth: a pickle opcode claiming a 2 GiB / 1 TiB
    string in a 60-byte file made the C unpickler allocate that length first;
    pickle-memo-index-bomb.pth: LONG_BINPUT 167772160 made it allocate a 2.7 GB memo table."""
    files = sorted(DATA.glob("*.pth"))
    assert len(files) >= 3
    for p in files:
        tracemalloc.start()
        refused(p, *(("memo index 167772160",) if "memo" in p.name else ("expected", "remain")))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 4 << 20, (p, peak)


def test_fuzz_found_length_bomb_in_real_checkpoint(tmp_path, shared_dir):
    """The first input test_fuzz_pth_legacy_real found: carn_m.pth with byte 1 set to 0 and
    7 bytes deleted at 122 (a string length then swallows what follows): it peaked at 1.2 GB."""
    data = bytearray((shared_dir / "models" / "carn" / "carn_m.pth").read_bytes())
    data[1:2] = b"\x00"
    del data[122:129]
    p = write(tmp_path, bytes(data))
    tracemalloc.start()
    refused(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20, peak


def test_fuzz_found_memo_bomb_in_real_checkpoint(tmp_path, shared_dir):
    """The second input test_fuzz_pth_legacy_real found (2.7 GB peak): carn_m.pth with byte 1
    set to 0 and 63 bytes deleted at 165, which turns four bytes of a name into a memo index."""
    data = bytearray((shared_dir / "models" / "carn" / "carn_m.pth").read_bytes())
    data[1:2] = b"\x00"
    del data[165:228]
    p = write(tmp_path, bytes(data))
    tracemalloc.start()
    refused(p, "memo index")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20, peak


def test_zip_entry_claiming_more_compressed_bytes_than_the_file(tmp_path):
    """Found by test_fuzz_pth_zip_minimal: a 500-byte checkpoint whose 'byteorder' entry claims
    84 MB of compressed data; zipfile asked the file for that much and read() preallocated it."""
    data = hf.patch_zip(hf.valid_pth(), "archive/byteorder", compressed=84 << 20)
    p = write(tmp_path, data)
    tracemalloc.start()
    sd = torchload.load_state_dict(p)  # the stored entries still read right: only the claim lies
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sd["w"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert peak < 1 << 20, peak


def test_crafted_names_cannot_break_the_line(tmp_path):
    """Found by test_fuzz_pth_pickles: an offset of "\\n" put a newline into the error line."""
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(offset="\n")}, {"0": F4}))
    refused(p, "offset '\\n' is not an integer")
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(key="a\nb", pid=("storage", hf.FLOAT, "a\nb", "cpu", 4))},
                                     {"0": F4}), "key.pth")
    refused(p, "a\\nb")


# ------------------------------------------------------------------ exact lines (issue 24)
def _line(p: Path, exc: type[Exception] = ModelLoadError, fn=torchload.load_state_dict) -> str:
    with pytest.raises(exc) as e:
        fn(p)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def _zip(members: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def test_zip_with_data_pkl_at_the_top(tmp_path):
    """No archive folder: data.pkl and data/0 at the zip's root still read, value by value."""
    p = write(tmp_path, _zip({"data.pkl": hf.pickle_bytes({"w": hf.tensor()}), "data/0": F4}))
    sd = torchload.load_state_dict(p)
    assert list(sd) == ["w"] and sd["w"].dtype == np.float32 and sd["w"].tolist() == [[1, 2], [3, 4]]


def test_zip_without_exactly_one_data_pkl(tmp_path):
    pk = hf.pickle_bytes({"w": hf.tensor()})
    for members in ({"a/data.pkl": pk, "b/data.pkl": pk, "a/data/0": F4}, {"x.txt": b"hello"}):
        p = write(tmp_path, _zip(members))
        assert _line(p, torchload.CheckpointError) == \
            f"{p}: zip file without exactly one data.pkl: not a torch checkpoint"


def test_zip_byteorder(tmp_path):
    pk = hf.pickle_bytes({"w": hf.tensor()})
    for order in (b"", b"little", b" little\n"):
        p = write(tmp_path, _zip({"archive/data.pkl": pk, "archive/byteorder": order, "archive/data/0": F4}))
        assert torchload.load_state_dict(p)["w"].tolist() == [[1, 2], [3, 4]], order
    p = write(tmp_path, _zip({"archive/data.pkl": pk, "archive/byteorder": b"big", "archive/data/0": F4}))
    assert _line(p, torchload.CheckpointError) == f"{p}: big-endian checkpoint, not supported"


def test_unknown_storage_type_names_the_file_once(tmp_path):
    """A storage whose type is a plain string, not torch.FloatStorage: zip and legacy layouts."""
    t = hf.tensor(pid=("storage", "FloatStorage", "0", "cpu", 4))
    p = write(tmp_path, hf.torch_zip({"w": t}, {"0": F4}))
    assert _line(p, torchload.CheckpointError) == f"{p}: storage of unknown type 'FloatStorage'"
    p = write(tmp_path, hf.legacy_pth({"w": t}, {"0": np.arange(4, dtype="<f4")}), "legacy.pth")
    assert _line(p, torchload.CheckpointError) == f"{p}: storage of unknown type 'FloatStorage'"


def test_refused_callables_name_the_file_once(tmp_path):
    call = hf.Call(hf.Global("os", "system"), ("true",))
    tail = ("refused: its pickle asks for os.system, which a checkpoint of weights never needs "
            "(srzoo loads only tensors and plain containers; nothing was run)")
    p = write(tmp_path, hf.torch_zip({"w": call}, {}))
    assert _line(p, torchload.UnsafeCheckpoint) == f"{p}: {tail}"
    p = write(tmp_path, hf.legacy_pth({"w": call}, {}), "legacy.pth")
    assert _line(p, torchload.UnsafeCheckpoint) == f"{p}: {tail}"


def test_legacy_header_pickle_with_a_storage(tmp_path):
    magic = hf.pickle_bytes(hf.Pid(("storage", hf.FLOAT, "0", "cpu", 1)))
    p = write(tmp_path, magic + hf.legacy_pth({}, {})[len(hf.pickle_bytes(0x1950A86A20F9469CFC6C)):])
    assert _line(p, torchload.UnsafeCheckpoint) == f"{p}: refused: storage reference in a header pickle"
    rest = hf.legacy_pth({}, {})[len(hf.pickle_bytes(0x1950A86A20F9469CFC6C)):]
    p = write(tmp_path, hf.pickle_bytes(hf.Call(hf.Global("os", "system"), ("true",))) + rest, "magic.pth")
    assert _line(p, torchload.UnsafeCheckpoint) == (
        f"{p}: refused: its pickle asks for os.system, which a checkpoint of weights never needs "
        "(srzoo loads only tensors and plain containers; nothing was run)")
    p = write(tmp_path, hf.pickle_bytes(hf.Pid(("module", 1))) + rest, "pid.pth")
    assert _line(p, torchload.UnsafeCheckpoint) == f"{p}: refused: unknown persistent id 'module'"


def test_data_pkl_counts_against_the_bound(tmp_path, monkeypatch):
    """A deflated data.pkl that expands past SRZOO_MAX_MODEL_BYTES in a small file: refused at
    data.pkl; with a bound of exactly its size, the next thing counted (the storage) tips it."""
    import io

    data = hf.torch_zip({"w": hf.tensor(), "pad": "0" * 20_000}, {"0": F4}, compression=zipfile.ZIP_DEFLATED)
    n = zipfile.ZipFile(io.BytesIO(data)).getinfo("archive/data.pkl").file_size
    p = write(tmp_path, data)
    assert p.stat().st_size < 2000 < n
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(n - 1))
    assert _line(p) == (f"{p}: the checkpoint's tensors (at archive/data.pkl) needs {n} bytes, above "
                        f"SRZOO_MAX_MODEL_BYTES={n - 1} ({n - 1} bytes); a crafted or damaged file? "
                        "If you trust it, raise SRZOO_MAX_MODEL_BYTES")
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(n))
    assert _line(p).startswith(f"{p}: the checkpoint's tensors (at storage archive/data/0) needs {n + 16} bytes")


def test_tensor_reaching_one_past_its_storage(tmp_path):
    """2x2 over a 4-value storage: offset 0 reads [[1, 2], [3, 4]]; offset 1 would read one value
    past the storage and is refused with the full line."""
    assert torchload.load_state_dict(write(tmp_path, hf.valid_pth()))["w"].tolist() == [[1, 2], [3, 4]]
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(offset=1)}, {"0": F4}))
    assert _line(p, torchload.CheckpointError) == (
        f"{p}: tensor of shape (2, 2), strides (2, 1) and offset 1 reaches past its storage of 4 values")
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(size=(2, 3), stride=(1, 2))}, {"0": F4}))
    assert _line(p, torchload.CheckpointError) == (
        f"{p}: tensor of shape (2, 3), strides (1, 2) and offset 0 reaches past its storage of 4 values")


def test_strided_and_empty_tensors_exactly(tmp_path):
    """A transposed view reads by its strides; an empty tensor keeps its storage's dtype."""
    long = hf.Global("torch", "LongStorage")
    obj = {"t": hf.tensor(stride=(1, 2)), "e": hf.tensor(size=(0, 3), stride=(3, 1)),
           "i": hf.tensor(key="1", size=(0,), stride=(1,), stype=long),
           "s": hf.tensor(offset=1, size=(2,), stride=(2,))}
    sd = torchload.load_state_dict(write(tmp_path, hf.torch_zip(obj, {"0": F4, "1": b""})))
    assert sd["t"].tolist() == [[1, 3], [2, 4]] and sd["s"].tolist() == [2, 4]
    assert (sd["e"].shape, sd["e"].dtype) == ((0, 3), np.float32)
    assert (sd["i"].shape, sd["i"].dtype) == ((0,), np.int64)


def test_legacy_view_over_a_storage_never_stored(tmp_path):
    v = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 4, ("v", 0, 2)), size=(2,), stride=(1,))
    u = hf.tensor(pid=("storage", hf.FLOAT, "s", "cpu", 4, None))
    p = write(tmp_path, hf.legacy_pth({"v": v, "u": u}, {"s": np.arange(4.0)}))
    assert _line(p, torchload.CheckpointError) == f"{p}: tensor storage was never read (truncated file?)"


def test_long_storage_view_is_cut_at_60_characters(tmp_path):
    bad = ("k" * 80, -1, 4)
    t = hf.tensor(pid=("storage", hf.FLOAT, "r", "cpu", 10, bad))
    p = write(tmp_path, hf.legacy_pth({"w": t}, {"r": np.arange(10.0)}))
    assert _line(p, torchload.CheckpointError) == (
        f"{p}: corrupt PyTorch checkpoint (storage view ('{'k' * 58} is not (key, offset, size))")


def test_memo_index_at_the_opcode_count(tmp_path):
    """The prescan's bound, exactly, for each memo opcode: in PROTO, EMPTY_DICT, PUT, STOP (4
    opcodes) index 3 is read, index 4 refused before the C unpickler sizes its memo table."""
    for name, put in (("PUT", lambda i: b"p%d\n" % i), ("BINPUT", lambda i: b"q" + bytes([i])),
                      ("LONG_BINPUT", lambda i: b"r" + i.to_bytes(4, "little"))):
        p = write(tmp_path, _zip({"archive/data.pkl": b"\x80\x02}" + put(3) + b"."}), f"{name}3.pth")
        assert torchload.load(p) == {}, name
        p = write(tmp_path, _zip({"archive/data.pkl": b"\x80\x02}" + put(4) + b"."}), f"{name}4.pth")
        assert _line(p, torchload.CheckpointError) == \
            f"{p}: corrupt PyTorch checkpoint (memo index 4 in a pickle of 4 opcodes)", name
    p = write(tmp_path, _zip({"archive/data.pkl": b"."}), "stop.pth")  # one opcode, no memo
    assert _line(p, torchload.CheckpointError) == \
        f"{p}: malformed PyTorch checkpoint (UnpicklingError: unpickling stack underflow)"


def test_prescan_message_is_cut_at_120_characters(tmp_path):
    """pickletools quotes the bad STRING argument in its message: 120 characters of it are kept."""
    p = write(tmp_path, _zip({"archive/data.pkl": b"\x80\x02S'" + b"a" * 200 + b"\n."}))
    msg = _line(p, torchload.CheckpointError)
    head = f"{p}: corrupt PyTorch checkpoint ("
    assert msg.startswith(head) and msg.endswith("a" * 40 + ")"), msg
    assert len(msg) == len(head) + 120 + 1, msg


def test_rebuild_tensor_lines_and_scalars(tmp_path):
    """Each refusal of a tensor's layout in full (a negative offset alone would read before the
    storage); a 0-d tensor (shape (), strides ()) is a scalar."""
    cases = {
        "tensor with negative shape, strides or offset ((2, 2), (2, 1), -1)": dict(offset=-1),
        "tensor with negative shape, strides or offset ((-1, 2), (2, 1), 0)": dict(size=(-1, 2)),
        "tensor with negative shape, strides or offset ((2, 2), (-1, 1), 3)": dict(stride=(-1, 1), offset=3),
    }
    for words, kw in cases.items():
        p = write(tmp_path, hf.torch_zip({"w": hf.tensor(**kw)}, {"0": F4}))
        assert _line(p, torchload.CheckpointError) == f"{p}: corrupt PyTorch checkpoint ({words})"
    t = hf.Call(hf.REBUILD, (5, 0, (1,), (1,), False, hf.Call(hf.Global("collections", "OrderedDict"), ())))
    p = write(tmp_path, hf.torch_zip({"w": t}, {}))
    assert _line(p, torchload.CheckpointError) == \
        f"{p}: corrupt PyTorch checkpoint (tensor built from int, not from a storage)"
    p = write(tmp_path, hf.torch_zip({"s": hf.tensor(size=(), stride=(), offset=2)}, {"0": F4}))
    s = torchload.load_state_dict(p)["s"]
    assert (s.shape, s.dtype, float(s)) == ((), np.float32, 3.0)


def test_persistent_id_lines(tmp_path):
    """What the unpickler says about persistent ids that are not storages, in full."""
    cases = [
        ("refused: unknown persistent id 'int'", 5),
        ("refused: unknown persistent id 'tuple'", ()),
        ("refused: unknown persistent id 'tuple'", (7, "storage")),
        (f"refused: unknown persistent id {'x' * 60!r}", ("x" * 80, 1)),
        ("corrupt PyTorch checkpoint (storage reference with 2 fields or a key of type none)", ("storage", hf.FLOAT)),
        ("corrupt PyTorch checkpoint (storage reference with 3 fields or a key of type list)",
         ("storage", hf.FLOAT, ["0"])),
        # torch's zip format writes exactly five fields; a sixth is not ignored
        ("corrupt PyTorch checkpoint (storage reference with 6 fields (a zip checkpoint's have 5))",
         ("storage", hf.FLOAT, "0", "cpu", 1, None)),
    ]
    for words, pid in cases:
        p = write(tmp_path, hf.torch_zip({"w": hf.Pid(pid)}, {}))
        exc = torchload.UnsafeCheckpoint if words.startswith("refused") else torchload.CheckpointError
        assert _line(p, exc) == f"{p}: {words}", pid


def test_module_class_persistent_id(tmp_path):
    """Old torch writes a module's class as ('module', class, file, source); two fields are enough.
    Either way it is an inert record class; the state dict holds only the tensors."""
    net = hf.Global("vdsr", "Net")
    for pid in (("module", net, "vdsr.py", "class Net: ..."), ("module", net)):
        p = write(tmp_path, hf.torch_zip({"cls": hf.Pid(pid), "w": hf.tensor()}, {"0": F4}))
        obj = torchload.load(p)
        assert issubclass(obj["cls"], torchload.ModuleRecord) and obj["cls"]._srzoo_qualname == "vdsr.Net"
        assert "vdsr" not in sys.modules
        sd = torchload.load_state_dict(p)
        assert list(sd) == ["w"] and sd["w"].tolist() == [[1, 2], [3, 4]]


def test_every_storage_type_decodes_exactly(tmp_path):
    """Each storage type's bytes (little-endian) come back with their values and dtype; BFloat16
    is the top half of a float32 (kept as float32)."""
    cases = {  # storage: (raw little-endian bytes of 3 values, dtype, values)
        "FloatStorage": (np.array([1.5, -2, 3], "<f4").tobytes(), np.float32, [1.5, -2, 3]),
        "DoubleStorage": (np.array([0.1, -2, 3], "<f8").tobytes(), np.float64, [0.1, -2, 3]),
        "HalfStorage": (np.array([0.5, -2, 65504], "<f2").tobytes(), np.float16, [0.5, -2, 65504]),
        "BFloat16Storage": (np.array([0x3F80, 0xC000, 0x4049], "<u2").tobytes(), np.float32, [1, -2, 3.140625]),
        "LongStorage": (np.array([-(2 ** 40), 0, 7], "<i8").tobytes(), np.int64, [-(2 ** 40), 0, 7]),
        "IntStorage": (np.array([-5, 0, 2 ** 30], "<i4").tobytes(), np.int32, [-5, 0, 2 ** 30]),
        "ShortStorage": (np.array([-300, 1, 2], "<i2").tobytes(), np.int16, [-300, 1, 2]),
        "CharStorage": (bytes([0xFF, 1, 0x80]), np.int8, [-1, 1, -128]),
        "ByteStorage": (bytes([0xFF, 1, 0x80]), np.uint8, [255, 1, 128]),
        "BoolStorage": (bytes([1, 0, 1]), np.bool_, [True, False, True]),
    }
    obj = {name: hf.tensor(key=name, numel=3, size=(3,), stride=(1,), stype=hf.Global("torch", name))
           for name in cases}
    sd = torchload.load_state_dict(write(tmp_path, hf.torch_zip(obj, {n: c[0] for n, c in cases.items()})))
    for name, (_, dtype, values) in cases.items():
        assert (sd[name].dtype, sd[name].tolist()) == (np.dtype(dtype), np.array(values, dtype).tolist()), name


def test_offset_repr_is_cut_at_40_characters(tmp_path):
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(offset="o" * 60)}, {"0": F4}))
    assert _line(p, torchload.CheckpointError) == \
        f"{p}: corrupt PyTorch checkpoint (tensor storage offset '{'o' * 39} is not an integer)"


def test_tensors_are_writable_copies(tmp_path):
    """Two tensors over one storage come back as separate, writable arrays (not views of it)."""
    obj = {"a": hf.tensor(size=(4,), stride=(1,)), "b": hf.tensor(size=(2,), stride=(1,), offset=2)}
    sd = torchload.load_state_dict(write(tmp_path, hf.torch_zip(obj, {"0": F4})))
    assert sd["a"].flags.writeable and sd["b"].flags.writeable and not np.shares_memory(sd["a"], sd["b"])
    sd["a"][2] = 9
    assert sd["b"].tolist() == [3, 4]


def test_bfloat16_storage_of_two_values(tmp_path):
    bf = hf.Global("torch", "BFloat16Storage")
    p = write(tmp_path, hf.torch_zip({"b": hf.tensor(numel=2, size=(2,), stride=(1,), stype=bf)},
                                     {"0": np.array([0x3F80, 0xC000], "<u2").tobytes()}))
    b = torchload.load_state_dict(p)["b"]
    assert (b.dtype, b.tolist()) == (np.float32, [1.0, -2.0])


def test_shape_of_32_dimensions_and_33(tmp_path):
    """32 sizes are read (numpy's own limit is higher), 33 refused with the repr cut at 60; a
    bare number is not a shape."""
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(size=(1,) * 32, stride=(1,) * 32)}, {"0": F4}))
    w = torchload.load_state_dict(p)["w"]
    assert w.shape == (1,) * 32 and w.reshape(-1).tolist() == [1.0]
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(size=(1,) * 33, stride=(1,) * 33)}, {"0": F4}))
    assert _line(p, torchload.CheckpointError) == \
        f"{p}: corrupt PyTorch checkpoint (tensor shape {str((1,) * 33)[:60]} is not a list of integers)"
    p = write(tmp_path, hf.torch_zip({"w": hf.tensor(size=5)}, {"0": F4}))
    assert _line(p, torchload.CheckpointError) == \
        f"{p}: corrupt PyTorch checkpoint (tensor shape 5 is not a list of integers)"
