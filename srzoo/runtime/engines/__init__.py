"""The engine registry: which engines exist, and which can run a manifest entry.

Built in: ``opencv`` (cv2.dnn; always there), ``onnxruntime``
(``srzoo[onnxruntime]``), ``openvino`` (``srzoo[openvino]``) and
``interpolation`` (cv2.resize). A third-party package adds one through the
entry-point group ``srzoo.engines``::

    [project.entry-points."srzoo.engines"]
    myengine = "mypkg.srzoo_engine:MyEngine"

(a class or an instance following :class:`~srzoo.runtime.engines.base.Engine`), or at
run time with :func:`register`. Engines are chosen from a manifest entry's
``format`` and the backend asked for, never from a model's name: an entry
whose format an engine does not load, but which a registered converter
(:mod:`srzoo.convert`) turns into ONNX, runs on that engine from the derived
file (:func:`plan`).
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from srzoo.convert import converter_for
from srzoo.convert import derive as derived
from srzoo.errors import SrzooError
from srzoo.hub import api
from srzoo.hub.manifest import ModelEntry
from srzoo.runtime.engines.base import (
    Engine,
    ImageRunner,
    ResolvedBackend,
    Runner,
    TensorRunner,
)

#: built-in engines, in the order plain target names prefer them
BUILTIN: dict[str, str] = {
    "onnxruntime": "srzoo.runtime.engines.onnxruntime:OnnxRuntimeEngine",
    "openvino": "srzoo.runtime.engines.openvino:OpenVINOEngine",
    "opencv": "srzoo.runtime.engines.opencv:OpenCVEngine",
    "interpolation": "srzoo.runtime.engines.interpolation:InterpolationEngine",
}
ENTRY_POINT_GROUP = "srzoo.engines"  # the plugin interface: unchanged by the 0.3 layout

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
            eps = entry_points(group=ENTRY_POINT_GROUP)
        except Exception:  # pragma: no cover - broken metadata
            eps = ()
        for ep in eps:
            if ep.name in _engines:
                continue
            try:
                _engines[ep.name] = _instantiate(ep.load())
            except Exception as e:  # a broken plugin must not break srzoo
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
        """True when the engine loads an ONNX derived from the published file."""
        return self.converter is not None

    def loadable(self, entry: "ModelEntry", source: Path | None) -> tuple[Path | None, "ModelEntry"]:
        """The file the engine loads and the entry that describes it: ``source``
        itself, or the ONNX :func:`srzoo.convert.derive.derive` makes from it
        (converted once, cached), described as ``format = "onnx"`` with the
        input layout the converter recorded."""
        if not self.derived or source is None:
            return source, entry
        path = derived.derive(source, entry, self.converter)
        rec = derived.read_record(path.parent) or {}
        layout = (rec.get("info") or {}).get("input_layout", entry.io.layout)
        return path, dataclasses.replace(entry, format="onnx",
                                         io=dataclasses.replace(entry.io, layout=layout))


def plan(entry: "ModelEntry", engine: Engine | str) -> Plan | None:
    """How ``engine`` can run ``entry``, or None when it cannot."""
    eng = get_engine(engine) if isinstance(engine, str) else engine
    if entry.format in eng.formats:
        return Plan(eng)
    if "onnx" in eng.formats and entry.format != "interpolation":
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


def model_file(entry: "ModelEntry", *, engine: Engine | str | None = None,
               quiet: bool | None = None) -> Path:
    """The file ``engine`` (default: the entry's, :func:`engine_for`) loads for
    ``entry``: fetched and verified, and, for a format that engine does not
    read, converted to ONNX once and cached (:func:`srzoo.convert.derive.derive`)."""
    eng = engine_for(entry) if engine is None else engine
    how = plan(entry, eng)
    if how is None:
        name = eng if isinstance(eng, str) else eng.name
        raise SrzooError(f"engine {name} cannot run {entry.name} ({entry.format} files)")
    path, _ = how.loadable(entry, api.fetch_entry(entry, quiet=quiet))
    if path is None:
        raise SrzooError(f"{entry.name} is a built-in {entry.format} method: there is no file")
    return path


__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Engine", "ImageRunner", "Plan", "ResolvedBackend", "Runner",
           "TensorRunner", "engine_for", "engines", "engines_for", "get_engine", "model_file", "plan",
           "register", "unregister"]
