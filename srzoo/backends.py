"""Which compute backends the installed OpenCV can really run, and name parsing.

A backend name is one of :data:`NAMES` (``auto``, ``cpu``, ``opencl``,
``opencl_fp16``, ``cuda``, ``cuda_fp16``) or the general form
``ENGINE:TARGET`` (``opencv:cuda_fp16``), so engines other than OpenCV DNN
can be added later without changing the API.

Detection asks OpenCV itself (``cv2.cuda.getCudaEnabledDeviceCount()``,
``cv2.dnn.getAvailableTargets``, ``cv2.ocl.haveOpenCL()``) and is cached for
the process; :func:`refresh` forgets it. Asking for a backend that cannot run
raises :class:`srzoo.BackendUnavailable` saying why and what to install or
build. Nothing ever falls back to the CPU silently: only ``auto`` chooses.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from .errors import BackendUnavailable, SrzooError

#: engines known to srzoo, with the targets each offers (in name order)
ENGINES: dict[str, tuple[str, ...]] = {
    "opencv": ("cpu", "opencl", "opencl_fp16", "cuda", "cuda_fp16"),
}
#: the short names accepted for ``backend=`` (each means ``opencv:<name>``)
NAMES: tuple[str, ...] = ("auto",) + ENGINES["opencv"]

# target -> (cv2.dnn backend constant, cv2.dnn target constant)
_OPENCV_IDS: dict[str, tuple[str, str]] = {
    "cpu": ("DNN_BACKEND_OPENCV", "DNN_TARGET_CPU"),
    "opencl": ("DNN_BACKEND_OPENCV", "DNN_TARGET_OPENCL"),
    "opencl_fp16": ("DNN_BACKEND_OPENCV", "DNN_TARGET_OPENCL_FP16"),
    "cuda": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA"),
    "cuda_fp16": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA_FP16"),
}
#: what ``auto`` tries, fastest first (OpenCL only on a GPU device). FP16
#: targets are never picked automatically: they change results by more than
#: one grey level.
AUTO_ORDER: tuple[str, ...] = ("cuda", "opencl", "cpu")

_CUDA_BUILD_HINT = (
    "build OpenCV with CUDA and cuDNN (cmake -DWITH_CUDA=ON -DWITH_CUDNN=ON -DOPENCV_DNN_CUDA=ON "
    "-DOPENCV_EXTRA_MODULES_PATH=<opencv_contrib>/modules) and install that build instead of "
    "the opencv-python / opencv-contrib-python wheels, or use --backend cpu")


@dataclass(frozen=True)
class ResolvedBackend:
    """A backend name resolved against this OpenCV build.

    ``name`` is the canonical short name (``cpu``, ``cuda_fp16``...),
    ``engine`` the engine that runs it (``opencv``), ``backend_id`` and
    ``target_id`` the ``cv2.dnn`` constants to pass to
    ``setPreferableBackend`` / ``setPreferableTarget``. ``requested`` is what
    the caller asked for (``auto`` when it was chosen automatically).
    """

    name: str
    engine: str
    target: str
    backend_id: int
    target_id: int
    requested: str = ""

    def __str__(self) -> str:
        return self.name if self.engine == "opencv" else f"{self.engine}:{self.target}"


# --------------------------------------------------------------------------- detection
def _cv2() -> Any:
    import cv2  # imported lazily: `import srzoo` stays quick

    return cv2


def _cuda_devices(cv2: Any) -> int:
    try:
        return int(cv2.cuda.getCudaEnabledDeviceCount())
    except Exception:  # no cv2.cuda module, or a driver error
        return 0


def _targets(cv2: Any, backend: str) -> list[int]:
    bid = getattr(cv2.dnn, backend, None)
    if bid is None:
        return []
    try:
        return [int(t) for t in cv2.dnn.getAvailableTargets(bid)]
    except Exception:
        return []


def _opencl(cv2: Any) -> tuple[bool, str]:
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


def _build_has(cv2: Any, pattern: str) -> bool:
    try:
        info = cv2.getBuildInformation()
    except Exception:
        return False
    return re.search(pattern, info, re.MULTILINE) is not None


def _target_name(cv2: Any, tid: int) -> str:
    for name in dir(cv2.dnn):
        if name.startswith("DNN_TARGET_") and getattr(cv2.dnn, name) == tid:
            return name[len("DNN_TARGET_"):].lower()
    return str(tid)


def capabilities() -> dict[str, Any]:
    """What the installed OpenCV can run, as plain data (for ``srzoo info``).

    Keys: ``opencv_version``, ``cuda_devices`` (int), ``cuda_dnn`` (the build
    has the CUDA DNN backend), ``cuda_build`` (built with CUDA at all),
    ``opencl`` (an OpenCL device is usable), ``opencl_device``,
    ``dnn_targets`` (names of targets of the OpenCV DNN backend) and
    ``cuda_targets`` (targets of the CUDA DNN backend).
    """
    return dict(_detect())


@functools.lru_cache(maxsize=1)
def _detect() -> dict[str, Any]:
    cv2 = _cv2()
    ocl, ocl_dev = _opencl(cv2)
    cuda_t = _targets(cv2, "DNN_BACKEND_CUDA")
    return {
        "opencv_version": cv2.__version__,
        "cuda_devices": _cuda_devices(cv2),
        "cuda_build": _build_has(cv2, r"^\s*NVIDIA CUDA:\s*YES"),
        "cuda_dnn": bool(cuda_t),
        "opencl": ocl,
        "opencl_device": ocl_dev,
        "dnn_targets": [_target_name(cv2, t) for t in _targets(cv2, "DNN_BACKEND_OPENCV")],
        "cuda_targets": [_target_name(cv2, t) for t in cuda_t],
    }


def refresh() -> None:
    """Forget the cached detection (after changing drivers or devices in-process)."""
    _detect.cache_clear()


# --------------------------------------------------------------------------- usability
def _why_not(target: str, caps: dict[str, Any]) -> str:
    """Why ``opencv:<target>`` cannot run here ("" when it can)."""
    ver = caps.get("opencv_version", "?")
    if target == "cpu":
        return ""
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


def backend_table() -> list[dict[str, Any]]:
    """One row per concrete backend: ``name``, ``engine``, ``target``,
    ``usable`` (bool) and ``reason`` ("" when usable)."""
    caps = capabilities()
    rows = []
    for engine, targets in ENGINES.items():
        for target in targets:
            reason = _why_not(target, caps)
            rows.append({"name": target if engine == "opencv" else f"{engine}:{target}",
                         "engine": engine, "target": target, "usable": not reason, "reason": reason})
    return rows


def available() -> list[str]:
    """Names of the backends that can run here, in :data:`AUTO_ORDER` first."""
    usable = [r["name"] for r in backend_table() if r["usable"]]
    return [n for n in AUTO_ORDER if n in usable] + [n for n in usable if n not in AUTO_ORDER]


def _valid_names() -> str:
    full = [f"{e}:{t}" for e, ts in ENGINES.items() for t in ts]
    return ", ".join(list(NAMES) + full)


def parse(name: str) -> tuple[str, str]:
    """Split a backend name into (engine, target), without checking usability.

    ``"cuda"`` → ``("opencv", "cuda")``; ``"opencv:cuda_fp16"`` →
    ``("opencv", "cuda_fp16")``; ``"auto"`` → ``("auto", "auto")``.
    Raises :class:`SrzooError` for names that mean nothing.
    """
    if not isinstance(name, str) or not name.strip():
        raise SrzooError(f"backend must be a name, got {name!r}; valid: {_valid_names()}")
    raw = name.strip().lower().replace("-", "_")
    if raw == "auto":
        return "auto", "auto"
    engine, _, target = raw.partition(":") if ":" in raw else ("opencv", "", raw)
    if engine not in ENGINES:
        raise SrzooError(f"unknown backend engine {engine!r} in {name!r}; valid backends: {_valid_names()}")
    if target == "auto":
        return engine, "auto"
    if target not in ENGINES[engine]:
        raise SrzooError(f"unknown backend {name!r}; valid backends: {_valid_names()}")
    return engine, target


def resolve(name: str = "auto") -> ResolvedBackend:
    """Resolve a backend name against this OpenCV build.

    ``auto`` (or ``ENGINE:auto``) picks the fastest usable target in
    :data:`AUTO_ORDER`. A concrete name that cannot run raises
    :class:`srzoo.BackendUnavailable` with the reason and the fix; it never
    falls back to another target.
    """
    engine, target = parse(name)
    caps = capabilities()
    if target == "auto":
        engines = list(ENGINES) if engine == "auto" else [engine]
        for eng in engines:
            for t in AUTO_ORDER:
                if t not in ENGINES[eng] or _why_not(t, caps):
                    continue
                if t.startswith("opencl") and not str(caps.get("opencl_device", "")).endswith("(GPU)"):
                    continue  # OpenCL on a CPU device is slower than the CPU target
                return _make(eng, t, requested=name)
        raise BackendUnavailable(f"no usable backend for {name!r}: "  # pragma: no cover - cpu always works
                                 + "; ".join(f"{r['name']}: {r['reason']}" for r in backend_table()))
    reason = _why_not(target, caps)
    if reason:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    return _make(engine, target, requested=name)


def _make(engine: str, target: str, requested: str) -> ResolvedBackend:
    cv2 = _cv2()
    bname, tname = _OPENCV_IDS[target]
    return ResolvedBackend(name=target if engine == "opencv" else f"{engine}:{target}",
                           engine=engine, target=target,
                           backend_id=int(getattr(cv2.dnn, bname)),
                           target_id=int(getattr(cv2.dnn, tname)), requested=requested)


__all__ = ["AUTO_ORDER", "ENGINES", "NAMES", "ResolvedBackend", "available", "backend_table",
           "capabilities", "parse", "refresh", "resolve", "BackendUnavailable"]
