"""OpenCV DNN engine: TensorFlow GraphDef (the dnn_superres models) and ONNX.

What this OpenCV can do is probed, never read off its version string
(:func:`detect`): whether it still has the TensorFlow importer (4.x and 5.0
do; 5.1 removed it), whether it has the classic DNN engine beside OpenCV 5's
new one (5.0 does; 5.1 has only the new one, which runs on the CPU only), and
which targets it offers. Without the TensorFlow importer this engine loads
ONNX only, and the ``.pb`` models reach it through the ONNX that
:mod:`srzoo.convert.graphdef` derives (:func:`srzoo.runtime.engines.plan`).

Graphs are read with the classic engine where this OpenCV has the choice
(OpenCV 5.0's new engine cannot import the ``DepthToSpace`` of ESPCN/FSRCNN,
and it runs on the CPU only). The ``DepthToSpace`` layer the ``.pb`` graphs use
is the one ``cv2.dnn_superres`` registers, so a ``DnnSuperResImpl`` is created
once before the first ``.pb`` load. Pre- and post-processing are not done here
but in :mod:`srzoo.runtime.pipeline`, from the manifest, to exactly what
``DnnSuperResImpl.upsample`` does for the four dnn_superres families.

OpenCV's own log lines (``[ WARN:0@0.1] ...``) are silenced around every call
srzoo makes (:func:`quiet_opencv`) unless ``SRZOO_LOG`` asks for them.

Targets: ``cpu``, ``opencl``, ``opencl_fp16``, ``cuda``, ``cuda_fp16``.
Detection asks OpenCV itself (``cv2.cuda.getCudaEnabledDeviceCount()``,
``cv2.dnn.getAvailableTargets``, ``cv2.ocl.haveOpenCL()``) and is cached for
the process (:func:`srzoo.runtime.backends.refresh` forgets it).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import cv2
import numpy as np

from srzoo.convert.cvcompat import (
    classic_kw,
    quiet_opencv,
    register_superres_layers,
    tf_importer,
)
from srzoo.convert.opencv_onnx import rewritten_for_opencv
from srzoo.errors import BackendUnavailable, ModelLoadError, SrzooError
from srzoo.runtime.engines.base import check_model_file, input_spec, pick_outputs

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry
    from srzoo.runtime.engines.base import ResolvedBackend

def _valid_onnx(path: Path) -> bool:
    """Does ``path`` pass the ONNX checker (a whole, well-formed graph)?"""
    try:
        import onnx

        onnx.checker.check_model(str(path))
        return True
    except Exception:  # noqa: BLE001 - damaged, truncated or not ONNX at all
        return False


def fetch_hint(entry: "ModelEntry") -> str:
    """The command that re-downloads this entry's file."""
    scale = f" --scale {entry.scale}" if entry.scale is not None else ""
    return f"srzoo fetch {entry.name}{scale} --force"


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # cv2.error: the useful part is the '> ...' line or the '(-NNN:...)' line
    for ln in lines:
        if ln.startswith(">"):
            return ln.lstrip("> ").strip()
    return lines[-1] if lines else type(e).__name__



# target -> (cv2.dnn backend constant, cv2.dnn target constant): only this engine knows them
DNN_IDS: dict[str, tuple[str, str]] = {
    "cpu": ("DNN_BACKEND_OPENCV", "DNN_TARGET_CPU"),
    "opencl": ("DNN_BACKEND_OPENCV", "DNN_TARGET_OPENCL"),
    "opencl_fp16": ("DNN_BACKEND_OPENCV", "DNN_TARGET_OPENCL_FP16"),
    "cuda": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA"),
    "cuda_fp16": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA_FP16"),
}

_CUDA_BUILD_HINT = (
    "build OpenCV with CUDA and cuDNN (cmake -DWITH_CUDA=ON -DWITH_CUDNN=ON -DOPENCV_DNN_CUDA=ON "
    "-DOPENCV_EXTRA_MODULES_PATH=<opencv_contrib>/modules) and install that build instead of "
    "the opencv-python / opencv-contrib-python wheels, or use --backend cpu")


def dnn_ids(target: str) -> tuple[int, int]:
    """The (backend, target) constants of ``cv2.dnn`` for one of our target names."""
    bname, tname = DNN_IDS[target]
    return int(getattr(cv2.dnn, bname)), int(getattr(cv2.dnn, tname))


def dnn_target(backend: "ResolvedBackend") -> str:
    """Our target name whose DNN constants run ``backend``: ``cuda``/``opencl``
    asked for in fp16 run on ``cuda_fp16``/``opencl_fp16``."""
    if backend.precision == "fp16" and backend.target in ("cuda", "opencl"):
        return f"{backend.target}_fp16"
    return backend.target


# --------------------------------------------------------------------------- detection
def _cuda_devices() -> int:
    try:
        return int(cv2.cuda.getCudaEnabledDeviceCount())
    except Exception:  # no cv2.cuda module, or a driver error
        return 0


def _targets(backend: str) -> list[int]:
    bid = getattr(cv2.dnn, backend, None)
    if bid is None:
        return []
    try:
        return [int(t) for t in cv2.dnn.getAvailableTargets(bid)]
    except Exception:
        return []


def _opencl() -> tuple[bool, str]:
    """(usable, device description) for OpenCV's OpenCL."""
    try:
        if not cv2.ocl.haveOpenCL():
            return False, ""
        dev = cv2.ocl.Device.getDefault()
        name = dev.name() if dev is not None else ""
        if not name:
            return False, ""
        kind = "GPU" if dev.type() & 4 else ("CPU" if dev.type() & 2 else "other")  # CL_DEVICE_TYPE_*
        return True, f"{name} ({kind})"
    except Exception:
        return False, ""


def _build_has(pattern: str) -> bool:
    try:
        info = cv2.getBuildInformation()
    except Exception:
        return False
    return re.search(pattern, info, re.MULTILINE) is not None


def _target_name(tid: int) -> str:
    for name in dir(cv2.dnn):
        if name.startswith("DNN_TARGET_") and getattr(cv2.dnn, name) == tid:
            return name[len("DNN_TARGET_"):].lower()
    return str(tid)


@functools.lru_cache(maxsize=1)
def detect() -> dict[str, Any]:
    """What the installed OpenCV can run, as plain data.

    Keys: ``opencv_version``, ``cuda_devices`` (int), ``cuda_dnn`` (the build
    has the CUDA DNN backend), ``cuda_build`` (built with CUDA at all),
    ``opencl`` (an OpenCL device is usable), ``opencl_device``,
    ``dnn_targets`` (targets of the OpenCV DNN backend), ``cuda_targets``,
    ``tf_importer`` (``cv2.dnn.readNetFromTensorflow`` exists: not on 5.1),
    ``classic_engine`` (OpenCV 5's engine choice includes the classic engine)
    and ``cpu_only_engine`` (this build has only OpenCV 5's new engine, which
    ignores targets: 5.1).
    """
    ocl, ocl_dev = _opencl()
    cuda_t = _targets("DNN_BACKEND_CUDA")
    classic = hasattr(cv2.dnn, "ENGINE_CLASSIC")
    new_engine = any(hasattr(cv2.dnn, n) for n in ("ENGINE_NEW", "ENGINE_AUTO", "ENGINE_OPENCV"))
    return {
        "opencv_version": cv2.__version__,
        "tf_importer": tf_importer(),
        "classic_engine": classic,
        "cpu_only_engine": new_engine and not classic,
        "cuda_devices": _cuda_devices(),
        "cuda_build": _build_has(r"^\s*NVIDIA CUDA:\s*YES"),
        "cuda_dnn": bool(cuda_t),
        "opencl": ocl,
        "opencl_device": ocl_dev,
        "dnn_targets": [_target_name(t) for t in _targets("DNN_BACKEND_OPENCV")],
        "cuda_targets": [_target_name(t) for t in cuda_t],
    }


def why_not(target: str, caps: dict[str, Any]) -> str:
    """Why ``opencv:<target>`` cannot run with capabilities ``caps`` ("" when it can)."""
    if target == "cpu":
        return ""
    reason = _device_why_not(target, caps)
    if not reason and caps.get("cpu_only_engine"):
        reason = (f"OpenCV {caps.get('opencv_version', '?')} has only its new DNN engine, which runs "
                  "on the CPU only (it ignores setPreferableTarget); use --backend cpu, or pip install "
                  "'srzoo[onnxruntime-gpu]' or 'srzoo[openvino]' for a GPU")
    return reason


def _device_why_not(target: str, caps: dict[str, Any]) -> str:
    ver = caps.get("opencv_version", "?")
    if target.startswith("cuda"):
        if not caps.get("cuda_dnn"):
            built = "is built with CUDA but without the CUDA DNN backend" if caps.get("cuda_build") \
                else "has no CUDA (the PyPI wheels never do)"
            return f"this OpenCV {ver} build {built}: {_CUDA_BUILD_HINT}"
        if int(caps.get("cuda_devices", 0)) < 1:
            return ("OpenCV has the CUDA DNN backend but sees no CUDA device "
                    "(cv2.cuda.getCudaEnabledDeviceCount() == 0): check the NVIDIA driver "
                    "and CUDA_VISIBLE_DEVICES, or use --backend cpu")
        tname = "cuda_fp16" if target == "cuda_fp16" else "cuda"
        if caps.get("cuda_targets") and tname not in caps["cuda_targets"]:
            return (f"the CUDA DNN backend offers {', '.join(caps['cuda_targets'])} but not {tname} "
                    "(FP16 needs a GPU of compute capability 5.3 or newer); use --backend cuda")
        return ""
    if target.startswith("opencl"):
        if not caps.get("opencl"):
            return (f"OpenCV {ver} finds no usable OpenCL device (cv2.ocl.haveOpenCL() is False or "
                    "no default device): install your GPU vendor's OpenCL runtime (an ICD such as "
                    "intel-opencl-icd, mesa-opencl-icd or the NVIDIA driver), or use --backend cpu")
        if target not in caps.get("dnn_targets", []):
            return (f"the OpenCV DNN backend does not offer the {target} target on this device "
                    f"(it offers {', '.join(caps.get('dnn_targets', [])) or 'none'}); use --backend cpu")
        return ""
    return f"unknown target {target!r}"


@contextlib.contextmanager
def cv2_threads(threads: int | None) -> Iterator[None]:
    """``cv2.setNumThreads(threads)`` for the duration (nothing when None)."""
    if threads is None:
        yield
        return
    old = cv2.getNumThreads()
    cv2.setNumThreads(int(threads))
    try:
        yield
    finally:
        cv2.setNumThreads(old)


class OpenCVRunner:
    """A ``cv2.dnn.Net`` with its backend/target set; forward() behind a lock.
    A :class:`~srzoo.runtime.engines.base.TensorRunner`."""

    def __init__(self, net: Any, output_names: tuple[str, ...], backend: "ResolvedBackend",
                 entry: "ModelEntry", path: Path, threads: int | None = None) -> None:
        self.net = net
        self.output_names = output_names
        self.backend = backend
        self.entry = entry
        self.path = path
        self.threads = threads
        self.input_name, self.input_layout = input_spec(entry, entry.format)
        self._names = list(output_names)
        self._lock = threading.Lock()

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Forward one NCHW float32 blob; returns one array per output name."""
        with self._lock, cv2_threads(self.threads), quiet_opencv():
            try:
                self.net.setInput(blob, self.input_name or "")
                if len(self._names) == 1:
                    return [self.net.forward(self._names[0])]
                return list(self.net.forward(self._names))
            except cv2.error as e:
                raise ModelLoadError(
                    f"{self.path}: {self.entry.name} x{self.entry.scale} failed to run on "
                    f"{self.backend} for a {blob.shape} input: {_first_line(e)}; "
                    f"if the file is damaged, run '{fetch_hint(self.entry)}'") from None


class OpenCVEngine:
    """cv2.dnn: TensorFlow GraphDef and ONNX files; always installed."""

    name = "opencv"
    targets = ("cuda", "cuda_fp16", "opencl", "opencl_fp16", "cpu")
    extra = ""
    #: FP16 targets: never picked by ``auto`` (they change results by more than a grey level)
    fp16 = frozenset({"cuda_fp16", "opencl_fp16"})

    @property
    def formats(self) -> frozenset[str]:
        """ONNX always; TensorFlow GraphDef only where this OpenCV still reads it
        (elsewhere the ``.pb`` models run from their derived ONNX)."""
        return frozenset({"tf-graphdef", "onnx"} if tf_importer() else {"onnx"})

    def capabilities(self) -> dict[str, Any]:
        """What this OpenCV can run (:func:`detect`)."""
        return dict(detect())

    def refresh(self) -> None:
        """Forget :func:`detect`'s answer."""
        forget = getattr(detect, "cache_clear", None)  # tests may replace the detector
        if forget is not None:
            forget()

    def why_not(self, target: str) -> str:
        return why_not(target, detect())

    def versions(self) -> dict[str, str]:
        return {"opencv": cv2.__version__}

    def device(self, target: str) -> str:
        if target.startswith("opencl"):
            return detect().get("opencl_device", "") or "OpenCL"
        if target.startswith("cuda"):
            return f"CUDA ({detect().get('cuda_devices', 0)} device(s))"
        return "CPU"

    def precisions(self, target: str) -> tuple[str, ...]:
        """``cuda``/``opencl`` also run in fp16 (the ``*_fp16`` DNN targets) where
        this OpenCV offers that target; ``*_fp16`` targets are fp16 only."""
        if target in self.fp16:
            return ("fp16",)
        half = f"{target}_fp16"
        if half in self.fp16 and not self.why_not(half):
            return ("fp32", "fp16")
        return ("fp32",)

    def auto_ok(self, target: str) -> bool:
        """May ``auto`` pick this target? Not FP16, not OpenCL on a CPU device."""
        if target in self.fp16:
            return False
        if target.startswith("opencl") and not str(detect().get("opencl_device", "")).endswith("(GPU)"):
            return False
        return True

    def _read(self, entry: "ModelEntry", path: Path, backend: "ResolvedBackend") -> Any:
        kw = classic_kw()
        if entry.format == "tf-graphdef":
            register_superres_layers()
            return cv2.dnn.readNetFromTensorflow(str(path), **kw)
        if entry.format == "onnx":
            rewritten = rewritten_for_opencv(path)
            if rewritten is None:
                return self._read_onnx(str(path), kw, backend)
            # from a file: readNetFromONNX ignores `engine` for an in-memory buffer
            import tempfile

            with tempfile.TemporaryDirectory(prefix="srzoo-onnx-") as tmp:
                (Path(tmp) / path.name).write_bytes(rewritten)
                return self._read_onnx(str(Path(tmp) / path.name), kw, backend)
        raise SrzooError(f"{entry.name}: the opencv engine cannot load format {entry.format!r}")

    @staticmethod
    def _read_onnx(src: str, kw: dict[str, Any], backend: "ResolvedBackend") -> Any:
        try:
            return cv2.dnn.readNetFromONNX(src, **kw)
        except cv2.error:
            auto = getattr(cv2.dnn, "ENGINE_AUTO", None)
            if auto is None or backend.target != "cpu":
                raise
            # some ONNX graphs only import with OpenCV 5's new engine (CPU only)
            return cv2.dnn.readNetFromONNX(src, engine=auto)

    @staticmethod
    def _cannot_load(entry: "ModelEntry", path: Path, why: str) -> ModelLoadError:
        if entry.format == "onnx" and _valid_onnx(path):
            # a well-formed graph this OpenCV's importer cannot take: another engine can
            return ModelLoadError(
                f"{path}: OpenCV {cv2.__version__} cannot import {entry.name} x{entry.scale} "
                f"({why}); run it with --backend onnxruntime:cpu (pip install "
                f"'srzoo[onnxruntime]') or openvino:cpu (pip install 'srzoo[openvino]')")
        return ModelLoadError(f"{path}: cannot load {entry.name} x{entry.scale} as {entry.format} "
                              f"({why}); the file may be corrupt or truncated: run '{fetch_hint(entry)}'")

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend",
             threads: int | None = None) -> OpenCVRunner:
        """Read the graph, pick its outputs from ``io.outputs`` and set backend/target."""
        if path is None:
            raise SrzooError(f"{entry.name} x{entry.scale}: the opencv engine needs a model file")
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: model file of {entry.name} x{entry.scale} is missing; "
                                 f"run '{fetch_hint(entry)}'")
        check_model_file(entry, path)
        try:
            with quiet_opencv():
                net = self._read(entry, path, backend)
        except (cv2.error, SystemError, ValueError) as e:
            raise self._cannot_load(entry, path, _first_line(e)) from None
        if net is None or net.empty():  # OpenCV 5.1 returns an empty net for graphs it cannot import
            raise self._cannot_load(entry, path, "an empty network")
        have = tuple(net.getUnconnectedOutLayersNames())
        names = pick_outputs(entry, path, have, have[-1:], known=set(net.getLayerNames()) | set(have))
        try:
            bid, tid = dnn_ids(dnn_target(backend))
            with quiet_opencv():  # OpenCV 5.1: "Targets are not supported by the new graph engine"
                net.setPreferableBackend(bid)
                net.setPreferableTarget(tid)
        except cv2.error as e:  # pragma: no cover - resolve() checked availability
            raise BackendUnavailable(f"backend {backend} refused by OpenCV: {_first_line(e)}") from None
        if backend.target.startswith("opencl"):
            cv2.ocl.setUseOpenCL(True)
        return OpenCVRunner(net, names, backend, entry, path, threads)
