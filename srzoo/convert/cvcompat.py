"""OpenCV facts every srzoo module that calls cv2.dnn shares: its log kept
quiet, the engine choice OpenCV 5.0 offers (the classic engine), whether it
still reads TensorFlow graphs, and the ``cv2.dnn_superres`` layers the ``.pb``
models need. Here, below both the converters and the runtime engines, because
both ask (ONNX rewrites for this OpenCV: :mod:`srzoo.convert.opencv_onnx`)."""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Iterator

import cv2

from srzoo import config

#: OpenCV's cv::utils::logging::LogLevel values (the same in every release)
_CV_LEVELS = {"silent": 0, "fatal": 1, "error": 2, "warning": 3, "info": 4, "debug": 5, "verbose": 6}


@functools.lru_cache(maxsize=1)
def _log_api() -> tuple[Any, Any] | None:
    """(getLogLevel, setLogLevel) wherever this OpenCV puts them: the
    ``cv2.utils.logging`` submodule (4.11+, imported on demand in 5.x) or the
    top level (4.10). Looked up once: :func:`quiet_opencv` wraps every forward."""
    try:
        import importlib

        mod: Any = importlib.import_module("cv2.utils.logging")
    except ImportError:
        mod = getattr(getattr(cv2, "utils", None), "logging", None)
    for m in (mod, cv2):
        get, put = getattr(m, "getLogLevel", None), getattr(m, "setLogLevel", None)
        if callable(get) and callable(put):
            return get, put
    return None  # pragma: no cover - every wheel since 4.5 has one of them


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's log level set to ``SRZOO_LOG`` (default: silent) for the
    duration, and restored after: OpenCV's ``[ WARN...]`` / ``[ERROR...]`` lines
    about engines, targets, importers and fall-backs never reach the user's
    terminal unless asked for."""

    api = _log_api()
    if api is None:  # pragma: no cover
        yield
        return
    get, put = api
    old = get()
    put(_CV_LEVELS[config.get("SRZOO_LOG")])
    try:
        yield
    finally:
        put(old)


def classic_kw() -> dict[str, Any]:
    """``{"engine": cv2.dnn.ENGINE_CLASSIC}`` where this OpenCV has the choice
    (5.0), else ``{}`` (4.x has only the classic engine, 5.1 only the new one)."""
    classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    return {} if classic is None else {"engine": classic}


def tf_importer() -> bool:
    """Can this OpenCV read TensorFlow graphs? (4.x and 5.0 can; 5.1 removed the importer.)"""
    return callable(getattr(cv2.dnn, "readNetFromTensorflow", None))


_layers_registered = False
_lock = threading.Lock()


def register_superres_layers() -> None:
    """Make the ``DepthToSpace`` layer of ``cv2.dnn_superres`` known to ``cv2.dnn``
    (process-wide, once; :mod:`srzoo.convert.opencv_onnx` says what that changes)."""
    global _layers_registered
    if not _layers_registered:
        with _lock:
            if not _layers_registered:
                cv2.dnn_superres.DnnSuperResImpl_create()
                _layers_registered = True


def superres_layers_registered() -> bool:
    """Has :func:`register_superres_layers` run in this process?"""
    return _layers_registered


__all__ = ["classic_kw", "quiet_opencv", "register_superres_layers", "superres_layers_registered",
           "tf_importer"]
