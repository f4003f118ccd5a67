"""The precision contract on GPU backends, run on this CPU-only machine.

There is no GPU here: these tests replace ONLY the device detection (the
onnxruntime provider list, OpenVINO's device list and its optimisation
capabilities, OpenCV's CUDA capabilities) and say so in each test. Everything
else is real: the fp16 model conversion is run by the real onnxruntime (on its
CPU provider), and loading on the missing device fails for real, which must be
a clear error and never a silent CPU run or an unmeasured fp16.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

import srzoo
from srzoo.errors import BackendUnavailable, PrecisionError
from srzoo.runtime import backends, precision
from srzoo.runtime.engines import get_engine
from srzoo.runtime.engines import onnxruntime as ort_engine
from srzoo.runtime.engines import opencv as cv_engine
from srzoo.runtime.engines.base import ResolvedBackend

BUILTIN = Path(srzoo.__file__).parent / "builtin" / "srzoo_x2.onnx"


@pytest.fixture(autouse=True)
def _fresh_detection(tmp_path, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path / "cache"))
    backends.refresh()
    yield
    backends.refresh()


def _fake_providers(monkeypatch, *provs):
    """Mocked device: what an onnxruntime-gpu install on a CUDA machine reports."""
    monkeypatch.setattr(ort_engine, "providers", lambda: tuple(provs))
    backends.refresh()


# --------------------------------------------------------------------------- onnxruntime
def test_onnxruntime_gpu_targets_advertise_fp16(monkeypatch):
    """Mocked device (provider list only)."""
    eng = get_engine("onnxruntime")
    assert eng.precisions("cpu") == ("fp32", "int8")  # int8: a quantized model (test_precision_int8)
    _fake_providers(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert eng.precisions("cuda") == ("fp32", "fp16")
    assert eng.precisions("tensorrt") == ("fp32", "fp16")
    assert eng.precisions("tensorrt_fp16") == ("fp16",)
    # TensorRT: its own FP16 switch; CUDA: an fp16 model
    assert ort_engine.provider_options("tensorrt", precision="fp16")[1]["trt_fp16_enable"] is True
    assert ort_engine.provider_options("tensorrt")[1]["trt_fp16_enable"] is False
    assert "trt_fp16_enable" not in ort_engine.provider_options("cuda", precision="fp16")[1]
    b = precision.at(ResolvedBackend("onnxruntime", "cuda"), "fp16")
    assert str(b) == "onnxruntime:cuda@fp16" and b.name == "onnxruntime:cuda"
    assert precision.at(ResolvedBackend("onnxruntime", "cuda"), "fp32").precision == ""


def test_fp16_model_for_cuda_is_real_and_close_to_fp32(shared_dir):
    """No device mocked: the converted model is checked on the real CPU provider."""
    import onnxruntime as ort

    data = ort_engine.fp16_model(BUILTIN)
    m = onnx.load_from_string(data)
    kinds = {i.data_type for i in m.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in kinds and onnx.TensorProto.FLOAT not in kinds
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O kept
    assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"),
                   cv2.IMREAD_GRAYSCALE)[:48, :48].astype(np.float32)[None, None] / 255
    half = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    full = ort.InferenceSession(str(BUILTIN), providers=["CPUExecutionProvider"])
    a = half.run(None, {half.get_inputs()[0].name: x})[0]
    b = full.run(None, {full.get_inputs()[0].name: x})[0]
    assert a.dtype == np.float32 and a.shape == b.shape == (1, 1, 96, 96)
    assert 0 < np.abs(a - b).max() <= 4e-3


def test_onnxruntime_cuda_fp16_without_a_device_is_refused_clearly(monkeypatch):
    """Mocked device (provider list only): the real CPU onnxruntime falls back
    from CUDA; the fp16 probe cannot run, so fp16 is refused, not assumed."""
    _fake_providers(monkeypatch, "CUDAExecutionProvider", "CPUExecutionProvider")
    with pytest.raises(PrecisionError) as ei:
        srzoo.Upscaler("default", 2, backend="onnxruntime:cuda", precision="fp16")
    msg = str(ei.value)
    assert "onnxruntime:cuda@fp16: could not be measured" in msg and "CUDAExecutionProvider" in msg
    assert "\n" not in msg


def test_auto_with_a_failing_gpu_fp16_keeps_to_what_was_measured(monkeypatch):
    """Mocked device (provider list only): auto sees onnxruntime:cuda (fp32 and
    fp16); neither can start here, so auto picks a measured CPU candidate."""
    _fake_providers(monkeypatch, "CUDAExecutionProvider", "CPUExecutionProvider")
    up = srzoo.Upscaler("default", 2, precision="auto")
    assert not up.backend.startswith("onnxruntime:cuda")
    assert "could not be measured" in up.refused["onnxruntime:cuda@fp16"]
    assert up.precision == "fp32" or up.quality[f"{up.backend}@{up.precision}"].ok


# --------------------------------------------------------------------------- openvino
def test_openvino_gpu_fp16(monkeypatch):
    """Mocked device: OpenVINO's device list and the GPU's capabilities."""
    pytest.importorskip("openvino")
    from srzoo.runtime.engines import openvino as ov_engine

    eng = get_engine("openvino")
    assert eng.precisions("gpu") == ("fp32",)  # no GPU here: nothing advertised
    real = ov_engine.optimization_capabilities
    monkeypatch.setattr(ov_engine, "devices", lambda: ("CPU", "GPU.0"))
    monkeypatch.setattr(ov_engine, "optimization_capabilities",
                        lambda dev: ("FP32", "FP16", "INT8") if dev == "GPU" else real(dev))
    backends.refresh()
    assert eng.precisions("gpu") == ("fp32", "fp16")
    assert eng.precisions("gpu_fp16") == ("fp16",)
    assert ov_engine.compile_config("gpu", None, "fp16")["INFERENCE_PRECISION_HINT"] == "f16"
    assert ov_engine.compile_config("gpu", None)["INFERENCE_PRECISION_HINT"] == "f32"
    assert ov_engine.compile_config("cpu", 2, "bf16") == {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": 2}
    # the real OpenVINO cannot compile for the missing GPU: a clear refusal
    with pytest.raises(PrecisionError, match=r"openvino:gpu@fp16: could not be measured: .*failed on openvino:gpu.*gpu_plugin"):
        srzoo.Upscaler("default", 2, backend="openvino:gpu", precision="fp16")


def test_openvino_gpu_missing_is_the_backend_error_first():
    """No mock: there is no GPU, so the backend is refused before any precision."""
    pytest.importorskip("openvino")
    with pytest.raises(BackendUnavailable, match="sees no GPU device"):
        srzoo.Upscaler("default", 2, backend="openvino:gpu", precision="fp16")


# --------------------------------------------------------------------------- opencv
def test_opencv_cuda_fp16_maps_to_its_dnn_target(monkeypatch):
    """Mocked device: OpenCV's CUDA capabilities (a CUDA build with one device)."""
    caps = {"opencv_version": "4.10.0", "cuda_devices": 1, "cuda_build": True, "cuda_dnn": True,
            "opencl": False, "opencl_device": "", "dnn_targets": ["cpu"],
            "cuda_targets": ["cuda", "cuda_fp16"]}
    monkeypatch.setattr(cv_engine, "detect", lambda: caps)
    backends.refresh()
    eng = get_engine("opencv")
    assert eng.precisions("cuda") == ("fp32", "fp16") and eng.precisions("cuda_fp16") == ("fp16",)
    assert eng.precisions("cpu") == ("fp32",) and eng.precisions("opencl") == ("fp32",)
    half = precision.at(ResolvedBackend("opencv", "cuda"), "fp16")
    assert cv_engine.dnn_ids(cv_engine.dnn_target(half)) == (cv2.dnn.DNN_BACKEND_CUDA,
                                                            cv2.dnn.DNN_TARGET_CUDA_FP16)
    assert cv_engine.dnn_target(ResolvedBackend("opencv", "cuda")) == "cuda"
    # the fp16-only target: fp16 is its own precision, fp32 cannot be asked of it
    assert precision.effective(ResolvedBackend("opencv", "cuda_fp16")) == "fp16"
    with pytest.raises(PrecisionError, match=r"no backend runs fp32 here \(opencv:cuda_fp16 runs fp16\)"):
        srzoo.Upscaler("default", 2, backend="opencv:cuda_fp16", precision="fp32")
    # a GPU without the FP16 target: fp16 is not advertised
    caps["cuda_targets"] = ["cuda"]
    backends.refresh()
    assert eng.precisions("cuda") == ("fp32",)
