"""Property-based and mutation fuzzers for every reader of untrusted files (Hypothesis).

Each fuzzer mutates real files from ../shared/models or minimal valid files built
here, feeds them to the reader and asserts:

* only :class:`srzoo.SrzooError` subclasses escape (no traceback for any input);
* the reader's peak Python/numpy memory (tracemalloc) stays under a small multiple
  of ``SRZOO_MAX_MODEL_BYTES``, set to 16 MiB here;
* nothing is written outside the test's temporary folder (the files are written
  there; Hypothesis keeps no example database).

CI runs a bounded number of examples per reader, derandomized (the same inputs each
run, ~1-2 minutes for the whole file). A longer, random run by hand::

    SRZOO_FUZZ_EXAMPLES=5000 python -m pytest -q tests/fuzz -p no:cacheprovider

A crashing input it finds is printed by Hypothesis; commit it under
``tests/data/hostile/`` with a test (tests/convert/test_hostile_*.py).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import sys
import tarfile
import tempfile
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_files as hf  # noqa: E402

from srzoo.errors import SrzooError  # noqa: E402

MODELS = hf.SHARED_MODELS
CAP = 16 << 20
#: peak traced memory allowed while reading one input: the bound, the copy made
#: from it and the reader's working set
PEAK = 3 * CAP + (24 << 20)
_BY_HAND = "SRZOO_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("SRZOO_FUZZ_EXAMPLES", "100"))

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not _BY_HAND, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.fixture(autouse=True)
def _cap(monkeypatch):
    monkeypatch.setenv("SRZOO_MAX_MODEL_BYTES", str(CAP))


@pytest.fixture(scope="module")
def work():
    d = Path(tempfile.mkdtemp(prefix="srzoo-fuzz-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def only_srzoo_errors(fn: Callable[[], Any]) -> None:
    """Run ``fn``: it may succeed or raise SrzooError (one line); anything else fails the
    test, and so does a traced peak above :data:`PEAK`."""
    tracemalloc.start()
    try:
        fn()
    except SrzooError as e:
        assert "\n" not in str(e).strip(), str(e)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < PEAK, f"peak {peak} bytes while reading one input"


# ------------------------------------------------------------------ mutations
INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
               b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x00\x00\x00\x00\x00\x00\x00\x40", b"(", b"]"]


@st.composite
def mutations(draw: Any, size: int, hot: tuple[int, int] | None = None) -> list[tuple[str, int, bytes]]:
    """A list of byte-level edits of a ``size``-byte file; ``hot``: a region most edits hit."""
    lo, hi = hot or (0, size)
    pos = st.one_of(st.integers(lo, max(lo, hi - 1)), st.integers(0, max(0, size - 1)))
    edit = st.tuples(st.sampled_from(["set", "insert", "delete", "truncate", "interesting"]), pos,
                     st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(INTERESTING)))
    return draw(st.lists(edit, min_size=1, max_size=6))


def mutate(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    b = bytearray(data)
    for kind, pos, val in edits:
        pos = min(pos, len(b))
        if kind in ("set", "interesting"):
            b[pos:pos + len(val)] = val
        elif kind == "insert":
            b[pos:pos] = val
        elif kind == "delete":
            del b[pos:pos + len(val) * 7]
        else:
            del b[pos:]
    return bytes(b)


def put(work: Path, name: str, data: bytes) -> Path:
    p = work / name
    p.write_bytes(data)
    return p


# ------------------------------------------------------------------ .pth
def _pkl_region(data: bytes) -> tuple[int, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
    return info.header_offset, info.header_offset + 30 + len(info.filename) + info.compress_size


def _load_pth(path: Path) -> None:
    from srzoo.convert.files import inspect_file
    from srzoo.convert.torchload import load_state_dict

    load_state_dict(path)
    inspect_file(path)


VALID_PTH = hf.valid_pth()
REAL_ZIP_PTH = (MODELS / "esrgan" / "realesr-animevideov3.pth").read_bytes() if MODELS.is_dir() else b""
REAL_LEGACY_PTH = (MODELS / "carn" / "carn_m.pth").read_bytes() if MODELS.is_dir() else b""


@FUZZ
@given(edits=mutations(len(VALID_PTH), _pkl_region(VALID_PTH)))
def test_fuzz_pth_zip_minimal(work, edits):
    p = put(work, "m.pth", mutate(VALID_PTH, edits))
    only_srzoo_errors(lambda: _load_pth(p))


@FUZZ
@given(edits=mutations(len(REAL_ZIP_PTH), _pkl_region(REAL_ZIP_PTH) if REAL_ZIP_PTH else None))
def test_fuzz_pth_zip_real(work, edits):
    p = put(work, "real.pth", mutate(REAL_ZIP_PTH, edits))
    only_srzoo_errors(lambda: _load_pth(p))


@FUZZ
@given(edits=mutations(len(REAL_LEGACY_PTH), (0, 20000)))
def test_fuzz_pth_legacy_real(work, edits):
    p = put(work, "legacy.pth", mutate(REAL_LEGACY_PTH, edits))
    only_srzoo_errors(lambda: _load_pth(p))


# pickles built from the vocabulary a checkpoint uses, with hostile values
_ints = st.one_of(st.integers(-3, 70), st.sampled_from([2 ** 31, 2 ** 40, 2 ** 62, 2 ** 64, -2 ** 63]))
_junk = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.floats(allow_nan=True), _ints)
_dims = st.one_of(st.lists(_ints, max_size=5).map(tuple), _junk)
_pid = st.one_of(
    st.tuples(st.just("storage"), st.sampled_from([hf.FLOAT, hf.Global("torch", "HalfStorage"),
                                                   hf.Global("torch", "BFloat16Storage")]),
              st.sampled_from(["0", "1"]), st.just("cpu"), _ints),
    st.lists(_junk, max_size=6).map(tuple))
_tensor = st.builds(lambda pid, off, size, stride: hf.Call(hf.REBUILD, (hf.Pid(pid), off, size, stride)),
                    _pid, st.one_of(_ints, _junk), _dims, _dims)
_tree = st.recursive(st.one_of(_tensor, _junk),
                     lambda kids: st.one_of(st.dictionaries(st.one_of(st.text(max_size=3), _ints), kids, max_size=3),
                                            st.lists(kids, max_size=3)), max_leaves=8)


@FUZZ
@given(tree=st.dictionaries(st.sampled_from(["w", "params_ema", "state_dict", "model", "b"]), _tree,
                            min_size=1, max_size=3),
       storages=st.dictionaries(st.sampled_from(["0", "1"]), st.binary(max_size=64), max_size=2))
def test_fuzz_pth_pickles(work, tree, storages):
    p = put(work, "pickled.pth", hf.torch_zip(tree, storages))
    only_srzoo_errors(lambda: _load_pth(p))


# ------------------------------------------------------------------ ncnn
NCNN = MODELS / "esrgan-ncnn" / "realesr-animevideov3-x2"


def _param_edit() -> Any:
    word = st.one_of(st.sampled_from(["0", "-1", "1000.0", "2147483648", "nan", "inf", "1e308", "x",
                                      "data", "54", "56", "output", "0=0", "6=0", "-23310=2,1", ""]),
                     st.integers(-5, 70000).map(str))
    return st.lists(st.tuples(st.integers(0, 120), st.integers(0, 40), word), min_size=1, max_size=5)


@FUZZ
@given(edits=_param_edit(), cut=st.one_of(st.none(), st.integers(0, 1247368)))
def test_fuzz_ncnn(work, edits, cut):
    from srzoo.convert.ncnn import NcnnToONNX

    lines = (NCNN.with_suffix(".param")).read_text().split("\n")
    for line_no, tok_no, word in edits:
        toks = lines[line_no % len(lines)].split()
        if toks:
            toks[tok_no % len(toks)] = word
            lines[line_no % len(lines)] = " ".join(toks)
    p = put(work, "n.param", "\n".join(lines).encode())
    data = NCNN.with_suffix(".bin").read_bytes()
    put(work, "n.bin", data if cut is None else data[:cut])
    only_srzoo_errors(lambda: NcnnToONNX().inspect(p))


# ------------------------------------------------------------------ Keras .h5 (structured)
@FUZZ
@given(kernel=st.lists(st.integers(0, 12), min_size=1, max_size=6), bias=st.integers(0, 70),
       dtype=st.sampled_from(["<f4", "<f8", "<i2", "S4", "?"]),
       link=st.sampled_from(["hard", "soft", "external", "missing"]),
       names=st.lists(st.sampled_from(["convolution2d_1", "convolution2d_2", "convolution2d_3", "nope", "",
                                       "convolution2d_1/convolution2d_1_W:0"]), max_size=4))
def test_fuzz_keras_h5(work, kernel, bias, dtype, link, names):
    h5py = pytest.importorskip("h5py")
    from srzoo.convert.files import inspect_file

    p = work / "k.h5"
    shutil.copyfile(MODELS / "srcnn" / "m_model_adam_new30.h5", p)
    with h5py.File(p, "r+") as f:
        g = f["convolution2d_2"]
        w = "convolution2d_2_W:0"
        del g[w]
        if link == "hard":
            data = np.ones(kernel, dtype=dtype) if dtype != "S4" else np.array([b"ab"] * int(np.prod(kernel)))
            g[w] = data
        elif link == "soft":
            g[w] = h5py.SoftLink("/convolution2d_1/convolution2d_1_W:0")
        elif link == "external":
            g[w] = h5py.ExternalLink("/etc/passwd", "/x")
        g2 = f["convolution2d_2"]
        del g2["convolution2d_2_b:0"]
        g2["convolution2d_2_b:0"] = np.zeros(bias, np.float32)
        if names:
            f.attrs["layer_names"] = np.array([n.encode() for n in names])
    only_srzoo_errors(lambda: inspect_file(p))


# ------------------------------------------------------------------ safetensors
_st_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.text(max_size=4),
                                   st.floats(allow_nan=False)),
                         lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=3), kids,
                                                                                            max_size=3)),
                         max_leaves=10)
_st_tensor = st.fixed_dictionaries({
    "dtype": st.one_of(st.sampled_from(["F32", "F16", "BF16", "I64", "BOOL", "U8", "X"]), _st_value),
    "shape": st.one_of(st.lists(st.one_of(st.integers(0, 9), st.sampled_from([2 ** 62, 2 ** 64, -1, True])),
                                max_size=4), _st_value),
    "data_offsets": st.one_of(st.lists(st.integers(-2, 80), min_size=2, max_size=2), _st_value)})


@FUZZ
@given(header=st.dictionaries(st.text(min_size=1, max_size=4), st.one_of(_st_tensor, _st_value), max_size=4),
       data=st.binary(max_size=80))
def test_fuzz_safetensors_headers(work, header, data):
    from srzoo.convert import safetensors

    raw = json.dumps(header).encode()
    p = put(work, "h.safetensors", struct.pack("<Q", len(raw)) + raw + data)
    only_srzoo_errors(lambda: safetensors.load(p))


def _valid_safetensors() -> bytes:
    from srzoo.convert import safetensors

    buf = Path(tempfile.mkdtemp()) / "v.safetensors"
    safetensors.save(buf, {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float16)})
    data = buf.read_bytes()
    shutil.rmtree(buf.parent)
    return data


VALID_ST = _valid_safetensors()


@FUZZ
@given(edits=mutations(len(VALID_ST), (0, 160)))
def test_fuzz_safetensors_bytes(work, edits):
    from srzoo.convert import safetensors

    p = put(work, "m.safetensors", mutate(VALID_ST, edits))
    only_srzoo_errors(lambda: safetensors.load(p))


# ------------------------------------------------------------------ ONNX
_segment = st.sampled_from(["..", ".", "", "a", "w.bin", "sub", "link", "/", "\\", "C:", "..\\..", "etc",
                            "services", "\x00", "~"])


@FUZZ
@given(parts=st.lists(_segment, min_size=1, max_size=6), sep=st.sampled_from(["/", "\\", ""]))
def test_fuzz_onnx_external_location(work, parts, sep):
    """Property: whatever the location, either it is refused or the file it names lies
    inside the model's folder (symlinks resolved)."""
    from srzoo.hub.untrusted import external_target
    from srzoo.errors import ModelLoadError

    folder = work / "onnx" / "model"
    if not folder.is_dir():
        (folder / "sub").mkdir(parents=True)
        (folder / "w.bin").write_bytes(bytes(16))
        (folder / "sub" / "w.bin").write_bytes(bytes(16))
        os.symlink("/etc", folder / "link")
        (work / "onnx" / "w.bin").write_bytes(bytes(16))
    location = sep.join(parts)
    try:
        target = external_target(folder / "m.onnx", location)
    except ModelLoadError:
        return
    real = os.path.realpath(target)
    assert real.startswith(os.path.realpath(folder) + os.sep), (location, real)
    assert os.path.isfile(real)


def _small_onnx() -> bytes:
    d = Path(tempfile.mkdtemp())
    path, _, _ = hf.onnx_conv_d2s(d, location="w.bin")
    data = path.read_bytes()
    shutil.rmtree(d)
    return data


SMALL_ONNX = _small_onnx()


@FUZZ
@given(edits=mutations(len(SMALL_ONNX)))
def test_fuzz_onnx_bytes(work, edits):
    from srzoo.hub.untrusted import check_onnx_external

    folder = work / "onnxb"
    folder.mkdir(exist_ok=True)
    (folder / "w.bin").write_bytes(bytes(4 * 108))
    p = put(folder, "m.onnx", mutate(SMALL_ONNX, edits))
    only_srzoo_errors(lambda: check_onnx_external(p))


# ------------------------------------------------------------------ GraphDef
PB = (MODELS / "opencv" / "FSRCNN-small_x2.pb").read_bytes() if MODELS.is_dir() else b""


@FUZZ
@given(edits=mutations(len(PB)))
def test_fuzz_graphdef(work, edits):
    from srzoo.convert.graphdef import graphdef_to_onnx
    from srzoo.convert.graphdef_proto import read_graphdef
    from srzoo.hub.untrusted import reading

    data = mutate(PB, edits)

    def run() -> None:
        read_graphdef(data)
        with reading("fuzzed.pb", "TensorFlow GraphDef"):  # what GraphDefToONNX.convert wraps
            graphdef_to_onnx(data)
    only_srzoo_errors(run)


# ------------------------------------------------------------------ TOML manifests
GOOD_TOML = ('schema = 1\n\n[[model]]\nname = "x"\nscale = 2\nformat = "onnx"\nlicense = "MIT"\n'
             'file = "x.onnx"\nsize = 10\nsha256 = "' + "0" * 64 + '"\nurls = ["https://example.invalid/x.onnx"]\n'
             '\n[model.io]\ncolor = "rgb"\nrange = 1.0\nmean = [0.5, 0.5, 0.5]\n').encode()


@FUZZ
@given(edits=mutations(len(GOOD_TOML)),
       extra=st.sampled_from([b"", b"tags = " + b"[" * 3000 + b"]" * 3000, b"scale = 1e400", b"io = 5",
                              b"[[model]]\nname = 1", b"defaults = []", b"size = -1"]))
def test_fuzz_toml_manifest(work, edits, extra):
    from srzoo.hub.manifest import parse_manifest

    p = put(work, "m.toml", mutate(GOOD_TOML, edits) + b"\n" + extra + b"\n")
    only_srzoo_errors(lambda: parse_manifest(p))


# ------------------------------------------------------------------ catalogue records
_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.text(max_size=5),
                               st.floats(allow_nan=False, allow_infinity=False)),
                     lambda kids: st.one_of(st.lists(kids, max_size=3),
                                            st.dictionaries(st.sampled_from(
                                                ["scale", "resources", "size", "sha256", "urls", "type",
                                                 "platform", "architecture", "license", "tags", "name"]),
                                                kids, max_size=5)), max_leaves=12)


@FUZZ
@given(records=st.dictionaries(st.text(min_size=1, max_size=6), _json, max_size=3))
def test_fuzz_catalogue_records(records):
    from srzoo.hub.catalog.entries import entry_for
    from srzoo.hub.catalog.store import parse_catalogue

    def run() -> None:
        cat = parse_catalogue(json.dumps({"schema": 1, "revision": "0" * 40, "models": records}).encode(),
                              "fuzzed.json")
        for rec in cat.records.values():
            entry_for(rec)
    only_srzoo_errors(run)


# ------------------------------------------------------------------ archives
def _archives() -> dict[str, bytes]:
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("model.pth", bytes(range(256)) * 16)
        f.writestr("notes.txt", "hello")
    t = io.BytesIO()
    with tarfile.open(fileobj=t, mode="w:gz") as f:
        data = bytes(range(256)) * 16
        info = tarfile.TarInfo("model.pth")
        info.size = len(data)
        f.addfile(info, io.BytesIO(data))
    return {"a.zip": z.getvalue(), "a.tar.gz": t.getvalue()}


ARCHIVES = _archives()


@FUZZ
@given(name=st.sampled_from(sorted(ARCHIVES)), edits=mutations(4096))
def test_fuzz_archives(work, monkeypatch, name, edits):
    from srzoo.hub import archive

    monkeypatch.setenv("SRZOO_CACHE_DIR", str(work / "cache"))
    p = put(work, name, mutate(ARCHIVES[name], edits))
    out = work / "cache" / "extracted"
    shutil.rmtree(out, ignore_errors=True)
    only_srzoo_errors(lambda: archive.extract_member(p, "model.pth", "ef" * 32))
    # nothing but the member (or nothing at all) under the cache's extracted folder
    left = [q for q in out.rglob("*") if q.is_file()] if out.exists() else []
    assert all(q.name == "model.pth" for q in left), left
