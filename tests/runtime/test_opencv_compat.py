"""Every OpenCV a pip user can get (4.10 ... 5.1): capabilities probed, .pb models
routed through ONNX where the TensorFlow importer is gone, OpenCV's log kept off
the terminal, and the .pb reference that needs no TensorFlow importer.

These run on whatever OpenCV is installed; CI runs them on the newest (5.1) and,
in a second environment, on the oldest supported (4.10).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.cli import main
from srzoo.convert import graphdef
from srzoo.convert.graphdef_eval import evaluate
from srzoo.runtime.engines import opencv as ocv
from srzoo.convert import cvcompat
from srzoo.convert.cvcompat import classic_kw, quiet_opencv

REPO = Path(__file__).resolve().parents[2]


def test_capabilities_are_what_the_build_does():
    caps = ocv.detect()
    assert caps["tf_importer"] == hasattr(cv2.dnn, "readNetFromTensorflow")
    assert caps["classic_engine"] == hasattr(cv2.dnn, "ENGINE_CLASSIC")
    eng = srzoo.backends._engines()["opencv"]
    assert ("tf-graphdef" in eng.formats) == caps["tf_importer"]
    entry = srzoo.get_model("espcn", 2)
    plan = srzoo.runtime.engines.plan(entry, "opencv")
    # without the importer the .pb runs from the ONNX srzoo derives from it
    assert plan is not None and plan.derived == (not caps["tf_importer"])
    if caps["cpu_only_engine"]:  # OpenCV 5.1: the new engine ignores targets
        assert "runs on the CPU only" in ocv.why_not("opencl", {**caps, "opencl": True,
                                                                "dnn_targets": ["cpu", "opencl"]})


def test_graphdef_evaluator_matches_cv2_on_the_pb_or_the_onnx(models_env, shared_dir):
    """The reference the converter checks against where OpenCV cannot read .pb
    files: TensorFlow semantics in NumPy. Compared with cv2.dnn on the .pb where
    this OpenCV still has the importer, and with onnxruntime on the converted
    ONNX everywhere, on LapSRN x4 (all its ops, two outputs) and FSRCNN x3."""
    import onnxruntime as ort

    for name, scale, file in (("lapsrn", 4, "LapSRN_x4"), ("fsrcnn", 3, "FSRCNN_x3")):
        entry = srzoo.get_model(name, scale)
        pb = shared_dir / f"models/opencv/{file}.pb"
        rng = np.random.default_rng(scale)
        x = rng.random((1, 17, 23, 1), dtype=np.float32)
        outs = list(entry.io.outputs)
        got = evaluate(graphdef.read_graphdef(pb.read_bytes()), {"IteratorGetNext": x}, outs)
        assert [g.shape for g in got] == [(1, 1, 17 * s, 23 * s) for s in entry.io.output_scales or [scale]]
        onnx_bytes, _ = graphdef.graphdef_to_onnx(pb.read_bytes(), "IteratorGetNext", outs)
        ref = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).run(
            outs, {"IteratorGetNext": x})
        for g, r in zip(got, ref):
            assert np.abs(g - r).max() < 2e-5
        if ocv.tf_importer():
            cvcompat.register_superres_layers()
            net = cv2.dnn.readNetFromTensorflow(str(pb), **classic_kw())
            net.setInput(x.transpose(0, 3, 1, 2))
            for g, r in zip(got, net.forward(outs)):
                assert np.abs(g - r).max() < 2e-5
        # and it is not a constant function: another input, another output
        other = evaluate(graphdef.read_graphdef(pb.read_bytes()), {"IteratorGetNext": x[:, ::-1]}, outs)
        assert np.abs(other[-1] - got[-1]).max() > 0.05


def test_converter_check_names_its_reference(models_env):
    path = srzoo.fetch("espcn", 3)
    conv = graphdef.GraphDefToONNX().convert(path, srzoo.get_model("espcn", 3), {})
    assert conv.probe_error <= graphdef.MAX_PROBE_ERROR
    want = "cv2.dnn" if ocv.tf_importer() else "NumPy evaluation of the .pb"
    assert want in conv.checked_against


def test_converter_check_catches_a_wrong_conversion(models_env, monkeypatch):
    """A translation bug (a bias dropped) is caught by the check against the
    reference, whichever reference this OpenCV allows."""
    real = graphdef._Builder._translate

    def no_bias(self, node):
        if node.op == "BiasAdd" or (node.op in ("Add", "AddV2") and self.const(node.inputs[1]) is not None):
            self.values[node.name] = self.value(node.inputs[0])
            self.nchw[node.name] = self.nchw[graphdef._clean(node.inputs[0])]
            return
        real(self, node)

    monkeypatch.setattr(graphdef._Builder, "_translate", no_bias)
    with pytest.raises(srzoo.SrzooError, match=r"differs from .* by .*please report it"):
        graphdef.GraphDefToONNX().convert(srzoo.fetch("espcn", 2), srzoo.get_model("espcn", 2), {})


def _upscale_proc(tmp_path: Path, shared_dir: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:24, :30])
    full = {**os.environ, "PYTHONPATH": str(REPO), "SRZOO_AUTOTUNE": "0", **env}
    return subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(img), "-m", "espcn", "-s", "2",
                           "--backend", "opencv:cpu", "-o", str(tmp_path / "out"), *extra],
                          capture_output=True, text=True, env=full, timeout=120)


def test_no_opencv_log_line_reaches_the_terminal(models_env, shared_dir, tmp_path):
    r = _upscale_proc(tmp_path, shared_dir)
    assert r.returncode == 0, r.stderr
    assert "WARN" not in r.stderr and "ERROR" not in r.stderr and "[ " not in r.stderr, r.stderr
    assert (tmp_path / "out" / "in_espcn_x2.png").is_file()


def test_srzoo_log_lets_opencv_speak(tmp_path):
    """SRZOO_LOG reaches OpenCV's logger (any build): a warning OpenCV emits
    inside quiet_opencv() is shown at 'warning' and hidden at the default."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "import cv2\n"
            "from srzoo.convert.cvcompat import classic_kw, quiet_opencv\n"
            "with quiet_opencv():\n"
            "    try:\n"
            "        cv2.dnn.readNetFromONNX('/nonexistent/model.onnx')\n"
            "    except cv2.error:\n"
            "        pass\n"
            "    cv2.imread('/nonexistent/image.png')\n")
    runs = {}
    for level in ("", "warning"):
        env = {**os.environ, "SRZOO_LOG": level}
        runs[level] = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     env=env, timeout=60).stderr
    assert "WARN" not in runs[""] and "ERROR" not in runs[""], runs[""]
    assert "WARN" in runs["warning"] or "ERROR" in runs["warning"], runs["warning"]


def test_log_level_is_restored_after_srzoo_calls():
    api = __import__("srzoo.convert.cvcompat", fromlist=["_log_api"])._log_api()
    assert api is not None
    get, put = api
    before = get()
    put(4)  # INFO: what the user's own program chose
    try:
        with quiet_opencv():
            assert get() == 0
        assert get() == 4
    finally:
        put(before)


def test_info_model_starts_with_the_answer(models_env, capsys):
    assert main(["info", "--model", "espcn", "--scale", "4", "--backend", "opencv:cpu"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("espcn x4 (backend='opencv:cpu') runs on opencv:cpu: asked for"), first
    assert max(len(ln) for ln in out.splitlines()) <= 80


def _mvn_model(path: Path) -> None:
    """x2 nearest, then MeanVarianceNormalization: ONNX Runtime and OpenVINO run
    it, cv2.dnn (4.10 ... 5.1) cannot import that operator."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        [helper.make_node("Resize", ["input", "", "scales"], ["up"], mode="nearest"),
         helper.make_node("MeanVarianceNormalization", ["up"], ["mvn"]),
         helper.make_node("Sigmoid", ["mvn"], ["output"])],
        "mvn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))


def test_a_graph_this_opencv_cannot_import(models_env, mirror, tmp_path, monkeypatch, capsys):
    """Explicit opencv:cpu: one line naming the extra to install, no traceback.
    auto: the opencv engine fails its trial and another engine runs the model."""
    from standin import write_manifest

    folder = tmp_path / "m"
    folder.mkdir()
    _mvn_model(folder / "mvn_x2.onnx")
    manifest = write_manifest(tmp_path / "mvn.toml", folder / "mvn_x2.onnx", "mvn-standin", 2,
                              color="rgb", range=1.0, layout="nchw")
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    with pytest.raises(srzoo.ModelLoadError) as ei:
        srzoo.Upscaler("mvn-standin", 2, backend="opencv:cpu")
    msg = str(ei.value)
    assert f"OpenCV {cv2.__version__} cannot import mvn-standin x2" in msg
    assert "pip install 'srzoo[onnxruntime]'" in msg and "\n" not in msg
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.full((6, 8, 3), 90, np.uint8))
    code = main(["upscale", str(img), "-m", "mvn-standin", "-s", "2", "--backend", "opencv:cpu",
                 "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "pip install 'srzoo[onnxruntime]'" in err
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    up = srzoo.Upscaler("mvn-standin", 2, backend="auto")
    assert up.backend in ("onnxruntime:cpu", "openvino:cpu")
    out = up(np.full((6, 8, 3), 90, np.uint8))
    assert out.shape == (12, 16, 3) and int(out.max()) == int(out.min())  # a flat image stays flat
