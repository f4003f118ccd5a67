"""Inference engines, chosen from a manifest entry (``format`` and ``engine``),
never from a model's name.

``opencv``: cv2.dnn for TensorFlow GraphDef and ONNX files;
``interpolation``: cv2.resize for ``format = "interpolation"`` entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SrzooError
from .base import Engine, Runner

if TYPE_CHECKING:  # pragma: no cover
    from ..registry import ModelEntry


def engine_for(entry: "ModelEntry") -> Engine:
    """The engine that runs ``entry``, from its manifest ``format`` and ``engine``."""
    if getattr(entry, "unrunnable", None):  # e.g. a catalogue record of an unconverted architecture
        raise SrzooError(entry.unrunnable)
    if entry.format == "interpolation":
        from .interpolation import InterpolationEngine

        return InterpolationEngine()
    if entry.needs_conversion:
        scale = f" x{entry.scale}" if entry.scale else ""
        raise SrzooError(f"{entry.name}{scale} is published as {entry.format} and needs conversion "
                         "to ONNX before OpenCV can run it; add a manifest entry for the converted "
                         "ONNX file (format = \"onnx\") and upscale with that")
    if entry.engine == "opencv":
        from .opencv import OpenCVEngine

        eng = OpenCVEngine()
        if entry.format in eng.formats:
            return eng
    raise SrzooError(f"{entry.name}: no engine runs engine={entry.engine!r} format={entry.format!r} "
                     "(srzoo has: opencv for tf-graphdef and onnx, interpolation)")


__all__ = ["Engine", "Runner", "engine_for"]
