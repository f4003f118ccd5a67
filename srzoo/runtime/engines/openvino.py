"""OpenVINO engine: ONNX files on the devices OpenVINO reports (``cpu``,
``gpu``, ``npu``, and ``auto``, OpenVINO's own device choice).

Models are compiled once per input shape (kept in a small LRU): a static shape
compiles to faster code than a dynamic one, and an image (or its tiles) comes
in few shapes. CPU and GPU run with ``INFERENCE_PRECISION_HINT = f32`` so
results match the other engines (OpenVINO would otherwise pick bf16 on CPUs
with AMX and f16 on GPUs); ``gpu_fp16`` asks for f16 on purpose. A reduced
precision asked through ``precision=`` (:mod:`srzoo.runtime.precision`) maps
to that same hint: ``bf16`` on CPUs whose OpenVINO capabilities list ``BF16``
(AVX512_BF16 or AMX), ``fp16`` on GPUs and on CPUs that list ``FP16``;
``int8`` on CPUs that list ``INT8`` runs the QDQ model that
:mod:`srzoo.runtime.quantize` makes with onnxruntime's tool (OpenVINO reads
its Quantize/Dequantize pairs and runs those layers in int8).

Extra: ``pip install 'srzoo[openvino]'``.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srzoo.errors import ModelLoadError
from srzoo.runtime.engines.base import (
    check_loadable,
    input_spec,
    pick_input,
    pick_outputs,
    run_failed,
)
from srzoo.runtime.engines.onnxruntime import quantization_available

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry
    from srzoo.runtime.engines.base import ResolvedBackend

#: target -> (OpenVINO device, inference precision or None for the device default)
DEVICES: dict[str, tuple[str, str | None]] = {
    "gpu": ("GPU", "f32"),
    "gpu_fp16": ("GPU", "f16"),
    "npu": ("NPU", None),
    "auto": ("AUTO", None),
    "cpu": ("CPU", "f32"),
}
HINT = "pip install 'srzoo[openvino]'"
#: srzoo precision name -> OpenVINO inference precision
#: (int8: the quantized model's int8 layers run in int8 whatever the hint; the rest in f32)
PRECISION_HINTS: dict[str, str] = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
#: compiled shapes kept per model
SHAPES_KEPT = 4


def _module() -> Any:
    import openvino

    return openvino


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    return _module().Core()


@functools.lru_cache(maxsize=1)
def devices() -> tuple[str, ...]:
    """Devices OpenVINO reports (``CPU``, ``GPU.0``...); empty when not installed."""
    try:
        return tuple(_core().available_devices)
    except ImportError:
        return ()
    except Exception:  # pragma: no cover - a broken plugin
        return ()


@functools.lru_cache(maxsize=None)
def optimization_capabilities(device: str) -> tuple[str, ...]:
    """What OpenVINO says ``device`` computes in (``FP32``, ``BF16``, ``FP16``,
    ``INT8``...); empty when it cannot tell."""
    try:
        return tuple(str(c) for c in _core().get_property(device, "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # no such device, no plugin, not installed
        return ()


def compile_config(target: str, threads: int | None, precision: str = "") -> dict[str, Any]:
    """The properties a model is compiled with on ``target`` (``precision``: an
    srzoo precision name; "" for the target's own)."""
    _, hint = DEVICES[target]
    precision = PRECISION_HINTS[precision] if precision else hint
    cfg: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        cfg["INFERENCE_PRECISION_HINT"] = precision
    if threads and DEVICES[target][0] == "CPU":
        cfg["INFERENCE_NUM_THREADS"] = int(threads)
    return cfg


class OpenVINORunner:
    """A read OpenVINO model, compiled per input shape; a
    :class:`~srzoo.runtime.engines.base.TensorRunner`."""

    def __init__(self, model: Any, entry: "ModelEntry", path: Path, backend: "ResolvedBackend",
                 input_name: str, input_layout: str, output_names: tuple[str, ...],
                 config: dict[str, Any]) -> None:
        self.model = model
        self.entry = entry
        self.path = path
        self.backend = backend
        self.input_name = input_name
        self.input_layout = input_layout
        self.output_names = output_names
        self.config = config
        self._compiled: "OrderedDict[tuple[int, ...], Any]" = OrderedDict()
        self._lock = threading.Lock()

    def _request(self, shape: tuple[int, ...]) -> Any:
        req = self._compiled.get(shape)
        if req is not None:
            self._compiled.move_to_end(shape)
            return req
        # the least recently used shapes go before the new one compiles: each compiled
        # shape holds its own weights and buffers (not both at the peak)
        while len(self._compiled) >= SHAPES_KEPT:
            self._compiled.popitem(last=False)
        model = self.model.clone()
        model.reshape({self.input_name: list(shape)})
        compiled = _core().compile_model(model, DEVICES[self.backend.target][0], self.config)
        req = (compiled.create_infer_request(), [compiled.output(n) for n in self.output_names])
        self._compiled[shape] = req
        return req

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            try:
                req, outs = self._request(tuple(blob.shape))
                res = req.infer({self.input_name: blob}, share_inputs=True, share_outputs=False)
                return [res[o] for o in outs]
            except RuntimeError as e:
                raise run_failed(self, blob, e) from None


class OpenVINOEngine:
    """OpenVINO (``srzoo[openvino]``)."""

    name = "openvino"
    formats = frozenset({"onnx"})
    targets = tuple(DEVICES)
    extra = "openvino"
    fp16 = frozenset({"gpu_fp16"})

    def refresh(self) -> None:
        """Forget :func:`devices`' answer."""
        for detector in (devices, optimization_capabilities):
            forget = getattr(detector, "cache_clear", None)  # tests may replace the detector
            if forget is not None:
                forget()

    def precisions(self, target: str) -> tuple[str, ...]:
        """fp32 first; bf16/fp16 where the device's ``OPTIMIZATION_CAPABILITIES``
        list them (GPUs always run f16); ``gpu_fp16`` is fp16 only."""
        if target in self.fp16:
            return ("fp16",)
        dev = DEVICES.get(target, ("", None))[0]
        if dev not in ("CPU", "GPU"):
            return ("fp32",)
        have = ()
        if any(d.split(".")[0] == dev for d in devices()):
            have = optimization_capabilities(dev)
        out = ["fp32"]
        if "BF16" in have:
            out.append("bf16")
        if "FP16" in have or (dev == "GPU" and have):
            out.append("fp16")
        if dev == "CPU" and "INT8" in have and quantization_available():
            out.append("int8")  # the QDQ model of srzoo.runtime.quantize, run in int8 by OpenVINO
        return tuple(out)

    def why_not(self, target: str) -> str:
        if target not in DEVICES:
            return f"unknown openvino target {target!r}"
        try:
            _module()
        except ImportError:
            return f"openvino is not installed: {HINT}"
        have = devices()
        dev = DEVICES[target][0]
        if dev != "AUTO" and not any(d.split(".")[0] == dev for d in have):
            how = {"GPU": "install the Intel GPU compute runtime (intel-opencl-icd / level-zero)",
                   "NPU": "install the Intel NPU driver"}.get(dev, "")
            return (f"OpenVINO {_module().__version__} sees no {dev} device (it sees: "
                    f"{', '.join(have) or 'none'})" + (f": {how}" if how else ""))
        return ""

    def auto_ok(self, target: str) -> bool:
        return target not in self.fp16 and target not in ("auto", "npu")

    def versions(self) -> dict[str, str]:
        try:
            return {"openvino": _module().__version__}
        except ImportError:
            return {}

    def device(self, target: str) -> str:
        dev = DEVICES.get(target, (target.upper(), None))[0]
        try:
            return str(_core().get_property(dev, "FULL_DEVICE_NAME"))
        except Exception:
            return dev

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend",
             threads: int | None = None) -> OpenVINORunner:
        path = check_loadable(self, entry, path, backend)
        try:
            model = _core().read_model(str(path))
        except Exception as e:
            msg = str(e).strip().splitlines()
            raise ModelLoadError(f"{path}: OpenVINO cannot read {entry.name} x{entry.scale} "
                                 f"({msg[-1] if msg else type(e).__name__}); the file may be "
                                 "corrupt: delete it and try again") from None
        _, layout = input_spec(entry, "onnx")
        inputs = [n for p in model.inputs for n in p.get_names()]
        name = pick_input(entry, path, inputs, model.inputs[0].get_any_name())
        have = [o.get_any_name() for o in model.outputs]
        names = pick_outputs(entry, path, have, have[:1],
                             known={n for o in model.outputs for n in o.get_names()})
        return OpenVINORunner(model, entry, path, backend, name, layout, names,
                              compile_config(backend.target, threads, backend.precision))


__all__ = ["DEVICES", "PRECISION_HINTS", "OpenVINOEngine", "OpenVINORunner", "compile_config",
           "devices", "optimization_capabilities"]
