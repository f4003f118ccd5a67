"""ONNX external data may only name files inside the model's own folder.

An initializer with ``data_location = EXTERNAL`` and ``location = "../../etc/services"``
(or an absolute path, or a symlink leading out) is refused with one ModelLoadError line
naming the model and the location before any engine (cv2.dnn, onnxruntime, OpenVINO),
``srzoo inspect`` or the OpenModelDB check opens it; external data inside the folder
still runs, with the right pixels.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_files as hf  # noqa: E402

import srzoo  # noqa: E402
from srzoo.convert.files import inspect_file  # noqa: E402
from srzoo.errors import ModelLoadError  # noqa: E402
from srzoo.hub.catalog.entries import CatalogEntry, inspect_onnx  # noqa: E402
from srzoo.hub.catalog.records import IO  # noqa: E402
from srzoo.hub.untrusted import check_onnx_external  # noqa: E402

ESCAPES = {
    "dotdot": "../../../../../../../../etc/services",
    "absolute": "/etc/services",
    "dotdot inside": "sub/../../outside.bin",
    "backslash dotdot": "..\\..\\etc\\services",
}


@pytest.fixture
def evil(tmp_path, request):
    folder = tmp_path / "models" / "2x-evil-onnx"
    folder.mkdir(parents=True)
    (tmp_path / "models" / "outside.bin").write_bytes(bytes(4096))
    path, _, _ = hf.onnx_conv_d2s(folder, location=request.param, write_data=False)
    return path, request.param


def _refused(fn, path, location, *args):
    with pytest.raises(ModelLoadError) as e:
        fn(path, *args)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and repr(location) in msg and "refused" in msg, msg
    return msg


@pytest.mark.parametrize("evil", list(ESCAPES.values()), ids=list(ESCAPES), indirect=True)
def test_check_refuses_escapes(evil):
    path, location = evil
    _refused(check_onnx_external, path, location)
    _refused(inspect_file, path, location)  # srzoo inspect


@pytest.mark.parametrize("evil", [ESCAPES["dotdot"]], indirect=True)
@pytest.mark.parametrize("backend", ["cpu", "onnxruntime:cpu", "openvino:cpu"])
def test_engines_refuse_before_reading(evil, tmp_path, monkeypatch, backend):
    """Through a user manifest (`path =`), every engine refuses; nothing read /etc/services."""
    path, location = evil
    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    monkeypatch.setenv("SRZOO_REGISTRY", str(hf.onnx_manifest(tmp_path, path, "evil")))
    with pytest.raises(ModelLoadError) as e:
        srzoo.Upscaler("evil", 2, backend=backend)
    assert location in str(e.value) and "outside" not in str(e.value).split("refused")[0]


@pytest.mark.parametrize("evil", [ESCAPES["dotdot"]], indirect=True)
def test_omdb_published_onnx_is_checked(evil):
    """An omdb: record's published .onnx goes through inspect_onnx before the runtime."""
    path, location = evil
    entry = CatalogEntry(name="omdb:2x-evil-onnx", scale=2, format="onnx", license="MIT", io=IO,
                         record_id="2x-evil-onnx")
    _refused(inspect_onnx, path, location, entry)


def test_symlink_out_of_the_folder(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink("/etc/services", folder / "weights.bin")
    path, _, _ = hf.onnx_conv_d2s(folder, location="weights.bin", write_data=False)
    msg = _refused(check_onnx_external, path, "weights.bin")
    assert "resolves to /etc/services" in msg
    _refused(inspect_file, path, "weights.bin")


def test_symlinked_folder_inside_is_fine_but_not_a_device(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink("/dev/zero", folder / "zero.bin")
    path, _, _ = hf.onnx_conv_d2s(folder, location="zero.bin", write_data=False)
    # /dev/zero is outside the folder once resolved: refused as leading out
    _refused(check_onnx_external, path, "zero.bin")


def test_length_past_the_file(tmp_path):
    path, w, _ = hf.onnx_conv_d2s(tmp_path, location="w.bin")
    (tmp_path / "w.bin").write_bytes(w.tobytes()[:100])
    with pytest.raises(ModelLoadError, match="lie outside w.bin"):
        check_onnx_external(path)


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "cpu"])
def test_external_data_inside_the_folder_runs(tmp_path, backend):
    """The legitimate case: weights in a file beside the model (the engines load the file
    where it lies); the pixels are the numpy reference's."""
    from srzoo.hub.manifest import IOSpec, ModelEntry
    from srzoo.runtime.backends import resolve
    from srzoo.runtime.engines import get_engine

    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime")
    path, w, b = hf.onnx_conv_d2s(tmp_path, location="data/w.bin")
    assert check_onnx_external(path) == w.nbytes
    entry = ModelEntry(name="ext", scale=2, format="onnx", license="MIT", io=IOSpec(layout="nchw"))
    rb = resolve(backend, entry)
    runner = get_engine(rb.engine).load(entry, path, rb)
    x = np.random.default_rng(1).random((1, 3, 12, 10)).astype(np.float32)
    got = runner.run(x)[0]
    want = hf.numpy_conv_d2s(x[0].transpose(1, 2, 0).astype(np.float64), w.astype(np.float64), b, 2)
    assert got.shape == (1, 3, 24, 20)
    assert float(np.abs(got[0].transpose(1, 2, 0) - want).max()) < 1e-4


def test_file_without_external_data_is_not_parsed(tmp_path, shared_dir):
    """The fast path: no 'location' key in the bytes, nothing to check."""
    assert check_onnx_external(shared_dir / "models" / "waifu2x" / "upconv_7_scale2.0x_model.onnx") == 0


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch the process's file opens")
@pytest.mark.parametrize("command,location", [("upscale", ESCAPES["dotdot"]), ("inspect", ESCAPES["absolute"])])
def test_cli_never_opens_the_target(tmp_path, shared_dir, command, location):
    """`srzoo upscale -m evil` / `srzoo inspect evil.onnx`, watched with strace: exit 1, one
    line, and no open() of /etc/services (it used to be read into the weights, exit 0)."""
    import subprocess

    folder = tmp_path / "models" / "2x-evil-onnx"
    folder.mkdir(parents=True)
    path, _, _ = hf.onnx_conv_d2s(folder, location=location, write_data=False)
    env = {**os.environ, "SRZOO_REGISTRY": str(hf.onnx_manifest(tmp_path, path, "evil")),
           "SRZOO_CACHE_DIR": str(tmp_path / "cache"), "SRZOO_AUTOTUNE": "0"}
    img = shared_dir / "datasets" / "Set5" / "baby.png"
    args = (["upscale", str(img), "-m", "evil", "-s", "2", "-o", str(tmp_path / "out.png")]
            if command == "upscale" else ["inspect", str(path)])
    trace = tmp_path / "trace.txt"
    res = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", str(trace),
                          sys.executable, "-m", "srzoo", *args],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and repr(location) in lines[0], res.stderr
    opened = [ln for ln in trace.read_text().splitlines() if "services" in ln]
    assert not opened, opened
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("where", ["subgraph", "function", "training", "sparse", "attribute"])
def test_references_anywhere_in_the_model(tmp_path, where):
    """External tensors hide in If-branches, functions, training graphs, sparse initializers
    and Constant attributes too: each is found."""
    import onnx
    from onnx import TensorProto, helper

    t = helper.make_tensor("T", TensorProto.FLOAT, [1], [1.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "/etc/services"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    sub = helper.make_graph([helper.make_node("Identity", ["T"], ["y"])], "sub", [], [y], [t])
    nodes, inits, sparse, funcs, training = [helper.make_node("Identity", ["x"], ["y"])], [], [], [], []
    if where == "subgraph":
        nodes = [helper.make_node("If", ["c"], ["y"], then_branch=sub, else_branch=sub)]
    elif where == "attribute":
        nodes = [helper.make_node("Constant", [], ["y"], value=t)]
    elif where == "sparse":
        idx = helper.make_tensor("I", TensorProto.INT64, [1], [0])
        sparse = [helper.make_sparse_tensor(t, idx, [1])]
    elif where == "function":
        funcs = [helper.make_function("local", "F", ["a"], ["b"],
                                      [helper.make_node("Constant", [], ["b"], value=t)],
                                      [helper.make_opsetid("", 13)])]
    else:
        training = [onnx.TrainingInfoProto(initialization=sub)]
    graph = helper.make_graph(nodes, "g", [x], [y], inits, sparse_initializer=sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("local", 1)],
                              functions=funcs)
    model.training_info.extend(training)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    _refused(check_onnx_external, path, "/etc/services")


def test_location_that_is_not_utf8(tmp_path):
    """Found by test_fuzz_onnx_bytes: one byte of the location set to 0x80; protobuf hands the
    string back as bytes and `"\\x00" in location` raised TypeError."""
    path, _, _ = hf.onnx_conv_d2s(tmp_path, location="w.bin")
    data = bytearray(path.read_bytes())
    at = data.index(b"w.bin")
    data[at] = 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="is not UTF-8 text"):
        check_onnx_external(path)
