"""Converters the catalogue adds to :mod:`srzoo.convert` (until they move there).

* ``safetensors`` files: :class:`srzoo.catalog.safetensors.SafetensorsToONNX`;
* the SPAN architecture (:mod:`srzoo.convert.arch.span`), appended to the
  architectures :func:`srzoo.convert.arch.detect` tries.
"""

from __future__ import annotations

_done = False


def install() -> None:
    """Register the catalogue's converters (idempotent)."""
    global _done
    if _done:
        return
    from ..convert import arch
    from .safetensors import register

    register()
    if "span" not in arch.MODULES:
        arch.MODULES.append("span")
    _done = True


__all__ = ["install"]
