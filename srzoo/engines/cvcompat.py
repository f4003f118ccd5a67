"""OpenCV facts every srzoo module that calls cv2.dnn shares: its log kept
quiet, and the engine choice OpenCV 5.0 offers (the classic engine)."""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

import cv2

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
    from .. import config

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


__all__ = ["classic_kw", "quiet_opencv"]
