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
    from ..convert import arch, converter_for
    from ..errors import SrzooError
    from .safetensors import register

    try:  # the safetensors converter reuses the .pth one's builder: only where that one loaded
        converter_for("pytorch-pth")
    except SrzooError:
        pass
    else:
        register()
    if "span" not in arch.MODULES:
        arch.MODULES.append("span")
    _done = True


__all__ = ["install"]
