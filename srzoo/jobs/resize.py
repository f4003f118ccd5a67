"""Any output size: a model scale at or above the request, then a high-quality resize down.

A network only gives its own scales (x2, x3, x4...). For any other factor
(``1.5``, ``3`` with an x4-only model) or a target ``width``/``height``, srzoo
runs the *smallest model scale at or above the request* and shrinks the result
to the exact size with :data:`DOWN_FILTER` (``cv2.INTER_AREA``: pixel-area
averaging, the filter OpenCV recommends for decimation; it does not ring or
alias the way bicubic or Lanczos do when shrinking). When the request is one of
the model's scales, nothing is resized and the result is exactly
:func:`srzoo.upscale`'s.

This is a thin layer over :class:`srzoo.Upscaler`: it only chooses the scale
and resizes; the engines never see a fractional factor.

>>> pick_scale([2, 3, 4], 1.5)    # doctest: +SKIP
2
>>> target_size(640, 480, scale=1.5)
(960, 720)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from srzoo.errors import SrzooError, UnknownModel
from srzoo.hub.api import variants
from srzoo.hub.manifest import ModelEntry
from srzoo.runtime.pipeline import load_image
from srzoo.runtime.upscaler import get_upscaler

#: the filter used to shrink the model's output to the requested size
DOWN_FILTER = "INTER_AREA"


def parse_scale(value: Any) -> int | float:
    """A scale as given (``2``, ``"1.5"``, ``3.0``): an int when whole, else a float > 1.
    Raises :class:`SrzooError`."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise SrzooError(f"scale must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(f) or f <= 0:
        raise SrzooError(f"scale must be a positive number, got {value!r}")
    if f.is_integer():
        return int(f)
    if f < 1:
        raise SrzooError(f"scale {f} would shrink the image; srzoo only upscales (use >= 1)")
    return f


def target_size(w: int, h: int, *, scale: float | None = None, width: int | None = None,
                height: int | None = None, stretch: bool = False) -> tuple[int, int]:
    """The output (width, height) for a ``w``×``h`` input: ``scale`` times it, or
    ``width`` and/or ``height`` (one alone keeps the aspect ratio, rounded; both:
    the largest size that fits inside both keeping the aspect ratio, or exactly
    ``width`` x ``height`` with ``stretch``)."""
    if width is not None or height is not None:
        for name, v in (("width", width), ("height", height)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise SrzooError(f"--{name} must be a positive whole number of pixels, got {v!r}")
        if width is not None and height is not None:
            if stretch:
                return int(width), int(height)
            if width * h <= height * w:  # the width binds
                return int(width), max(1, min(int(height), round(h * width / w)))
            return max(1, min(int(width), round(w * height / h))), int(height)
        if width is not None:
            return int(width), max(1, round(h * width / w))
        return max(1, round(w * height / h)), int(height)  # type: ignore[operator]
    s = parse_scale(2 if scale is None else scale)
    return max(1, round(w * s)), max(1, round(h * s))


def pick_scale(model_scales: Sequence[int], need: float, model: str = "model") -> int:
    """The smallest of ``model_scales`` that is >= ``need`` (empty: any integer scale,
    i.e. ``ceil(need)``, for interpolation). Raises when the request is above them all."""
    need = max(float(need), 1.0)
    if not model_scales:
        return max(1, math.ceil(need - 1e-9))
    for s in sorted(model_scales):
        if s >= need - 1e-9:
            return int(s)
    have = ", ".join(f"x{s}" for s in sorted(model_scales))
    shown = f"{need:.3g}"
    if float(shown) in model_scales:  # 4.0000001 is not "x4", which the model has
        shown = f"{need:.10g}"
    raise UnknownModel(f"model {model!r} has no x{shown}; it has scales {have} (srzoo runs "
                       "a model scale at or above the request, then shrinks): use a smaller "
                       "scale or size, or a model with a larger scale")


def model_scales(model: Any) -> list[int]:
    """Scales a model can run: a registry name's scales, an entry's own scale
    (``[]`` for scale-free interpolation: any integer scale)."""

    if isinstance(model, ModelEntry):
        return [model.scale] if model.scale is not None else []
    if not isinstance(model, str):
        return []  # not a name: srzoo.runtime.upscaler refuses it with the message
    return sorted({e.scale for e in variants(model) if e.scale is not None})


def is_native(scales: Sequence[int], w: int, h: int, size: tuple[int, int]) -> int | None:
    """The model scale that gives exactly ``size``, if any (no resize needed)."""
    for s in (scales or range(1, 65)):
        if (w * s, h * s) == tuple(size):
            return int(s)
    return None


def resize_down(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` shrunk to ``size`` (width, height) with :data:`DOWN_FILTER`, same layout and dtype."""
    import cv2

    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    out = cv2.resize(image, tuple(int(v) for v in size), interpolation=getattr(cv2, DOWN_FILTER))
    if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[:, :, None]
    return out


def choose(scales: Sequence[int], w: int, h: int, *, scale: float | None = None,
           width: int | None = None, height: int | None = None,
           model: str = "model", stretch: bool = False) -> tuple[int, tuple[int, int]]:
    """(model scale to run, final (width, height)) for a ``w``×``h`` input, given
    the scales the model has (``[]``: any integer scale)."""
    size = target_size(w, h, scale=scale, width=width, height=height, stretch=stretch)
    native = is_native(scales, w, h, size)
    if native is not None:
        return native, size
    need = max(size[0] / w, size[1] / h)
    if need < 1:
        raise SrzooError(f"the requested {size[0]}x{size[1]} is smaller than the {w}x{h} input; "
                         "srzoo only upscales")
    return pick_scale(scales, need, model), size


def plan(model: Any, w: int, h: int, *, scale: float | None = None, width: int | None = None,
         height: int | None = None, stretch: bool = False) -> tuple[int, tuple[int, int]]:
    """(model scale to run, final (width, height)) for a ``w``×``h`` input."""
    name = model.name if hasattr(model, "name") else str(model)
    return choose(model_scales(model), w, h, scale=scale, width=width, height=height, model=name,
                  stretch=stretch)


def upscale_to(image: Any, model: Any = "default", scale: float | None = None, *,
               width: int | None = None, height: int | None = None, backend: str = "auto",
               tile: int | None = None, threads: int | None = None,
               precision: str | None = None,
               memory: int | str | None = None,
               progress: Callable[[int, int], None] | None = None,
               stretch: bool = False) -> np.ndarray:
    """:func:`srzoo.upscale` at any factor or to a target size.

    Runs the smallest model scale at or above the request, then resizes down
    with ``cv2.INTER_AREA``. A request equal to a model scale gives exactly
    :func:`srzoo.upscale`'s result.
    """

    arr = load_image(image, scale=math.ceil(scale or 1))
    h, w = arr.shape[:2]
    s, size = plan(model, w, h, scale=scale, width=width, height=height, stretch=stretch)
    out = get_upscaler(model, s, backend=backend, threads=threads, precision=precision).upscale(
        arr, tile=tile, memory=memory, progress=progress)
    return resize_down(out, size)


def wants_resize(model: Any, scale: Any, width: int | None = None, height: int | None = None) -> bool:
    """True when (``scale``, ``width``, ``height``) is not simply one of the model's scales."""
    if width is not None or height is not None:
        return True
    s = parse_scale(scale)
    if isinstance(s, float):
        return True
    scales = model_scales(model)
    return bool(scales) and s not in scales


__all__ = ["DOWN_FILTER", "parse_scale", "pick_scale", "plan", "resize_down", "target_size",
           "upscale_to"]
