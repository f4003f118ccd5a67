"""srzoo.convert.torchload, the parts test_hostile_pth.py leaves loose: the allow-list name by
name (what each allowed name builds, what each near miss is refused as), pickled modules
flattened into dotted keys (parameters, buffers, submodules), the nesting limits exactly at 64
and 65, the wrapper and DataParallel rules, and every line load / load_state_dict say.

Checkpoints are crafted opcode by opcode (tests/hostile_files.py); no torch needed.
"""

from __future__ import annotations

import os
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_files as hf  # noqa: E402

from srzoo.convert import torchload  # noqa: E402
from srzoo.errors import ModelLoadError  # noqa: E402

F4 = np.arange(1, 5, dtype="<f4").tobytes()  # storage "0": 1, 2, 3, 4
T = hf.tensor()  # [[1, 2], [3, 4]] over storage "0"
OD = hf.Call(hf.Global("collections", "OrderedDict"), ())
LONG = hf.Global("torch", "LongStorage")
NEVER = ("which a checkpoint of weights never needs "
         "(srzoo loads only tensors and plain containers; nothing was run)")


def one(i: int) -> hf.Call:
    """A 1-value tensor over storage "0": [i + 1]."""
    return hf.tensor(offset=i, size=(1,), stride=(1,))


def pth(tmp_path: Path, obj: Any, storages: dict[str, bytes] | None = None, name: str = "x.pth",
        **kw: Any) -> Path:
    p = tmp_path / name
    pkl = obj if isinstance(obj, bytes) else hf.pickle_bytes(obj)
    p.write_bytes(hf.torch_zip(pkl, {"0": F4} if storages is None else storages, **kw))
    return p


def line(p: Path, exc: type[Exception] = ModelLoadError, fn: Any = torchload.load_state_dict) -> str:
    with pytest.raises(exc) as e:
        fn(p)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def listed(sd: "OrderedDict[str, np.ndarray]") -> list[tuple[str, list]]:
    return [(k, v.tolist()) for k, v in sd.items()]


def nest(n: int, leaf: Any) -> Any:
    for _ in range(n):
        leaf = {"a": leaf}
    return leaf


# ------------------------------------------------------------------ the allow-list
def test_every_allowed_name_builds_what_it_stands_for(tmp_path):
    """_rebuild_tensor (v1, 4 arguments) and _v2; _rebuild_parameter, _with_state and
    nn.Parameter give their tensor; OrderedDict is one; the thnn backend is None."""
    st = hf.Pid(("storage", hf.FLOAT, "0", "cpu", 4))
    obj = {
        "v1": hf.Call(hf.Global("torch._utils", "_rebuild_tensor"), (st, 0, (4,), (1,))),
        "v2": T,
        "p": hf.Call(hf.Global("torch._utils", "_rebuild_parameter"), (one(1), True, OD)),
        "ps": hf.Call(hf.Global("torch._utils", "_rebuild_parameter_with_state"), (one(2), True, OD, OD)),
        "P": hf.Call(hf.Global("torch.nn.parameter", "Parameter"), (one(3), True)),
        "od": OD,
        "backend": hf.Call(hf.Global("torch.nn.backends.thnn", "_get_thnn_function_backend"), ()),
    }
    p = pth(tmp_path, obj)
    o = torchload.load(p)
    assert type(o["od"]) is OrderedDict and o["od"] == {} and o["backend"] is None
    assert [type(o[k]) for k in ("v1", "v2", "p", "ps", "P")] == [torchload.Tensor] * 5
    assert listed(torchload.load_state_dict(p)) == [
        ("v1", [1, 2, 3, 4]), ("v2", [[1, 2], [3, 4]]), ("p", [2]), ("ps", [3]), ("P", [4])]


REFUSED_NAMES = [
    ("collections", "defaultdict"),  # only OrderedDict of collections
    ("os", "_rebuild_tensor_v2"),  # the rebuild names only from torch._utils
    ("os", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_qtensor"),  # ... and only those of torch._utils
    ("torch.nn.parameter", "UninitializedParameter"),  # only Parameter of torch.nn.parameter
    ("torch", "load"),  # torch.<name> only for the storage types
    ("torch", "Tensor"),  # torch's own classes are not records
    ("torch.serialization", "StorageType"),
    ("os", "_get_thnn_function_backend"),
    ("torch.nn.backends.thnn", "backend"),
    ("subprocess", "Popen"),  # CamelCase, but of the standard library
    ("email.message", "Message"),  # ... also below its top-level package
    ("numpy", "Generator"),
    ("numpy.random", "RandomState"),
    ("builtins", "Exception"),
    ("mymodels", "helper"),  # a module's function, not a class
    ("my models", "Net"),  # not a module name
    ("my-models", "Net"),
]


def test_names_outside_the_allow_list_are_refused(tmp_path):
    for module, name in REFUSED_NAMES:
        p = pth(tmp_path, {"x": hf.Global(module, name)})
        assert line(p, torchload.UnsafeCheckpoint, torchload.load) == \
            f"{p}: refused: its pickle asks for {module}.{name}, {NEVER}", (module, name)


RECORD_NAMES = [
    ("vdsr", "Net"),
    ("torch.nn.modules.conv", "Conv2d"),
    ("torch.nn.modules.container", "Sequential"),
    ("models.RRDBNet_arch", "RRDBNet"),  # capitals and digits in the module
    ("basicsr.archs.rrdbnet_arch", "RRDB"),
    ("_private", "Net_2"),
    ("mymodels", "Parameter"),  # names that mean something elsewhere: still records here
    ("mymodels", "FloatStorage"),
    ("mymodels", "OrderedDict"),
]


def test_model_classes_become_records_named_after_them(tmp_path):
    obj = {f"c{i}": hf.Global(m, n) for i, (m, n) in enumerate(RECORD_NAMES)}
    o = torchload.load(pth(tmp_path, obj))
    for i, (m, n) in enumerate(RECORD_NAMES):
        c = o[f"c{i}"]
        assert issubclass(c, torchload.ModuleRecord) and (c.__name__, c._srzoo_qualname) == (n, f"{m}.{n}")
    assert "vdsr" not in sys.modules and "models" not in sys.modules


def test_python2_strings_are_latin1(tmp_path):
    """Checkpoints written by Python 2 torch hold byte strings (SHORT_BINSTRING, BINSTRING):
    read as latin-1, so every byte is a character."""
    pkl = (b"\x80\x02}(U\x02k\xe9" + hf._enc(one(0)) + b"T\x01\x00\x00\x00\xff" + hf._enc(one(1)) + b"u.")
    assert listed(torchload.load_state_dict(pth(tmp_path, pkl))) == [("k\xe9", [1]), ("\xff", [2])]


def test_legacy_checkpoint_reads(tmp_path):
    p = tmp_path / "legacy.pth"
    p.write_bytes(hf.legacy_pth({"w": hf.tensor(pid=("storage", hf.FLOAT, "0", "cpu", 4, None))},
                                {"0": np.arange(4.0)}))
    assert listed(torchload.load_state_dict(p)) == [("w", [[0, 1], [2, 3]])]


# ------------------------------------------------------------------ flattening
def test_pickled_modules_flatten_to_dotted_keys(tmp_path):
    """Parameters, then buffers, then submodules, each in pickled order; None entries and
    BatchNorm's num_batches_tracked are left out."""
    nbt = hf.tensor(key="n", numel=1, size=(), stride=(), stype=LONG)
    bn = hf.Rec("torch.nn.modules.batchnorm", "BatchNorm2d", {
        "training": False, "_parameters": {"weight": one(0), "bias": None},
        "_buffers": {"running_mean": one(1), "running_var": None, "num_batches_tracked": nbt},
        "_modules": {}})
    conv = hf.Rec("torch.nn.modules.conv", "Conv2d", {"_parameters": {"weight": T, "bias": one(3)},
                                                  "_buffers": {}, "_modules": {}})
    net = hf.Rec("vdsr", "Net", {"_parameters": {"scale": one(2)}, "_buffers": {"mask": one(3)},
                              "_modules": {"conv": conv, "bn": bn, "gone": None}})
    p = pth(tmp_path, net, {"0": F4, "n": np.array([7], "<i8").tobytes()})
    assert listed(torchload.load_state_dict(p)) == [
        ("scale", [3]), ("mask", [4]), ("conv.weight", [[1, 2], [3, 4]]), ("conv.bias", [4]),
        ("bn.weight", [1]), ("bn.running_mean", [2])]
    # the whole module under a wrapper key, as some training scripts save it
    p = pth(tmp_path, {"model": net, "epoch": 50}, {"0": F4, "n": np.array([7], "<i8").tobytes()}, "m.pth")
    assert list(torchload.load_state_dict(p)) == [
        "scale", "mask", "conv.weight", "conv.bias", "bn.weight", "bn.running_mean"]


def test_keys_are_names_exactly(tmp_path):
    """Keys ending in X (the dot stripped, nothing else), numbers as their str."""
    p = pth(tmp_path, {"X": one(0), "upX": one(1), "bodyX": {"convX": one(2)}, 0: one(3), 1.5: one(0)})
    assert listed(torchload.load_state_dict(p)) == [
        ("X", [1]), ("upX", [2]), ("bodyX.convX", [3]), ("0", [4]), ("1.5", [1])]


def test_keys_that_are_not_names(tmp_path):
    for key, kind in (((1, 2), "tuple"), (True, "bool"), (None, "NoneType")):
        p = pth(tmp_path, {"w": T, key: T})
        assert line(p, torchload.CheckpointError) == \
            f"{p}: checkpoint has a key of type {kind}, not a name", key
        p = pth(tmp_path, hf.Rec("vdsr", "Net", {"_parameters": {key: T}}), name="rec.pth")
        assert line(p, torchload.CheckpointError) == \
            f"{p}: checkpoint has a key of type {kind}, not a name", key


def _too_deep(p: Path, prefix: str) -> str:
    return f"{p}: checkpoint nests modules or dicts more than 64 deep (at {prefix[:80]}...)"


def test_dicts_nest_64_deep_not_65(tmp_path):
    p = pth(tmp_path, nest(64, T))
    assert listed(torchload.load_state_dict(p)) == [(".".join(["a"] * 64), [[1, 2], [3, 4]])]
    p = pth(tmp_path, nest(65, T), name="65.pth")
    assert line(p, torchload.CheckpointError) == _too_deep(p, "a." * 65)


@pytest.mark.parametrize("part", ["_parameters", "_buffers"])
def test_module_tensors_count_one_level(tmp_path, part):
    """A module at depth 63 holds its tensor at 64 (read); at depth 64, at 65 (refused)."""
    rec = hf.Rec("vdsr", "Net", {part: {"w": T}})
    p = pth(tmp_path, nest(63, rec))
    assert listed(torchload.load_state_dict(p)) == [(".".join(["a"] * 63 + ["w"]), [[1, 2], [3, 4]])]
    p = pth(tmp_path, nest(64, rec), name="65.pth")
    assert line(p, torchload.CheckpointError) == _too_deep(p, "a." * 64 + "w.")


def test_submodules_count_one_level(tmp_path):
    rec = hf.Rec("vdsr", "Net", {"_modules": {"m": hf.Rec("vdsr", "Block", {"_parameters": {"w": T}})}})
    p = pth(tmp_path, nest(62, rec))
    assert listed(torchload.load_state_dict(p)) == [(".".join(["a"] * 62 + ["m", "w"]), [[1, 2], [3, 4]])]
    p = pth(tmp_path, nest(63, rec), name="65.pth")
    assert line(p, torchload.CheckpointError) == _too_deep(p, "a." * 63 + "m.w.")


# ------------------------------------------------------------------ wrappers, DataParallel
def test_wrappers_are_unwrapped_in_order(tmp_path):
    cases = [
        ({"params_ema": {"w": one(0)}, "params": {"w": one(1)}}, [("w", [1])]),
        ({"params": {"w": one(1)}, "state_dict": {"w": one(2)}}, [("w", [2])]),
        ({"state_dict": {"w": one(2)}, "model": {"w": one(3)}}, [("w", [3])]),
        ({"model": {"w": one(3)}, "net": {"w": one(0)}}, [("w", [4])]),
        ({"net": {"w": one(0)}, "generator": {"w": one(1)}}, [("w", [1])]),
        ({"generator": {"w": one(1)}, "g": {"w": one(2)}}, [("w", [2])]),
        ({"g": {"w": one(2)}, "epoch": 3}, [("w", [3])]),
        ({"model": one(0), "w": one(1)}, [("model", [1]), ("w", [2])]),  # a tensor is not a wrapper
    ]
    for i, (obj, want) in enumerate(cases):
        assert listed(torchload.load_state_dict(pth(tmp_path, obj, name=f"{i}.pth"))) == want, obj


def test_wrappers_unwrap_64_deep_not_65(tmp_path):
    def wrapped(n: int) -> Any:
        obj: Any = {"w": one(0)}
        for _ in range(n):
            obj = {"model": obj}
        return obj

    assert listed(torchload.load_state_dict(pth(tmp_path, wrapped(1)))) == [("w", [1])]
    assert listed(torchload.load_state_dict(pth(tmp_path, wrapped(2), name="2.pth"))) == [("w", [1])]
    assert listed(torchload.load_state_dict(pth(tmp_path, wrapped(64), name="64.pth"))) == [("w", [1])]
    assert listed(torchload.load_state_dict(pth(tmp_path, wrapped(65), name="65.pth"))) == [("model.w", [1])]


def test_dataparallel_prefix(tmp_path):
    p = pth(tmp_path, {"module.conv.weight": one(0), "module.conv.bias": one(1)})
    assert listed(torchload.load_state_dict(p)) == [("conv.weight", [1]), ("conv.bias", [2])]
    p = pth(tmp_path, {"module.a": one(0), "b": one(1)}, name="mixed.pth")  # not all: kept
    assert listed(torchload.load_state_dict(p)) == [("module.a", [1]), ("b", [2])]
    p = pth(tmp_path, {"modulea": one(0)}, name="modulea.pth")
    assert listed(torchload.load_state_dict(p)) == [("modulea", [1])]


# ------------------------------------------------------------------ lines
def test_load_lines_for_files_it_cannot_read(tmp_path, monkeypatch):
    """Checked before the file is opened (regular_file): a ModelLoadError, not yet a CheckpointError."""
    p = tmp_path / "missing.pth"
    assert line(p, ModelLoadError, torchload.load) == \
        f"{p}: cannot read the PyTorch checkpoint: No such file or directory"
    assert line(tmp_path, ModelLoadError, torchload.load) == \
        f"{tmp_path}: is a folder, not a PyTorch checkpoint; give a regular file"
    p = pth(tmp_path, {"w": T})
    n = p.stat().st_size
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(n - 1))
    assert line(p, ModelLoadError, torchload.load) == (
        f"{p}: the PyTorch checkpoint ({n} bytes) needs {n} bytes, above SRZOO_MAX_MODEL_BYTES={n - 1} "
        f"({n - 1} bytes); a crafted or damaged file? If you trust it, raise SRZOO_MAX_MODEL_BYTES")
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(n + 100))
    assert listed(torchload.load_state_dict(p)) == [("w", [[1, 2], [3, 4]])]


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="Linux /proc")
def test_load_line_when_reading_fails():
    """/proc/self/mem is a regular file of size 0 whose read at offset 0 fails (EIO): the
    error of read_bytes itself, after regular_file let it through."""
    p = Path("/proc/self/mem")
    assert line(p, torchload.CheckpointError, torchload.load) == \
        f"{p}: cannot read the PyTorch checkpoint: Input/output error"


def test_load_lines_name_the_file_once(tmp_path, monkeypatch):
    p = pth(tmp_path, {"w": hf.Call(hf.Global("os", "system"), ("true",))})
    assert line(p, torchload.UnsafeCheckpoint, torchload.load) == \
        f"{p}: refused: its pickle asks for os.system, {NEVER}"
    p = tmp_path / "nopkl.pth"
    p.write_bytes(hf.torch_zip(b".", {}).replace(b"archive/data.pkl", b"archive/data.pkX"))
    assert line(p, torchload.CheckpointError, torchload.load) == \
        f"{p}: zip file without exactly one data.pkl: not a torch checkpoint"
    p = tmp_path / "five.pth"
    p.write_bytes(hf.pickle_bytes(5))
    assert line(p, torchload.CheckpointError, torchload.load) == \
        f"{p}: not a PyTorch checkpoint (neither zip nor legacy magic number)"
    p = pth(tmp_path, b"\x80\x02}q\x04.", name="memo.pth")
    assert line(p, torchload.CheckpointError, torchload.load) == \
        f"{p}: corrupt PyTorch checkpoint (memo index 4 in a pickle of 4 opcodes)"
    p = pth(tmp_path, b".", name="stop.pth")
    with pytest.raises(torchload.CheckpointError) as e:
        torchload.load(p)
    assert str(e.value) == f"{p}: malformed PyTorch checkpoint (UnpicklingError: unpickling stack underflow)"
    # the byte budget: data.pkl then the (deflated) storage, counted under the file's name
    zeros = bytes(40_000)
    pkl = b"\x80\x02" + hf._enc({"w": hf.tensor(numel=10_000, size=(4,), stride=(1,))}) + b"."
    p = pth(tmp_path, pkl, {"0": zeros}, "budget.pth", compression=zipfile.ZIP_DEFLATED)
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", "10000")
    with pytest.raises(torchload.CheckpointError) as e:
        torchload.load(p)
    assert str(e.value) == (
        f"{p}: the checkpoint's tensors (at storage archive/data/0) needs {len(pkl) + 40_000} bytes, above "
        "SRZOO_MAX_MODEL_BYTES=10000 (10000 bytes); a crafted or damaged file? If you trust it, raise "
        "SRZOO_MAX_MODEL_BYTES")


def test_load_state_dict_lines(tmp_path):
    for i, obj in enumerate(({}, {"epoch": 3, "name": "x"}, {"model": {}})):
        p = pth(tmp_path, obj, name=f"{i}.pth")
        assert line(p, torchload.CheckpointError) == f"{p}: no tensors found in the checkpoint"
    # a line that already names the file is not named twice
    p = pth(tmp_path, {"w": hf.tensor(offset=1)}, name="past.pth")
    assert line(p, torchload.CheckpointError) == \
        f"{p}: tensor of shape (2, 2), strides (2, 1) and offset 1 reaches past its storage of 4 values"
    # an empty tensor numpy cannot make (its other sizes overflow): the parser backstop's line
    p = pth(tmp_path, {"w": hf.tensor(size=(0, 1 << 40, 1 << 40), stride=(1, 1, 1))}, name="empty.pth")
    assert line(p).startswith(f"{p}: malformed PyTorch checkpoint (ValueError: ")


# ------------------------------------------------------------------ shared containers (fixed)
def _dag_dict(n: int, leaf: bytes = b"N") -> bytes:
    """d_k = {"a": d_(k-1), "b": d_(k-1)} by memo references: 2**n paths in ~20 bytes a level."""
    b = b"\x80\x02" + leaf + b"q\x00"
    for k in range(1, n + 1):
        b += b"}(X\x01\x00\x00\x00ah" + bytes([k - 1]) + b"X\x01\x00\x00\x00bh" + bytes([k - 1]) + b"uq" + bytes([k])
    return b + b"."


def _dag_list(n: int) -> bytes:
    """l_k = [l_(k-1), l_(k-1)] by memo references, left on the stack (memo index n)."""
    b = b"\x80\x02]q\x00"
    for k in range(1, n + 1):
        b += b"](h" + bytes([k - 1]) + b"h" + bytes([k - 1]) + b"eq" + bytes([k])
    return b


def test_shared_dicts_are_walked_within_a_bound(tmp_path, monkeypatch):
    """A dict referred to twice from each of n nested dicts: 2**(n+1) - 1 values on 2**n paths.
    Before the fix _flatten walked them all (n = 20: 0.7 s; n = 60, 1.3 kB: forever); now it stops
    after MAX_VISITS values with one line. n = 21 here so that the unfixed code ends (with "no
    tensors found") instead of hanging. Exactly MAX_VISITS values are read."""
    p = pth(tmp_path, _dag_dict(21))
    assert p.stat().st_size < 2000
    assert line(p, torchload.CheckpointError) == (
        f"{p}: checkpoint has more than 1048576 values to look at, one dict or module shared over and "
        f"over? (at a.a.{'b.' * 19}...)")
    # d_2 = {"a": d_1, "b": d_1}, d_1 = {"a": w, "b": w}: 7 values, tied tensors under 4 keys
    p = pth(tmp_path, _dag_dict(2, hf._enc(one(0))), name="tied.pth")
    monkeypatch.setattr(torchload, "MAX_VISITS", 7)
    assert listed(torchload.load_state_dict(p)) == [("a.a", [1]), ("a.b", [1]), ("b.a", [1]), ("b.b", [1])]
    monkeypatch.setattr(torchload, "MAX_VISITS", 6)
    assert line(p, torchload.CheckpointError) == (
        f"{p}: checkpoint has more than 6 values to look at, one dict or module shared over and over? (at b.b....)")


def test_modules_shared_through_parameters_buffers_or_submodules_count_too(tmp_path, monkeypatch):
    """The bound counts every value of the whole walk, whichever way a module holds the shared
    part (its parameters, buffers or submodules): m2 holds m1 twice, m1 holds one tensor twice:
    7 values. A long key is cut to 80 characters in the line."""
    leaf = one(0)
    for kind in ("_parameters", "_buffers", "_modules"):
        m1 = hf.Rec("m", "M", {kind: {"a": leaf, "b": leaf}})
        m2 = hf.Rec("m", "M", {kind: {"a": m1, "b": m1}})
        p = pth(tmp_path, m2, name=f"{kind}.pth")
        monkeypatch.setattr(torchload, "MAX_VISITS", 7)
        assert listed(torchload.load_state_dict(p)) == [("a.a", [1]), ("a.b", [1]), ("b.a", [1]), ("b.b", [1])]
        monkeypatch.setattr(torchload, "MAX_VISITS", 6)
        assert line(p, torchload.CheckpointError) == (
            f"{p}: checkpoint has more than 6 values to look at, one dict or module shared over and over? "
            "(at b.b....)"), kind
    a, b = "a" * 50, "b" * 50
    m1 = hf.Rec("m", "M", {"_modules": {a: leaf, b: leaf}})
    p = pth(tmp_path, hf.Rec("m", "M", {"_modules": {a: m1, b: m1}}), name="long.pth")
    assert line(p, torchload.CheckpointError) == (
        f"{p}: checkpoint has more than 6 values to look at, one dict or module shared over and over? "
        f"(at {b}.{'b' * 29}...)")


def test_an_ordered_dict_where_a_shape_goes_is_printed_bounded(tmp_path):
    """An OrderedDict (an allowed name) as a tensor's shape: the line shows it as OrderedDict({...})
    through the same bounded repr as lists and dicts (reprlib's: keys sorted)."""
    odict = hf.Call(hf.Global("collections", "OrderedDict"), ([("k", 1), ("j", [2, 3])],))
    p = pth(tmp_path, {"w": hf.tensor(size=odict)})
    assert line(p, torchload.CheckpointError) == (
        f"{p}: corrupt PyTorch checkpoint (tensor shape OrderedDict({{'j': [2, 3], 'k': 1}}) "
        "is not a list of integers)")


def test_shared_lists_in_error_lines_are_not_printed_whole(tmp_path):
    """A tensor whose shape (offset, storage type) is a list shared 2**n ways: before the fix,
    repr() of all of it was built to print its first 60 characters (n = 50: forever; n = 22 here,
    so that the unfixed code ends, with the full repr's first characters)."""
    pid = hf._enc(hf.Pid(("storage", hf.FLOAT, "0", "cpu", 4)))
    pkl = _dag_list(22) + b"0}X\x01\x00\x00\x00w" + hf._enc(hf.REBUILD) + b"(" + pid + b"K\x00h\x16(K\x01ttRs."
    p = pth(tmp_path, pkl)
    assert line(p, torchload.CheckpointError) == (
        f"{p}: corrupt PyTorch checkpoint (tensor shape [[[[[...], [...]], [[...], [...]]], [[[...], [...]], "
        "[[...], is not a list of integers)")
    pkl = _dag_list(22) + b"0}X\x01\x00\x00\x00w" + hf._enc(hf.REBUILD) + b"(" + pid + b"h\x16(K\x01t(K\x01ttRs."
    p = pth(tmp_path, pkl, name="offset.pth")
    assert line(p, torchload.CheckpointError) == (
        f"{p}: corrupt PyTorch checkpoint (tensor storage offset [[[[[...], [...]], [[...], [...]]], [[[. "
        "is not an integer)")
    pkl = _dag_list(22) + b"0}X\x01\x00\x00\x00w" + hf._enc(hf.REBUILD) + b"((X\x07\x00\x00\x00storageh\x16" \
        + hf._enc("0") + hf._enc("cpu") + b"K\x04tQK\x00(K\x01t(K\x01ttRs."
    p = pth(tmp_path, pkl, name="stype.pth")
    assert line(p, torchload.CheckpointError) == (
        f"{p}: storage of unknown type [[[[[...], [...]], [[...], [...]]], [[[...], [...]], [[...], [...]]]], "
        "[[[[...],")
