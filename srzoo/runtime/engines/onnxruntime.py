"""ONNX Runtime engine: ONNX files (published, or derived from a ``.pb`` by
:mod:`srzoo.convert.graphdef`) on the execution providers the installed build has.

Targets come from ``onnxruntime.get_available_providers()``: ``cpu``,
``cuda``, ``tensorrt`` (and ``tensorrt_fp16``), ``rocm``, ``migraphx``,
``dml``, ``coreml``, ``openvino``... ONNX Runtime silently falls back to the
CPU when a provider fails to start; this engine checks the session's providers
and raises :class:`srzoo.BackendUnavailable` instead.

Reduced precision (``precision="fp16"``, :mod:`srzoo.runtime.precision`):
on ``tensorrt`` the provider's own ``trt_fp16_enable``; on ``cuda``/``rocm``
the model converted to float16 weights and activations in memory by
onnxruntime's own converter (``onnxruntime.transformers.float16``, float32
inputs and outputs kept). The CPU provider runs fp32, and int8: the QDQ model
:mod:`srzoo.runtime.quantize` makes (ONNX Runtime fuses it into int8 kernels).

Extra: ``pip install 'srzoo[onnxruntime]'`` (CPU) or
``pip install 'srzoo[onnxruntime-gpu]'`` (CUDA and TensorRT providers).
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srzoo.errors import BackendUnavailable, ModelLoadError
from srzoo.hub import cache
from srzoo.runtime.engines.base import (
    check_loadable,
    input_spec,
    pick_input,
    pick_outputs,
    run_failed,
)

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry
    from srzoo.runtime.engines.base import ResolvedBackend

#: target name -> execution provider
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "tensorrt_fp16": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
#: providers that are not compute targets
_NOT_TARGETS = {"AzureExecutionProvider"}

CPU_HINT = "pip install 'srzoo[onnxruntime]'"
GPU_HINT = ("pip uninstall onnxruntime && pip install 'srzoo[onnxruntime-gpu]' (the onnxruntime-gpu "
            "wheel, with the CUDA 12 and cuDNN 9 libraries it names)")


def _module() -> Any:
    import onnxruntime

    return onnxruntime


@functools.lru_cache(maxsize=1)
def providers() -> tuple[str, ...]:
    """Execution providers of the installed onnxruntime (empty when not installed)."""
    try:
        return tuple(_module().get_available_providers())
    except ImportError:
        return ()


def target_of(provider: str) -> str:
    for t, p in PROVIDERS.items():
        if p == provider:
            return t
    return provider.replace("ExecutionProvider", "").lower()


def quantization_available() -> bool:
    """Whether onnxruntime's quantization tool (and onnx) are installed: what
    ``precision="int8"`` quantizes with (:mod:`srzoo.runtime.quantize`)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime")) and \
        importlib.util.find_spec("onnxruntime.quantization") is not None


#: targets that run an fp16 model (converted in memory) when fp16 is asked for
FP16_MODEL_TARGETS = frozenset({"cuda", "rocm"})


def provider_options(target: str, cache_dir: Path | None = None,
                     precision: str = "") -> tuple[str, dict[str, Any]]:
    """(provider, options) for a target: what the session is created with
    (``precision="fp16"`` turns TensorRT's FP16 on)."""
    prov = PROVIDERS.get(target) or next((p for p in providers() if target_of(p) == target), target)
    opts: dict[str, Any] = {}
    if target in ("cuda", "rocm"):
        opts = {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC"} if target == "cuda" \
            else {"device_id": 0}
    elif target.startswith("tensorrt"):
        opts = {"device_id": 0, "trt_fp16_enable": target == "tensorrt_fp16" or precision == "fp16"}
        if cache_dir is not None:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                        trt_timing_cache_enable=True)
    return prov, opts


def fp16_model(path: Path) -> bytes:
    """``path`` with float16 weights and activations (float32 inputs and outputs
    kept), serialised: what a CUDA/ROCm session runs for ``precision="fp16"``."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True,
                                     disable_shape_infer=True)
    return model.SerializeToString()


class OnnxRuntimeRunner:
    """An ``InferenceSession``; a :class:`~srzoo.runtime.engines.base.TensorRunner`."""

    def __init__(self, session: Any, entry: "ModelEntry", path: Path, backend: "ResolvedBackend",
                 input_name: str, input_layout: str, output_names: tuple[str, ...]) -> None:
        self.session = session
        self.entry = entry
        self.path = path
        self.backend = backend
        self.input_name = input_name
        self.input_layout = input_layout
        self.output_names = output_names
        self._names = list(output_names)
        self._lock = threading.Lock()

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(self._names, {self.input_name: blob})
        except Exception as e:  # onnxruntime's own exception classes
            raise run_failed(self, blob, e) from None


class OnnxRuntimeEngine:
    """ONNX Runtime (``srzoo[onnxruntime]`` / ``srzoo[onnxruntime-gpu]``)."""

    name = "onnxruntime"
    formats = frozenset({"onnx"})
    extra = "onnxruntime"
    #: targets ``auto`` leaves alone: TensorRT builds engines for minutes, FP16
    #: changes results, the OpenVINO provider duplicates the openvino engine
    no_auto = frozenset({"tensorrt", "tensorrt_fp16", "openvino"})
    fp16 = frozenset({"tensorrt_fp16"})

    def precisions(self, target: str) -> tuple[str, ...]:
        """fp16 beside fp32 on the GPU providers (an fp16 model on CUDA/ROCm,
        TensorRT's FP16 switch); ``tensorrt_fp16`` is fp16 only; fp32 elsewhere."""
        if target in self.fp16:
            return ("fp16",)
        if target in FP16_MODEL_TARGETS or target == "tensorrt":
            return ("fp32", "fp16")
        if target == "cpu" and quantization_available():
            return ("fp32", "int8")  # a QDQ model from srzoo.runtime.quantize
        return ("fp32",)

    @property
    def targets(self) -> tuple[str, ...]:
        known = [t for t in PROVIDERS]
        extra = [target_of(p) for p in providers() if p not in _NOT_TARGETS
                 and target_of(p) not in known]
        return tuple(known + extra)

    def capabilities(self) -> dict[str, Any]:
        """The execution providers of the installed onnxruntime (empty when not installed)."""
        return {"onnxruntime_providers": list(providers())}

    def refresh(self) -> None:
        """Forget :func:`providers`' answer."""
        forget = getattr(providers, "cache_clear", None)  # tests may replace the detector
        if forget is not None:
            forget()

    def why_not(self, target: str) -> str:
        have = providers()
        if not have:
            return (f"onnxruntime is not installed: {CPU_HINT}"
                    + (f", or for GPUs {GPU_HINT}" if target != "cpu" else ""))
        prov = PROVIDERS.get(target) or next((p for p in have if target_of(p) == target), None)
        if prov is None:
            return f"unknown onnxruntime target {target!r}"
        if prov not in have:
            ver = _module().__version__
            shown = ", ".join(target_of(p) for p in have if p not in _NOT_TARGETS)
            if target in ("cuda", "tensorrt", "tensorrt_fp16"):
                how = GPU_HINT + (" and TensorRT 10" if target.startswith("tensorrt") else "")
            elif target == "dml":
                how = "pip install onnxruntime-directml (Windows)"
            elif target == "openvino":
                how = "pip install onnxruntime-openvino, or use the openvino engine (--backend openvino:cpu)"
            elif target == "rocm":
                how = "install the ROCm build of onnxruntime"
            else:
                how = f"install an onnxruntime build with {prov}"
            return f"this onnxruntime {ver} has no {prov} (it has: {shown}): {how}"
        return ""

    def auto_ok(self, target: str) -> bool:
        return target not in self.no_auto

    def versions(self) -> dict[str, str]:
        try:
            return {"onnxruntime": _module().__version__}
        except ImportError:
            return {}

    def device(self, target: str) -> str:
        if target == "cpu":
            return "CPU"
        return f"{PROVIDERS.get(target, target)} device 0"

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend",
             threads: int | None = None) -> OnnxRuntimeRunner:
        path = check_loadable(self, entry, path, backend)
        ort = _module()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = int(threads) if threads else 0
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # idle intra-op threads sleep instead of spinning after a run: srzoo's own
        # post-processing runs right after, and spinning threads took the cores
        # from it (ESPCN x4 768x512, 2 cores, separate processes alternated:
        # outside the network 33-41 -> 15-16 ms, end to end 166-173 -> 155-170 ms)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # no CPU memory arena: the arena grows by doubling regions and keeps them, so a
        # tiled run held up to twice what it used, and the memory probe
        # (autotune.memory_per_pixel) saw only part of the need. Measured on
        # realesrgan-x4plus, a 250x240 photo in 4 tiles of 221x216 (2 loaded cores):
        # peak RSS 1169 -> 920 MB, 269 -> 245 s
        so.enable_cpu_mem_arena = False

        prov, opts = provider_options(backend.target, cache.cache_dir() / "tensorrt", backend.precision)
        chain = [(prov, opts)] + ([] if prov == "CPUExecutionProvider" else
                                  [("CPUExecutionProvider", {})])
        try:
            src: Any = str(path)
            if backend.precision == "fp16" and backend.target in FP16_MODEL_TARGETS:
                src = fp16_model(path)
            sess = ort.InferenceSession(src, so, providers=[p for p, _ in chain],
                                        provider_options=[o for _, o in chain])
        except Exception as e:
            text = str(e).strip().splitlines()
            first = text[-1] if text else type(e).__name__
            if prov != "CPUExecutionProvider" and ("provider" in first.lower() or "cuda" in first.lower()):
                raise BackendUnavailable(f"backend {backend} is unavailable: {prov} failed to start "
                                         f"({first})") from None
            raise ModelLoadError(f"{path}: onnxruntime cannot load {entry.name} x{entry.scale} "
                                 f"({first}); the file may be corrupt: delete it or run "
                                 f"'srzoo fetch {entry.name} --scale {entry.scale} --force'") from None
        if prov not in sess.get_providers():
            raise BackendUnavailable(
                f"backend {backend} is unavailable: onnxruntime fell back to "
                f"{', '.join(sess.get_providers())} because {prov} failed to start (no device, or "
                f"its CUDA/cuDNN/TensorRT libraries are missing); check the GPU driver and "
                f"CUDA_VISIBLE_DEVICES, or use --backend onnxruntime:cpu")
        _, layout = input_spec(entry, "onnx")
        inputs = [i.name for i in sess.get_inputs()]
        name = pick_input(entry, path, inputs, inputs[0])
        have = [o.name for o in sess.get_outputs()]
        names = pick_outputs(entry, path, have, have[:1])
        return OnnxRuntimeRunner(sess, entry, path, backend, name, layout, names)


__all__ = ["FP16_MODEL_TARGETS", "OnnxRuntimeEngine", "OnnxRuntimeRunner", "PROVIDERS", "fp16_model",
           "provider_options", "providers"]
