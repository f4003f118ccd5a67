"""Converters: turn a verified source file into a verified ONNX file.

A converter is a small object (pooch's processors are the model)::

    class GraphDefToONNX:
        name = "graphdef-onnx"           # recorded, and part of the cache key
        version = "1"                     # bump whenever the output bytes change
        source_formats = frozenset({"tf-graphdef"})
        def convert(self, source: Path, entry: ModelEntry, options: dict) -> Conversion: ...

``convert`` builds the ONNX bytes and checks them itself: it runs the result
(cv2.dnn) and an independent forward pass of the source on the same probe and
reports the largest difference in :class:`Conversion`. It must be
deterministic: the same source, version and options give the same bytes.

Converters are found through :func:`converter_for` (by the entry's
``format``), never by a model's name. :func:`srzoo.convert.derive.derive` runs one
and caches its output with a record; :mod:`.export` writes the ONNX a user asks
for. :mod:`.cvcompat` and :mod:`.opencv_onnx` hold what this OpenCV can do and
the ONNX rewrites that make a graph fit it (asked by the engines too).

Layer: above :mod:`srzoo.hub` (converters read verified files from the cache),
below :mod:`srzoo.runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from srzoo.errors import SrzooError

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry


@dataclass
class Conversion:
    """What a converter produced: the ONNX bytes and the facts for the record."""

    onnx: bytes
    #: e.g. {"opset": 17, "arch": "rrdbnet", "params": 16697987}
    info: dict[str, Any] = field(default_factory=dict)
    #: largest |difference| on the probe between the ONNX and the reference, in [0,1] output units
    probe_error: float | None = None
    #: what the probe was checked against, e.g. "cv2.dnn on the .pb" or "torch 2.13.0"
    checked_against: str = ""
    #: versions of the tools that built and checked it, e.g. {"onnx": "1.23.2"}
    tools: dict[str, str] = field(default_factory=dict)


class Converter(Protocol):
    name: str
    version: str
    source_formats: frozenset[str]

    def convert(self, source: Path, entry: "ModelEntry", options: dict[str, Any]) -> Conversion:
        ...


_REGISTRY: dict[str, Converter] = {}


def register(converter: Converter) -> Converter:
    """Make ``converter`` the one used for each of its ``source_formats``."""
    for fmt in converter.source_formats:
        _REGISTRY[fmt] = converter
    return converter


def _load_builtin() -> None:
    """Import the converter modules that ship with srzoo (each calls :func:`register`)."""
    import importlib

    for mod in _BUILTIN:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:  # a module of ours missing is a bug; an extra missing is not
            if e.name and e.name.startswith(__name__):
                raise


#: converter modules of srzoo, imported on first lookup
_BUILTIN: list[str] = ["graphdef", "pytorch", "safetensors", "keras", "ncnn", "tensorflow"]
_loaded = False


def converter_for(fmt: str) -> Converter:
    """The converter that turns files of ``fmt`` into ONNX; SrzooError if there is none."""
    global _loaded
    if not _loaded:
        _load_builtin()
        _loaded = True
    try:
        return _REGISTRY[fmt]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise SrzooError(f"no converter turns {fmt!r} files into ONNX (srzoo converts: {known})") from None


__all__ = ["Conversion", "Converter", "converter_for", "register"]
