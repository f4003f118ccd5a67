"""Backend detection and selection.

The machine that runs these tests has no GPU and the PyPI OpenCV wheel has no
CUDA: the real errors are checked as they are. Tests of what happens *with*
CUDA or OpenCL monkeypatch ``srzoo.backends.capabilities`` (detection only;
they never run a network on a device that is not there) and say so.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import srzoo
from srzoo import backends
from srzoo.cli import main


@pytest.fixture(autouse=True)
def _fresh_detection():
    backends.refresh()
    yield
    backends.refresh()


def _fake_caps(monkeypatch, **over):
    """Monkeypatched detection: what a CUDA/OpenCL build would report."""
    caps = {"opencv_version": "4.10.0", "cuda_devices": 1, "cuda_build": True, "cuda_dnn": True,
            "opencl": False, "opencl_device": "", "dnn_targets": ["cpu"],
            "cuda_targets": ["cuda", "cuda_fp16"]}
    caps.update(over)
    monkeypatch.setattr(backends, "capabilities", lambda: caps)
    return caps


# --------------------------------------------------------------------------- real detection
def test_capabilities_are_what_opencv_says():
    caps = backends.capabilities()
    assert caps["opencv_version"] == cv2.__version__
    assert isinstance(caps["cuda_devices"], int) and isinstance(caps["cuda_dnn"], bool)
    assert isinstance(caps["opencl"], bool) and isinstance(caps["dnn_targets"], list)
    assert caps["cuda_devices"] == cv2.cuda.getCudaEnabledDeviceCount()
    assert caps["cuda_dnn"] == bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA))
    assert "cpu" in caps["dnn_targets"]
    if not cv2.ocl.haveOpenCL():
        assert caps["opencl"] is False


def test_backend_table_rows():
    rows = backends.backend_table()
    assert [r["name"] for r in rows] == ["cpu", "opencl", "opencl_fp16", "cuda", "cuda_fp16"]
    for r in rows:
        assert set(r) >= {"name", "engine", "target", "usable", "reason"}
        assert r["engine"] == "opencv"
        assert r["usable"] == (r["reason"] == "")
    assert rows[0]["usable"] is True


@pytest.mark.skipif(bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA)),
                    reason="this OpenCV has the CUDA DNN backend")
@pytest.mark.parametrize("name", ["cuda", "cuda_fp16", "opencv:cuda", "opencv:cuda_fp16", "CUDA"])
def test_cuda_on_this_wheel_is_a_clear_error(name):
    with pytest.raises(srzoo.BackendUnavailable) as ei:
        backends.resolve(name)
    msg = str(ei.value)
    assert "has no CUDA" in msg and "PyPI wheels never do" in msg
    assert "-DWITH_CUDA=ON" in msg and "-DOPENCV_DNN_CUDA=ON" in msg and "--backend cpu" in msg
    row = {r["name"]: r for r in backends.backend_table()}[name.lower().split(":")[-1]]
    assert row["usable"] is False and "-DWITH_CUDA=ON" in row["reason"]


@pytest.mark.skipif(bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA)),
                    reason="this OpenCV has the CUDA DNN backend")
def test_upscaler_never_falls_back_to_cpu_silently(models_env, mirror):
    with pytest.raises(srzoo.BackendUnavailable, match="backend 'cuda' is unavailable"):
        srzoo.Upscaler("espcn", 2, backend="cuda")
    with pytest.raises(srzoo.BackendUnavailable):
        srzoo.upscale(np.zeros((8, 8, 3), np.uint8), "fsrcnn", 2, backend="cuda_fp16")


@pytest.mark.skipif(cv2.ocl.haveOpenCL(), reason="OpenCL is available here")
def test_opencl_without_a_device_is_a_clear_error():
    with pytest.raises(srzoo.BackendUnavailable, match=r"no usable OpenCL device.*OpenCL runtime"):
        backends.resolve("opencl")


def test_auto_and_cpu_resolve_to_real_ids():
    cpu = backends.resolve("cpu")
    assert (cpu.name, cpu.engine, cpu.target) == ("cpu", "opencv", "cpu")
    assert (cpu.backend_id, cpu.target_id) == (cv2.dnn.DNN_BACKEND_OPENCV, cv2.dnn.DNN_TARGET_CPU)
    assert backends.resolve("opencv:cpu") == backends.resolve(" CPU ").__class__(**{
        **backends.resolve(" CPU ").__dict__, "requested": "opencv:cpu"})
    auto = backends.resolve("auto")
    assert auto.requested == "auto"
    assert auto.name == backends.available()[0]
    if not backends.capabilities()["cuda_dnn"] and not backends.capabilities()["opencl"]:
        assert auto.name == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "vulkan", "opencv:tpu", "tensorrt:cuda", "", "cuda:"])
def test_unknown_names_list_the_valid_ones(bad):
    with pytest.raises(srzoo.SrzooError) as ei:
        backends.resolve(bad)
    assert not isinstance(ei.value, srzoo.BackendUnavailable)
    assert "auto, cpu, opencl, opencl_fp16, cuda, cuda_fp16" in str(ei.value)
    assert "opencv:cuda_fp16" in str(ei.value)


def test_parse():
    assert backends.parse("cuda_fp16") == ("opencv", "cuda_fp16")
    assert backends.parse("opencv:opencl-fp16") == ("opencv", "opencl_fp16")
    assert backends.parse("auto") == ("auto", "auto")
    assert backends.parse("opencv:auto") == ("opencv", "auto")


# --------------------------------------------------------------------------- monkeypatched detection
def test_cuda_selected_when_detected(monkeypatch):
    """Monkeypatched: a CUDA build with one device."""
    _fake_caps(monkeypatch)
    b = backends.resolve("cuda")
    assert (b.backend_id, b.target_id) == (cv2.dnn.DNN_BACKEND_CUDA, cv2.dnn.DNN_TARGET_CUDA)
    b16 = backends.resolve("opencv:cuda_fp16")
    assert (b16.backend_id, b16.target_id) == (cv2.dnn.DNN_BACKEND_CUDA, cv2.dnn.DNN_TARGET_CUDA_FP16)
    assert backends.resolve("auto").name == "cuda"  # fastest; fp16 never chosen automatically
    assert backends.available()[0] == "cuda"


def test_cuda_build_without_device(monkeypatch):
    """Monkeypatched: CUDA DNN compiled in, but no device visible."""
    _fake_caps(monkeypatch, cuda_devices=0)
    with pytest.raises(srzoo.BackendUnavailable, match=r"sees no CUDA device.*CUDA_VISIBLE_DEVICES"):
        backends.resolve("cuda")
    assert backends.resolve("auto").name == "cpu"


def test_cuda_build_without_dnn_backend(monkeypatch):
    """Monkeypatched: OpenCV built with CUDA but without OPENCV_DNN_CUDA."""
    _fake_caps(monkeypatch, cuda_dnn=False, cuda_targets=[])
    with pytest.raises(srzoo.BackendUnavailable, match="built with CUDA but without the CUDA DNN backend"):
        backends.resolve("cuda")


def test_cuda_fp16_missing_target(monkeypatch):
    """Monkeypatched: an old GPU whose CUDA backend offers no FP16 target."""
    _fake_caps(monkeypatch, cuda_targets=["cuda"])
    assert backends.resolve("cuda").name == "cuda"
    with pytest.raises(srzoo.BackendUnavailable, match="not cuda_fp16"):
        backends.resolve("cuda_fp16")


def test_auto_prefers_opencl_only_on_a_gpu(monkeypatch):
    """Monkeypatched: OpenCL present, on a GPU and then on a CPU device."""
    _fake_caps(monkeypatch, cuda_dnn=False, cuda_targets=[], cuda_devices=0, opencl=True,
               opencl_device="Intel(R) UHD Graphics (GPU)", dnn_targets=["cpu", "opencl", "opencl_fp16"])
    assert backends.resolve("auto").name == "opencl"
    assert backends.resolve("opencl_fp16").target_id == cv2.dnn.DNN_TARGET_OPENCL_FP16
    _fake_caps(monkeypatch, cuda_dnn=False, cuda_targets=[], cuda_devices=0, opencl=True,
               opencl_device="pthread-cpu (CPU)", dnn_targets=["cpu", "opencl"])
    assert backends.resolve("auto").name == "cpu"
    with pytest.raises(srzoo.BackendUnavailable, match="does not offer the opencl_fp16 target"):
        backends.resolve("opencl_fp16")


# --------------------------------------------------------------------------- srzoo info
def test_info_shows_each_backend(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for r in backends.backend_table():
        line = next(ln for ln in out.splitlines() if ln.startswith(r["name"] + " "))
        assert ("yes" if r["usable"] else "no") in line.split()
    assert f"cuda_devices: {cv2.cuda.getCudaEnabledDeviceCount()}" in out
