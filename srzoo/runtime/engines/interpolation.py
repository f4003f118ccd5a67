"""Classical interpolation (``cv2.resize``) as a model that needs no file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from srzoo.errors import SrzooError

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry
    from srzoo.runtime.engines.base import ResolvedBackend

#: manifest ``io.method`` -> OpenCV interpolation flag
METHODS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
}


class InterpolationRunner:
    """Upscales a whole image with ``cv2.resize``; works on any dtype and channel count.
    An :class:`~srzoo.runtime.engines.base.ImageRunner`."""

    def __init__(self, method: str, scale: int, backend: "ResolvedBackend") -> None:
        self.method = method
        self.flag = METHODS[method]
        self.scale = int(scale)
        self.backend = backend

    def upscale_image(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        out = cv2.resize(image, (w * self.scale, h * self.scale), interpolation=self.flag)
        if out.ndim == 2 and image.ndim == 3:  # cv2 drops a trailing channel axis of 1
            out = out[:, :, None]
        return out


class InterpolationEngine:
    """Engine for manifests with ``format = "interpolation"``."""

    name = "interpolation"
    formats = frozenset({"interpolation"})
    targets = ("cpu",)
    extra = ""

    def why_not(self, target: str) -> str:
        return "" if target == "cpu" else "cv2.resize runs on the CPU only"

    def versions(self) -> dict[str, str]:
        return {"opencv": cv2.__version__}

    def device(self, target: str) -> str:
        return "CPU"

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend",
             threads: int | None = None) -> InterpolationRunner:
        method = entry.io.method
        if method not in METHODS:
            raise SrzooError(f"{entry.manifest}: {entry.name}: unknown io.method {method!r}; "
                             f"known: {', '.join(METHODS)}")
        if entry.scale is None or entry.scale < 1:
            raise SrzooError(f"{entry.name}: interpolation needs a positive integer scale")
        return InterpolationRunner(method, entry.scale, backend)
