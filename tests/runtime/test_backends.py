"""Backend names, detection and selection across engines.

The machine that runs these tests has no GPU, the PyPI OpenCV wheel has no
CUDA and the onnxruntime wheel has no CUDA provider: the real errors are
checked as they are. Tests of what happens *with* a GPU replace only the
detection (``srzoo.runtime.engines.opencv.detect`` or the onnxruntime provider list)
and say so; they never run a network on a device that is not there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import backends
from srzoo.cli import main
from suite import SHARED
from srzoo.runtime.engines import onnxruntime as ort_engine
from srzoo.runtime.engines import opencv as cv_engine

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_detection():
    backends.refresh()
    yield
    backends.refresh()


def _fake_caps(monkeypatch, **over):
    """Replaced detection: what a CUDA/OpenCL build of OpenCV would report."""
    caps = {"opencv_version": "4.10.0", "cuda_devices": 1, "cuda_build": True, "cuda_dnn": True,
            "opencl": False, "opencl_device": "", "dnn_targets": ["cpu"],
            "cuda_targets": ["cuda", "cuda_fp16"]}
    caps.update(over)
    monkeypatch.setattr(cv_engine, "detect", lambda: caps)
    backends.refresh()
    return caps


def _fake_providers(monkeypatch, *provs):
    """Replaced provider list: what an onnxruntime-gpu install would report."""
    monkeypatch.setattr(ort_engine, "providers", lambda: tuple(provs))
    backends.refresh()


# --------------------------------------------------------------------------- real detection
def test_capabilities_are_what_opencv_says():
    caps = backends.capabilities()
    assert caps["opencv_version"] == cv2.__version__
    assert caps["cuda_devices"] == cv2.cuda.getCudaEnabledDeviceCount()
    assert caps["cuda_dnn"] == bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA))
    assert "cpu" in caps["dnn_targets"]
    import onnxruntime
    import openvino

    assert caps["onnxruntime_providers"] == onnxruntime.get_available_providers()
    assert caps["engines"]["onnxruntime"] == {"onnxruntime": onnxruntime.__version__}
    assert caps["engines"]["openvino"] == {"openvino": openvino.__version__}


def test_backend_table_has_every_engine_target():
    rows = {r["name"]: r for r in backends.backend_table()}
    for name in ("opencv:cpu", "onnxruntime:cpu", "openvino:cpu", "interpolation:cpu"):
        assert rows[name]["usable"] and rows[name]["reason"] == ""
    for name in ("opencv:cuda", "opencv:cuda_fp16", "opencv:opencl", "onnxruntime:cuda",
                 "onnxruntime:tensorrt", "openvino:gpu", "openvino:npu"):
        assert name in rows
    for r in rows.values():
        assert r["usable"] == (r["reason"] == "")
        assert "cv2.dnn.DNN" not in r["reason"]
    if "CUDAExecutionProvider" not in ort_engine.providers():
        reason = rows["onnxruntime:cuda"]["reason"]
        assert "has no CUDAExecutionProvider" in reason
        assert "pip install 'srzoo[onnxruntime-gpu]'" in reason


def test_parse_names():
    assert backends.parse("cuda") == (None, "cuda")
    assert backends.parse(" CPU ") == (None, "cpu")
    assert backends.parse("opencv:cuda-fp16") == ("opencv", "cuda_fp16")
    assert backends.parse("onnxruntime:tensorrt") == ("onnxruntime", "tensorrt")
    assert backends.parse("openvino:auto") == ("openvino", "auto")
    assert backends.parse("onnxruntime") == ("onnxruntime", "auto")
    assert backends.parse("auto") == (None, "auto")
    for bad, msg in [("", "backend must be a name"), ("tpu", "unknown backend 'tpu'"),
                     ("torch:cpu", "unknown engine 'torch'"),
                     ("openvino:cuda", "engine openvino has no target 'cuda'")]:
        with pytest.raises(srzoo.SrzooError, match=msg):
            backends.parse(bad)


def test_unknown_backend_lists_each_valid_name_once():
    with pytest.raises(srzoo.SrzooError) as e:
        backends.parse("tpu")
    names = str(e.value).split("valid backends: ", 1)[1].split(", or ")[0].split(", ")
    assert names[0] == "auto" and "cpu" in names and "cuda" in names  # openvino's own "auto" target too
    assert len(names) == len(set(names)), names


def test_resolve_is_engine_neutral():
    espcn = srzoo.get_model("espcn", 2)
    b = backends.resolve("cpu", espcn)
    assert (b.engine, b.target, b.name) == ("onnxruntime", "cpu", "onnxruntime:cpu")
    assert "first engine with target cpu" in b.reason
    b = backends.resolve("opencv:cpu", espcn)
    assert str(b) == "opencv:cpu" and b.requested == "opencv:cpu"
    assert not hasattr(b, "backend_id")  # no cv2 constants in the record
    bicubic = srzoo.get_model("bicubic", 2)
    assert str(backends.resolve("auto", bicubic)) == "interpolation:cpu"
    assert str(backends.resolve("onnxruntime:cpu", bicubic)) == "interpolation:cpu"


@pytest.mark.skipif("CUDAExecutionProvider" in ort_engine.providers()
                    or bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA)),
                    reason="this machine can run CUDA")
def test_real_cuda_error_names_both_engines_and_the_fix():
    with pytest.raises(srzoo.BackendUnavailable) as ei:
        srzoo.Upscaler("espcn", 2, backend="cuda")
    msg = str(ei.value)
    assert "onnxruntime:cuda" in msg and "srzoo[onnxruntime-gpu]" in msg
    assert "opencv:cuda" in msg and "cmake -DWITH_CUDA=ON" in msg
    assert "\n" not in msg


# --------------------------------------------------------------------------- replaced detection
def test_onnxruntime_cuda_selected_when_the_provider_is_there(monkeypatch):
    """Replaced provider list (no GPU here): onnxruntime-gpu with CUDA and TensorRT."""
    _fake_providers(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider",
                    "CPUExecutionProvider")
    espcn = srzoo.get_model("espcn", 2)
    assert str(backends.resolve("cuda", espcn)) == "onnxruntime:cuda"
    assert str(backends.resolve("tensorrt", espcn)) == "onnxruntime:tensorrt"
    auto = backends.static_auto(espcn)
    assert str(auto) == "onnxruntime:cuda"  # TensorRT (minutes of engine building) only on request
    assert [str(c) for c in backends.candidates(espcn)][:1] == ["onnxruntime:cuda"]
    assert "onnxruntime:tensorrt" not in [str(c) for c in backends.candidates(espcn)]
    prov, opts = ort_engine.provider_options("cuda")
    assert prov == "CUDAExecutionProvider" and opts["device_id"] == 0
    prov, opts = ort_engine.provider_options("tensorrt_fp16", Path("/c/trt"))
    assert prov == "TensorrtExecutionProvider"
    assert opts["trt_fp16_enable"] is True and opts["trt_engine_cache_path"] == "/c/trt"
    assert ort_engine.provider_options("tensorrt")[1]["trt_fp16_enable"] is False


def test_onnxruntime_cuda_provider_that_fails_to_start_is_not_a_silent_cpu(monkeypatch, models_env):
    """Replaced provider list only: the real CPU onnxruntime is then asked for
    CUDA, falls back to the CPU as it does, and srzoo refuses that."""
    _fake_providers(monkeypatch, "CUDAExecutionProvider", "CPUExecutionProvider")
    with pytest.raises(srzoo.BackendUnavailable, match=r"onnxruntime:cuda is unavailable.*(fell back|failed)"):
        srzoo.Upscaler("espcn", 2, backend="onnxruntime:cuda")


def test_other_providers_become_targets(monkeypatch):
    """Replaced provider list: a DirectML build and an unknown provider."""
    _fake_providers(monkeypatch, "DmlExecutionProvider", "FooExecutionProvider", "CPUExecutionProvider")
    eng = srzoo.runtime.engines.get_engine("onnxruntime")
    assert "dml" in eng.targets and "foo" in eng.targets
    assert eng.why_not("dml") == "" and eng.why_not("foo") == ""
    assert "has no CUDAExecutionProvider (it has: dml, foo, cpu)" in eng.why_not("cuda")


def test_opencv_cuda_selected_when_detected(monkeypatch):
    """Replaced detection: a CUDA build of OpenCV with one device (and no onnxruntime-gpu)."""
    _fake_caps(monkeypatch)
    espcn = srzoo.get_model("espcn", 2)
    assert str(backends.resolve("cuda", espcn)) == "opencv:cuda"
    assert str(backends.resolve("opencv:cuda_fp16", espcn)) == "opencv:cuda_fp16"
    assert cv_engine.dnn_ids("cuda_fp16") == (cv2.dnn.DNN_BACKEND_CUDA, cv2.dnn.DNN_TARGET_CUDA_FP16)
    assert str(backends.static_auto(espcn)) == "opencv:cuda"  # fp16 never chosen automatically


def test_opencv_cuda_build_without_device(monkeypatch):
    """Replaced detection: CUDA DNN compiled in, but no device visible."""
    _fake_caps(monkeypatch, cuda_devices=0)
    with pytest.raises(srzoo.BackendUnavailable, match=r"sees no CUDA device.*CUDA_VISIBLE_DEVICES"):
        backends.resolve("opencv:cuda")
    assert backends.static_auto(srzoo.get_model("espcn", 2)).target == "cpu"


def test_opencv_cuda_fp16_missing_target(monkeypatch):
    """Replaced detection: an old GPU whose CUDA backend offers no FP16 target."""
    _fake_caps(monkeypatch, cuda_targets=["cuda"])
    assert str(backends.resolve("opencv:cuda")) == "opencv:cuda"
    with pytest.raises(srzoo.BackendUnavailable, match="not cuda_fp16"):
        backends.resolve("cuda_fp16")


def test_auto_prefers_opencl_only_on_a_gpu(monkeypatch):
    """Replaced detection: OpenCL present, on a GPU and then on a CPU device."""
    espcn = srzoo.get_model("espcn", 2)
    _fake_caps(monkeypatch, cuda_dnn=False, cuda_targets=[], cuda_devices=0, opencl=True,
               opencl_device="Intel(R) UHD Graphics (GPU)", dnn_targets=["cpu", "opencl", "opencl_fp16"])
    assert str(backends.static_auto(espcn)) == "opencv:opencl"
    _fake_caps(monkeypatch, cuda_dnn=False, cuda_targets=[], cuda_devices=0, opencl=True,
               opencl_device="pthread-cpu (CPU)", dnn_targets=["cpu", "opencl"])
    assert backends.static_auto(espcn).target == "cpu"
    with pytest.raises(srzoo.BackendUnavailable, match="does not offer the opencl_fp16 target"):
        backends.resolve("opencl_fp16")


# --------------------------------------------------------------------------- no extras installed
def test_opencv_alone_without_onnxruntime_or_openvino(tmp_path):
    """onnxruntime and openvino hidden in a fresh interpreter: a clear error
    naming the extra, and everything still runs on OpenCV."""
    crop = cv2.imread(str(SHARED / "datasets/Set14/monarch.png"))[180:220, 300:352]
    np.save(tmp_path / "crop.npy", crop)
    code = textwrap.dedent(f"""
        import sys, numpy as np
        sys.modules["onnxruntime"] = None   # import fails as if not installed
        sys.modules["openvino"] = None
        sys.path.insert(0, {str(REPO)!r})
        import srzoo
        from srzoo.hub.registry import default_registry
        try:
            srzoo.backends.resolve("onnxruntime:cpu")
        except srzoo.BackendUnavailable as e:
            print("ORT:", e)
        try:
            srzoo.backends.resolve("openvino:cpu")
        except srzoo.BackendUnavailable as e:
            print("OV:", e)
        up = srzoo.Upscaler(default_registry().get("espcn", 2), 2, backend="{'auto'}")
        print("AUTO:", up.backend)
        print("CPU:", srzoo.backends.resolve("cpu", up.entry))
        np.save({str(tmp_path / 'out.npy')!r}, up(np.load({str(tmp_path / 'crop.npy')!r})))
    """)
    env = {"SRZOO_MIRROR": str(SHARED / "models/opencv"), "SRZOO_MIRROR_ONLY": "1",
           "SRZOO_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "SRZOO_AUTOTUNE": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "ORT: backend 'onnxruntime:cpu' is unavailable: onnxruntime is not installed: " \
           "pip install 'srzoo[onnxruntime]'" in out
    assert "OV: backend 'openvino:cpu' is unavailable: openvino is not installed: " \
           "pip install 'srzoo[openvino]'" in out
    assert "AUTO: opencv:cpu" in out and "CPU: opencv:cpu" in out
    # dnn_superres upsample() on the .pb, recorded (OpenCV 5.1 cannot read it): tests/data/dnn_superres
    from cvref import assert_near_upsample

    ref = cv2.imread(str(REPO / "tests/data/dnn_superres/espcn_x2.png"))
    assert_near_upsample(np.load(tmp_path / "out.npy"), ref, "espcn x2, OpenCV alone")


# --------------------------------------------------------------------------- srzoo info
def test_info_shows_each_backend(capsys):
    """Usable backends one per line in auto's order; every unusable one named in
    a group with its reason (or in the 'also' line of its engine); 80 columns."""
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert max(len(ln) for ln in out.splitlines()) <= 80
    usable_part, _, rest = out.partition("not usable here:")
    for r in backends.backend_table():
        if r["usable"]:
            assert any(ln.split()[:1] in ([r["name"]], [r["name"] + "*"]) for ln in usable_part.splitlines()), r
        else:
            groups = [ln for ln in rest.splitlines() if ln.startswith(f"  {r['engine']}: ")]
            assert any(r["target"] in ln.replace(",", " ").split() for ln in groups), r
    # one reason per group of targets: the same hint is not repeated target by target
    blocks: list[str] = []
    for ln in rest.splitlines():
        if ln.startswith("      "):
            blocks[-1] += " " + ln.strip()
        elif ln.startswith("  "):
            blocks.append("")
    reasons = [b for b in blocks if b]
    assert reasons and len(reasons) == len(set(reasons))
    assert f"OpenCV {cv2.__version__}" in out
