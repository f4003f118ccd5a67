"""Engines: the GraphDef -> ONNX converter, the same results on every engine,
manifest-driven input layout and name, threads, measured ``auto``, plugins.

Everything runs for real on this CPU (OpenCV, onnxruntime, OpenVINO, the real
dnn_superres files of ../shared); nothing is mocked here.
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime.engines import opencv as ocv
from srzoo.runtime import autotune, backends
from srzoo.convert import derive as derived
from srzoo.convert.graphdef import MAX_PROBE_ERROR, GraphDefToONNX, graphdef_to_onnx, read_graphdef
from srzoo.evaluate.metrics import psnr
from srzoo.hub.registry import default_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from cvref import dnn_superres_upsample  # noqa: E402
from standin import build_edsr_standin, edsr_standin, _standin_dir, write_manifest  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[2]
CPU_ENGINES = ("opencv:cpu", "onnxruntime:cpu", "openvino:cpu")


@pytest.fixture(scope="module")
def baby(shared_dir) -> np.ndarray:
    return cv2.imread(str(shared_dir / "datasets/Set5/baby.png"))[100:196, 120:240]


# --------------------------------------------------------------------------- converter
def test_reader_sees_the_ops_models_md_lists(shared_dir):
    nodes = read_graphdef((shared_dir / "models/opencv/FSRCNN_x2.pb").read_bytes())
    ops = {n.op for n in nodes}
    assert ops == {"Const", "Placeholder", "Conv2D", "BiasAdd", "Add", "Abs", "Sub", "Mul", "Relu",
                   "DepthToSpace", "Transpose"}
    conv = next(n for n in nodes if n.op == "Conv2D")
    assert conv.attrs["padding"] == "SAME" and conv.attrs["strides"] == [1, 1, 1, 1]
    w = next(n for n in nodes if n.name == conv.inputs[1].split(":")[0])
    assert w.op == "Const" and w.attrs["value"].dtype == np.float32 and w.attrs["value"].ndim == 4


@pytest.mark.parametrize("name,scale,file", [
    ("espcn", 3, "ESPCN_x3"), ("fsrcnn", 4, "FSRCNN_x4"), ("fsrcnn-small", 2, "FSRCNN-small_x2"),
    ("lapsrn", 4, "LapSRN_x4")])
def test_conversion_matches_cv2_dnn_on_the_pb(shared_dir, name, scale, file):
    entry = default_registry().get(name, scale)
    pb = shared_dir / f"models/opencv/{file}.pb"
    conv = GraphDefToONNX().convert(pb, entry, {})
    assert conv.probe_error is not None and conv.probe_error <= MAX_PROBE_ERROR
    assert ("cv2.dnn" if ocv.tf_importer() else "NumPy evaluation") in conv.checked_against
    # independently of the converter's own probe: a real image, cv2.dnn on the .pb (or, on
    # OpenCV 5.1, which cannot read it, the NumPy evaluation of the GraphDef) vs onnxruntime
    import onnxruntime as ort

    img = cv2.imread(str(shared_dir / "datasets/Set5/head.png"), cv2.IMREAD_GRAYSCALE)[:64, :80]
    y = (img.astype(np.float32) / 255.0)
    names = list(entry.io.outputs)
    if ocv.tf_importer():
        classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        net = cv2.dnn.readNetFromTensorflow(str(pb), **({} if classic is None else {"engine": classic}))
        net.setInput(y[None, None])
        ref = net.forward(names)
    else:
        from srzoo.convert.graphdef import read_graphdef
        from srzoo.convert.graphdef_eval import evaluate

        ref = evaluate(read_graphdef(pb.read_bytes()), {"IteratorGetNext": y[None, :, :, None]}, names)
    sess = ort.InferenceSession(conv.onnx, providers=["CPUExecutionProvider"])
    got = sess.run(names, {"IteratorGetNext": y[None, :, :, None]})
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        assert np.abs(r - g).max() <= 1e-4
    assert conv.info["input_layout"] == "nhwc" and conv.info["outputs"] == names
    # deterministic: same bytes twice
    assert GraphDefToONNX().convert(pb, entry, {}).onnx == conv.onnx


def test_espcn_x4_multiply_adds(shared_dir):
    _, info = graphdef_to_onnx((shared_dir / "models/opencv/ESPCN_x4.pb").read_bytes())
    # 5x5x1x64 + 3x3x64x32 + 3x3x32x16 per input pixel
    assert info["conv_macs_per_pixel"] == 5 * 5 * 64 + 3 * 3 * 64 * 32 + 3 * 3 * 32 * 16


def test_unsupported_op_is_refused_with_its_name(tmp_path):
    data = build_edsr_standin(2).replace(b"Relu", b"Elu\x00")  # same length: the op name only
    entry = default_registry().get("espcn", 2)
    with pytest.raises(srzoo.SrzooError):
        graphdef_to_onnx(data)
    with pytest.raises(srzoo.SrzooError, match="unsupported op"):
        graphdef_to_onnx(build_edsr_standin(2).replace(b"\x12\x04Relu", b"\x12\x04Selu"))
    del entry


def test_derive_writes_the_record(models_env, shared_dir):
    entry = default_registry().get("espcn", 2)
    src = srzoo.fetch("espcn", 2, quiet=True)
    out = derived.derive(src, entry)
    rec = derived.read_record(out.parent)
    assert rec["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest() == entry.sha256
    assert rec["converter"] == {"name": "graphdef-onnx", "version": "1"}
    assert 0 <= rec["probe"]["max_abs_error"] <= 1e-4
    # the reference: cv2.dnn on the .pb, or (OpenCV 5.1, no TF importer) srzoo's NumPy evaluation
    want = "cv2.dnn" if ocv.tf_importer() else "srzoo's NumPy evaluation"
    assert rec["probe"]["checked_against"].startswith(want)
    assert rec["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert "onnx" in rec["tools"] and rec["info"]["input_layout"] == "nhwc"
    assert derived.derive(src, entry) == out  # cached


def test_tf2onnx_and_our_converter_agree(shared_dir, tmp_path):
    pytest.importorskip("tf2onnx", reason="tensorflow + tf2onnx not installed")
    import onnxruntime as ort
    import subprocess

    pb = shared_dir / "models/opencv/ESPCN_x2.pb"
    theirs = tmp_path / "tf2onnx.onnx"
    r = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--graphdef", str(pb),
                        "--inputs", "IteratorGetNext:0[1,-1,-1,1]", "--outputs", "NCHW_output:0",
                        "--opset", "17", "--output", str(theirs)],
                       capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    ours, _ = graphdef_to_onnx(pb.read_bytes())
    x = np.random.default_rng(3).random((1, 37, 45, 1), dtype=np.float32)
    a = ort.InferenceSession(str(theirs), providers=["CPUExecutionProvider"]).run(None, {"IteratorGetNext:0": x})[0]
    b = ort.InferenceSession(ours, providers=["CPUExecutionProvider"]).run(None, {"IteratorGetNext": x})[0]
    assert a.shape == b.shape == (1, 1, 74, 90)
    assert np.abs(a - b).max() <= 1e-5


# --------------------------------------------------------------------------- same result everywhere
@pytest.mark.parametrize("name,scale", [("espcn", 2), ("fsrcnn", 3), ("lapsrn", 2)])
def test_psnr_is_the_same_on_every_engine(models_env, shared_dir, name, scale):
    hr = cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:96, :120]
    lr = cv2.resize(hr, (hr.shape[1] // scale, hr.shape[0] // scale), interpolation=cv2.INTER_CUBIC)
    hr = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
    outs = {b: srzoo.Upscaler(name, scale, backend=b)(lr) for b in CPU_ENGINES}
    scores = {b: psnr(o, hr, shave=scale) for b, o in outs.items()}
    ref = scores["opencv:cpu"]
    for b, s in scores.items():
        assert abs(s - ref) <= 0.01, scores
        assert np.abs(outs[b].astype(int) - outs["opencv:cpu"]).max() <= 1
    assert 25 < ref < 45


def test_edsr_standin_on_every_engine(edsr_standin, baby, tmp_path):
    ref = dnn_superres_upsample(edsr_standin / "EDSR-standin_x3.pb", "edsr", 3, baby, tmp_path,
                                srzoo.get_model("edsr", 3).io.export_layout)
    for b in CPU_ENGINES:
        up = srzoo.Upscaler("edsr", 3, backend=b)
        assert up.backend == b
        assert np.abs(up(baby).astype(int) - ref).max() <= 1, b


# --------------------------------------------------------------------------- layout and input name
def _nhwc_onnx(path: Path, scale: int, input_name: str) -> np.ndarray:
    """An ONNX model taking NHWC RGB input ``input_name``: Transpose -> Conv 3x3
    (3 -> 3*s*s) -> DepthToSpace; returns its weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    w = (rng.standard_normal((3 * scale * scale, 3, 3, 3)) * 0.1).astype(np.float32)
    for k in range(scale * scale):  # identity-ish skip so outputs stay in range (DCR order)
        for c in range(3):
            w[k * 3 + c, c, 1, 1] += 1.0
    g = helper.make_graph(
        [helper.make_node("Transpose", [input_name], ["x"], perm=[0, 3, 1, 2]),
         helper.make_node("Conv", ["x", "W"], ["f"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
         # DCR: cv2.dnn computes CRD wrongly once dnn_superres has registered its
         # DepthToSpace layer (it replaces the ONNX one process-wide)
         helper.make_node("DepthToSpace", ["f"], ["out"], blocksize=scale, mode="DCR")],
        "nhwc", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, "h", "w", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())
    return w


def test_nhwc_onnx_is_fed_nhwc_by_name(models_env, mirror, tmp_path, monkeypatch, baby):
    folder = tmp_path / "m"
    folder.mkdir()
    w = _nhwc_onnx(folder / "nhwc_x2.onnx", 2, "pixels_in")

    def write(inp: str, outputs: tuple[str, ...] = ("out",)) -> Path:
        return write_manifest(tmp_path / f"nhwc-{inp}-{'-'.join(outputs)}.toml", folder / "nhwc_x2.onnx",
                              "nhwc-standin", 2, color="rgb", range=1.0, layout="nhwc", input=inp,
                              outputs=outputs)

    monkeypatch.setenv("SRZOO_REGISTRY", str(write("pixels_in")))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    # independent reference: numpy conv + pixel shuffle on RGB in [0,1]
    rgb = baby[:, :, ::-1].astype(np.float32) / 255.0
    pad = np.pad(rgb, ((1, 1), (1, 1), (0, 0)))
    f = np.zeros((rgb.shape[0], rgb.shape[1], w.shape[0]), np.float32)
    for dy in range(3):
        for dx in range(3):
            f += pad[dy:dy + rgb.shape[0], dx:dx + rgb.shape[1]] @ w[:, :, dy, dx].T
    h, wd = rgb.shape[:2]
    sh = f.reshape(h, wd, 2, 2, 3).transpose(0, 2, 1, 3, 4).reshape(h * 2, wd * 2, 3)
    expect = np.clip(np.rint(sh[:, :, ::-1] * 255), 0, 255).astype(np.uint8)
    outs = {b: srzoo.Upscaler("nhwc-standin", 2, backend=b)(baby) for b in CPU_ENGINES}
    for b, out in outs.items():
        assert np.abs(out.astype(int) - expect).max() <= 1, b
    monkeypatch.setenv("SRZOO_REGISTRY", str(write("wrong_name")))
    for b in ("onnxruntime:cpu", "openvino:cpu"):  # cv2.dnn feeds its one input by position
        with pytest.raises(srzoo.ModelLoadError, match=r"has no input 'wrong_name' \(its inputs: pixels_in\); "
                                                       r"fix io.input"):
            srzoo.Upscaler("nhwc-standin", 2, backend=b)
    monkeypatch.setenv("SRZOO_REGISTRY", str(write("pixels_in", ("out", "nope"))))
    for b in CPU_ENGINES:
        with pytest.raises(srzoo.ModelLoadError, match=r"nhwc_x2.onnx: nhwc-standin x2 has no output nope "
                                                       r"\(its outputs: out\); fix io.outputs in .*nhwc-pixels_in"):
            srzoo.Upscaler("nhwc-standin", 2, backend=b)


# --------------------------------------------------------------------------- threads
def test_threads_reach_every_engine(models_env):
    up = srzoo.Upscaler("espcn", 2, backend="onnxruntime:cpu", threads=1)
    assert up.runner.session.get_session_options().intra_op_num_threads == 1
    up = srzoo.Upscaler("espcn", 2, backend="openvino:cpu", threads=1)
    up(np.zeros((16, 16, 3), np.uint8))
    req, _ = next(iter(up.runner._compiled.values()))
    assert int(req.get_compiled_model().get_property("INFERENCE_NUM_THREADS")) == 1
    up = srzoo.Upscaler("espcn", 2, backend="opencv:cpu", threads=1)
    seen = []
    real_forward = up.runner.net.forward
    before = cv2.getNumThreads()

    class Spy:  # records cv2's thread count while the real forward runs
        def __getattr__(self, name):
            return getattr(up.runner.__dict__["_real"], name)

        def forward(self, *a):
            seen.append(cv2.getNumThreads())
            return real_forward(*a)

        def setInput(self, *a):
            return up.runner.__dict__["_real"].setInput(*a)

    up.runner.__dict__["_real"] = up.runner.net
    up.runner.net = Spy()
    up(np.zeros((16, 16, 3), np.uint8))
    assert seen == [1] and cv2.getNumThreads() == before
    with pytest.raises(srzoo.SrzooError, match="threads must be a positive integer"):
        srzoo.Upscaler("espcn", 2, threads=0)


# --------------------------------------------------------------------------- auto
def test_auto_measures_once_then_remembers(models_env, monkeypatch):
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    up = srzoo.Upscaler("fsrcnn-small", 2)
    choice = up._choices["medium"]
    assert choice.how == "measured"
    assert set(choice.times_ms) == {"onnxruntime:cpu", "openvino:cpu", "opencv:cpu"}
    assert up.backend == min(choice.times_ms, key=choice.times_ms.get)
    assert "fastest in a" in up.backend_reason and "measured now" in up.backend_reason
    store = json.loads((models_env / "autotune.json").read_text())
    assert any(v["backend"] == up.backend and v["model"] == "fsrcnn-small" for v in store.values())
    assert len(up._runners) == 1  # the losers of the trial are not kept
    again = srzoo.Upscaler("fsrcnn-small", 2)
    assert again._choices["medium"].how == "cached" and again.backend == up.backend
    assert "measured earlier (cached)" in again.backend_reason
    # a small input is another size class: measured on first use
    again(np.zeros((20, 20, 3), np.uint8))
    assert again._choices["small"].how == "measured" and again._choices["small"].size_class == "small"
    # other threads: another key
    def choices() -> int:  # memory-per-pixel records (one per backend) are kept there too
        return sum(not k.startswith("memory-") for k in
                   json.loads((models_env / "autotune.json").read_text()))

    n = choices()
    srzoo.Upscaler("fsrcnn-small", 2, threads=1)
    assert choices() == n + 1


def test_static_order_and_overrides(models_env, monkeypatch):
    monkeypatch.setenv("SRZOO_AUTOTUNE", "0")
    up = srzoo.Upscaler("espcn", 2)
    assert up.backend == str(backends.candidates(up.entry)[0])
    assert "SRZOO_AUTOTUNE=0" in up.backend_reason
    assert not (models_env / "autotune.json").exists() or "espcn" not in \
        (models_env / "autotune.json").read_text()
    monkeypatch.setenv("SRZOO_BACKEND", "opencv:cpu")
    assert srzoo.Upscaler("espcn", 2).backend == "opencv:cpu"
    assert srzoo.Upscaler("espcn", 2, backend="openvino:cpu").backend == "openvino:cpu"
    assert srzoo.Upscaler("espcn", 2, backend="openvino").backend == "openvino:cpu"
    monkeypatch.setenv("SRZOO_BACKEND", "")
    monkeypatch.setenv("SRZOO_AUTOTUNE", "maybe")
    with pytest.raises(srzoo.SrzooError, match="SRZOO_AUTOTUNE='maybe'"):
        srzoo.Upscaler("espcn", 2)


# --------------------------------------------------------------------------- registry
def test_engine_plugin_through_entry_points(tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    (pkg / "srzoo_echo").mkdir(parents=True)
    (pkg / "srzoo_echo" / "__init__.py").write_text(textwrap.dedent("""
        class EchoEngine:
            name = "echo"
            formats = frozenset({"onnx"})
            targets = ("cpu", "tpu")
            extra = ""
            def why_not(self, target):
                return "" if target == "cpu" else "no TPU in this test"
            def versions(self):
                return {"echo": "1"}
            def device(self, target):
                return "CPU"
            def load(self, entry, path, backend, threads=None):
                raise NotImplementedError
        """))
    dist = pkg / "srzoo_echo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: srzoo-echo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[srzoo.engines]\necho = srzoo_echo:EchoEngine\n")
    monkeypatch.syspath_prepend(str(pkg))
    import srzoo.runtime.engines as reg

    monkeypatch.setattr(reg, "_engines", {})
    monkeypatch.setattr(reg, "_loaded", False)
    backends.refresh()
    assert list(reg.engines())[:4] == ["onnxruntime", "openvino", "opencv", "interpolation"]
    assert "echo" in reg.engines()
    rows = {r["name"]: r for r in backends.backend_table()}
    assert rows["echo:cpu"]["usable"] and rows["echo:tpu"]["reason"] == "no TPU in this test"
    assert str(backends.resolve("echo:cpu", default_registry().get("espcn", 2))) == "echo:cpu"
    with pytest.raises(srzoo.BackendUnavailable, match="no TPU in this test"):
        backends.resolve("tpu")
    backends.refresh()


# --------------------------------------------------------------------------- pipeline bands
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_banded_post_processing_equals_whole_image_arithmetic(models_env, shared_dir, monkeypatch, dtype):
    """The band-by-band Y conversion, chroma resize, merge and colour conversion
    give exactly what the same arithmetic on the whole image gives (odd sizes
    and 7-row bands: bands with edges; x4: chroma weights with ties)."""
    from srzoo.runtime import pipeline

    img8 = cv2.imread(str(shared_dir / "datasets/Set5/butterfly.png"))[7:104, 3:64]  # 97x61
    scale = {np.uint8: 255.0, np.uint16: 65535.0, np.float32: 1.0}[dtype]
    img = (img8.astype(np.float32) / 255.0).astype(np.float32) if dtype == np.float32 else \
        (img8.astype(np.uint16) * 257 if dtype == np.uint16 else img8)
    monkeypatch.setattr(pipeline, "BAND_PIXELS", 61 * 4 * 7)  # 7 input rows per band
    up = srzoo.Upscaler("espcn", 4, backend="opencv:cpu", tile=0)
    out = up(img)
    # whole image, independently: YCrCb in the image's dtype, Y to the network,
    # chroma upscaled in the image's dtype, full-size merge
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    y0 = np.ascontiguousarray(ycc[:, :, 0])
    # scaled as Mat::convertTo does (OpenCV 4.10's float path differs from numpy's by an ulp)
    y = cv2.addWeighted(y0, 1.0 / scale, y0, 0.0, 0.0, dtype=cv2.CV_32F)
    tensor = y[None, :, :, None] if up.runner.input_layout == "nhwc" else y[None, None]
    Y = up.runner.run(tensor)[0][0, 0]
    H, W = Y.shape
    interp = cv2.INTER_LINEAR if dtype == np.float32 else cv2.INTER_LINEAR_EXACT
    chroma = [cv2.resize(ycc[:, :, c].copy(), (W, H), interpolation=interp) for c in (1, 2)]
    if dtype == np.float32:
        ref = np.clip(cv2.cvtColor(cv2.merge([Y] + chroma), cv2.COLOR_YCrCb2BGR), 0, 1)
    else:
        depth = cv2.CV_8U if dtype == np.uint8 else cv2.CV_16U
        Yd = cv2.addWeighted(Y, scale, Y, 0, 0, dtype=depth)
        ref = cv2.cvtColor(cv2.merge([Yd] + chroma), cv2.COLOR_YCrCb2BGR)
    assert out.dtype == ref.dtype and out.shape == ref.shape == (97 * 4, 61 * 4, 3)
    if dtype == np.float32:
        assert np.abs(out - ref).max() <= 1e-6
    else:
        assert np.array_equal(out, ref)
    # the chroma really is upscaled bilinearly: a nearest-neighbour one differs
    near = [cv2.resize(ycc[:, :, c].copy(), (W, H), interpolation=cv2.INTER_NEAREST) for c in (1, 2)]
    assert not np.array_equal(near[0], chroma[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("s", [2, 3, 4, 8])
def test_chroma_upscale_is_correctly_rounded_bilinear(s, dtype):
    """8- and 16-bit chroma planes are upscaled to the correctly rounded bilinear value
    (half-pixel centres, edges clamped), computed here in exact integer
    arithmetic; ties round up at power-of-two scales; band by band as the
    pipeline does it."""
    from srzoo.runtime import pipeline

    c = np.random.default_rng(s).integers(0, np.iinfo(dtype).max + 1, (37, 45)).astype(dtype)
    h, w = c.shape
    H, W = h * s, w * s
    plane, interp = pipeline._chroma_source(c, s)
    got = np.concatenate([pipeline._to_depth(pipeline._resize_band(plane, r0, min(h, r0 + 8), s, W, interp),
                                             1.0, np.dtype(dtype)) for r0 in range(0, h, 8)])

    def axis(n: int, N: int):  # source index pair and weight of the second, in 1/(2s)
        num = 2 * np.arange(N) + 1 - s  # 2s * (source coordinate)
        i0 = np.floor_divide(num, 2 * s)
        w1 = np.where(num < 0, 0, num - 2 * s * i0)
        return np.clip(i0, 0, n - 1), np.clip(i0 + 1, 0, n - 1), w1

    y0, y1, wy = axis(h, H)
    x0, x1, wx = axis(w, W)
    C = c.astype(np.int64)
    d = 2 * s
    num = ((d - wy)[:, None] * ((d - wx) * C[y0][:, x0] + wx * C[y0][:, x1])
           + wy[:, None] * ((d - wx) * C[y1][:, x0] + wx * C[y1][:, x1]))
    want = (2 * num + d * d) // (2 * d * d)  # round half up
    assert got.shape == (H, W)
    ties = 2 * (num % (d * d)) == d * d
    assert np.array_equal(got[~ties], want[~ties])
    if s & (s - 1) == 0:  # INTER_LINEAR_EXACT: ties up
        assert ties.any() and np.array_equal(got, want)
    else:  # float32 weights: ties may go either way, by one level
        assert np.abs(got[ties].astype(int) - want[ties]).max(initial=0) <= 1
    assert (num % (d * d) != 0).any()  # really interpolated, not copied
