"""``srzoo.upscale()`` and ``upscale_files()``: the one-call API over :class:`Upscaler`.

:class:`~srzoo.runtime.upscaler.Upscaler` runs a model at its own scales;
these add what users ask of one call: any factor or target size
(:mod:`srzoo.jobs.resize`) and many files at once (:mod:`srzoo.jobs.batch`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import numpy as np

from srzoo.errors import ArgumentError
from srzoo.hub.manifest import ModelEntry
from srzoo.jobs import resize
from srzoo.jobs.batch import run_batch
from srzoo.jobs.files import FileResult
from srzoo.runtime.pipeline import ImageLike
from srzoo.runtime.upscaler import check_tile, get_upscaler


def upscale(image: ImageLike, model: str | ModelEntry = "default", scale: float = 2, *,
            backend: str = "auto", tile: int | None = None, width: int | None = None,
            height: int | None = None, threads: int | None = None,
            precision: str | None = None) -> np.ndarray:
    """Upscale ``image`` (array or path) ``scale`` times with ``model``.

    The result has the input's channel layout (grey, BGR, BGRA) and dtype
    (uint8, uint16, float32) and exactly ``scale`` times its height and width.
    ``model="default"`` is srzoo's own built-in model (x2, x3, x4; shipped in
    the package, works offline). Other weights are fetched and cached on first
    use; the loaded network is reused
    by later calls. See :class:`Upscaler` for ``backend``, ``threads``, ``tile``
    and ``precision`` (default fp32; ``"auto"``: the fastest precision within
    the measured quality budget, see :mod:`srzoo.runtime.precision`).

    Any factor (``1.5``, ``3`` with an x4-only model) or a target ``width``
    and/or ``height`` runs the smallest model scale at or above the request
    and shrinks with ``cv2.INTER_AREA`` (see :mod:`srzoo.jobs.resize`).
    """
    check_tile(tile)
    if not isinstance(image, (np.ndarray, str, os.PathLike)):
        raise ArgumentError(f"image must be a numpy array or a path, got {type(image).__name__}")
    if resize.wants_resize(model, scale, width, height):
        return resize.upscale_to(image, model, scale, width=width, height=height,
                                 backend=backend, tile=tile, threads=threads, precision=precision)
    return get_upscaler(model, scale, backend=backend, threads=threads,
                        precision=precision).upscale(image, tile=tile)


def upscale_files(inputs: Iterable[str | os.PathLike[str]], model: str = "default", scale: float = 2, *,
                  output: str | os.PathLike[str] | None = None, backend: str = "auto",
                  tile: int | None = None, overwrite: bool = False, progress: bool | None = None,
                  on_result: Callable[[FileResult], None] | None = None,
                  **batch: Any) -> list[FileResult]:
    """Upscale files, folders and globs; one :class:`FileResult` per input.

    A failing file does not stop the others. An output never replaces one of
    the inputs unless ``overwrite``; two inputs never write the same output.
    ``progress``: a tqdm bar (``None``: only on a terminal, for several files).
    Model and backend errors are raised before any file is touched. Further
    keywords (``jobs``, ``client``, ``scheduler``, ``skip_existing``, ``width``,
    ``height``, ``json_report``...) go to :func:`srzoo.jobs.batch.run_batch`.
    """
    return run_batch(inputs, model, scale, output=output, backend=backend, tile=tile,
                     overwrite=overwrite, progress=progress, on_result=on_result, **batch).results


__all__ = ["upscale", "upscale_files"]
