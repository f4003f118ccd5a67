"""The engine registry: which engines exist, and which can run a manifest entry.

Built in: ``opencv`` (cv2.dnn; always there), ``onnxruntime``
(``srzoo[onnxruntime]``), ``openvino`` (``srzoo[openvino]``) and
``interpolation`` (cv2.resize). A third-party package adds one through the
entry-point group ``srzoo.engines``::

    [project.entry-points."srzoo.engines"]
    myengine = "mypkg.srzoo_engine:MyEngine"

(a class or an instance following :class:`~srzoo.engines.base.Engine`), or at
run time with :func:`register`. Engines are chosen from a manifest entry's
``format`` and the backend asked for, never from a model's name: an entry
whose format an engine does not load, but which a registered converter
(:mod:`srzoo.convert`) turns into ONNX, runs on that engine from the derived
file (:func:`plan`).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SrzooError
from .base import Engine, ImageRunner, Runner, TensorRunner

if TYPE_CHECKING:  # pragma: no cover
    from ..registry import ModelEntry

#: built-in engines, in the order plain target names prefer them
BUILTIN: dict[str, str] = {
    "onnxruntime": "srzoo.engines.onnxruntime:OnnxRuntimeEngine",
    "openvino": "srzoo.engines.openvino:OpenVINOEngine",
    "opencv": "srzoo.engines.opencv:OpenCVEngine",
    "interpolation": "srzoo.engines.interpolation:InterpolationEngine",
}
ENTRY_POINT_GROUP = "srzoo.engines"

_engines: dict[str, Engine] = {}
_loaded = False
_lock = threading.Lock()


def _instantiate(obj: Any) -> Engine:
    return obj() if isinstance(obj, type) else obj


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for name, ref in BUILTIN.items():
            if name not in _engines:
                mod, _, cls = ref.partition(":")
                _engines[name] = _instantiate(getattr(importlib.import_module(mod), cls))
        try:
            from importlib.metadata import entry_points

            eps = entry_points(group=ENTRY_POINT_GROUP)
        except Exception:  # pragma: no cover - broken metadata
            eps = ()
        for ep in eps:
            if ep.name in _engines:
                continue
            try:
                _engines[ep.name] = _instantiate(ep.load())
            except Exception as e:  # a broken plugin must not break srzoo
                import warnings

                warnings.warn(f"srzoo: engine plugin {ep.name!r} ({ep.value}) failed to load: {e}",
                              stacklevel=2)
        _loaded = True


def register(engine: Engine | type) -> Engine:
    """Add (or replace) an engine at run time; returns the instance."""
    _load_all()
    inst = _instantiate(engine)
    _engines[inst.name] = inst
    return inst


def unregister(name: str) -> None:
    """Remove an engine added with :func:`register` (tests, plugins)."""
    _load_all()
    _engines.pop(name, None)


def engines() -> dict[str, Engine]:
    """Every registered engine by name (built-ins first, then plugins)."""
    _load_all()
    return dict(_engines)


def get_engine(name: str) -> Engine:
    eng = engines().get(name)
    if eng is None:
        raise SrzooError(f"unknown engine {name!r}; known: {', '.join(engines())}")
    return eng


@dataclass(frozen=True)
class Plan:
    """How ``engine`` runs an entry: on its file as published, or on the ONNX
    that ``converter`` derives from it."""

    engine: Engine
    converter: Any = None

    @property
    def derived(self) -> bool:
        return self.converter is not None


def plan(entry: "ModelEntry", engine: Engine | str) -> Plan | None:
    """How ``engine`` can run ``entry``, or None when it cannot."""
    eng = get_engine(engine) if isinstance(engine, str) else engine
    if entry.format in eng.formats:
        return Plan(eng)
    if "onnx" in eng.formats and entry.format != "interpolation":
        from ..convert import converter_for

        try:
            return Plan(eng, converter_for(entry.format))
        except SrzooError:
            return None
    return None


def engines_for(entry: "ModelEntry") -> list[str]:
    """Names of the engines that can run ``entry`` (directly or from a derived ONNX)."""
    return [n for n, e in engines().items() if plan(entry, e) is not None]


def engine_for(entry: "ModelEntry") -> Engine:
    """The default engine of ``entry``: its manifest ``engine`` when that loads
    the format, else the first engine that can run it. Raises
    :class:`SrzooError` naming the format when nothing can."""
    if getattr(entry, "unrunnable", None):  # e.g. a catalogue record of an unconverted architecture
        raise SrzooError(entry.unrunnable)
    eng = engines().get(entry.engine)
    if eng is not None and plan(entry, eng) is not None:
        return eng
    names = engines_for(entry)
    if names:
        return engines()[names[0]]
    scale = f" x{entry.scale}" if entry.scale else ""
    have = ", ".join(f"{n} ({', '.join(sorted(e.formats))})" for n, e in engines().items())
    raise SrzooError(f"{entry.name}{scale}: no engine runs format {entry.format!r} and no converter "
                     f"turns it into ONNX (engines: {have}); add a manifest entry for an ONNX "
                     "export of it (format = \"onnx\")")


__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Engine", "ImageRunner", "Plan", "Runner", "TensorRunner",
           "engine_for", "engines", "engines_for", "get_engine", "plan", "register", "unregister"]
