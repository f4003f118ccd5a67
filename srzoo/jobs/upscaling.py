"""``srzoo.upscale()`` and ``upscale_files()``: the one-call API over :class:`Upscaler`.

:class:`~srzoo.runtime.upscaler.Upscaler` runs a model at its own scales;
these add what users ask of one call: any factor or target size
(:mod:`srzoo.jobs.resize`) and many files at once (:mod:`srzoo.jobs.batch`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import numpy as np

from srzoo.convert.localmodel import entry_for_path, looks_like_path
from srzoo.errors import ArgumentError
from srzoo.hub.manifest import ModelEntry
from srzoo.jobs import resize
from srzoo.jobs.batch import run_batch
from srzoo.jobs.files import FileResult
from srzoo.runtime.pipeline import ImageLike
from srzoo.runtime.upscaler import check_tile, get_upscaler


def model_for(model: Any, scale: Any = None) -> Any:
    """``model`` as the jobs take it: a model file given by path becomes its entry
    (:func:`srzoo.convert.localmodel.entry_for_path`; the scale it holds that is
    nearest at or above ``scale``, its only scale when ``scale`` is None), a name
    or an entry stays as it is."""
    if looks_like_path(model):
        return entry_for_path(model, None if scale is None else resize.parse_scale(scale), exact=False)
    return model


def upscale(image: ImageLike, model: str | ModelEntry = "default", scale: float = 2, *,
            backend: str = "auto", tile: int | None = None, width: int | None = None,
            height: int | None = None, threads: int | None = None,
            precision: str | None = None,
            memory: int | str | None = None,
            progress: Callable[[int, int], None] | None = None,
            stretch: bool = False) -> np.ndarray:
    """Upscale ``image`` (array or path) ``scale`` times with ``model``.

    The result has the input's channel layout (grey, BGR, BGRA) and dtype
    (uint8, uint16, float32) and exactly ``scale`` times its height and width.
    ``model="default"`` is srzoo's own built-in model (x2, x3, x4; shipped in
    the package, works offline). Other weights are fetched and cached on first
    use; the loaded network is reused
    by later calls. See :class:`Upscaler` for ``backend``, ``threads``, ``tile``,
    ``precision`` (default fp32; ``"auto"``: the fastest precision within
    the measured quality budget, see :mod:`srzoo.runtime.precision`) and
    ``memory`` (bytes or ``"1.5G"`` a network run may use: larger inputs are tiled
    to fit; default ``SRZOO_MEMORY``, else a quarter of the available memory, at
    most 1.5 GiB and what keeps the process under 2 GiB, but at least three
    quarters of that; see :func:`srzoo.runtime.pipeline.memory_budget`).
    ``progress(done, total)``: called after each tile, for a bar or an ETA.

    Any factor (``1.5``, ``3`` with an x4-only model) or a target ``width``
    and/or ``height`` runs the smallest model scale at or above the request
    and shrinks with ``cv2.INTER_AREA`` (see :mod:`srzoo.jobs.resize`). ``width``
    and ``height`` together: the largest size inside both that keeps the aspect
    ratio, or exactly that size with ``stretch=True``.
    """
    check_tile(tile)
    if not isinstance(image, (np.ndarray, str, os.PathLike)):
        raise ArgumentError(f"image must be a numpy array or a path, got {type(image).__name__}")
    model = model_for(model, scale if width is None and height is None else None)
    if resize.wants_resize(model, scale, width, height):
        return resize.upscale_to(image, model, scale, width=width, height=height,
                                 backend=backend, tile=tile, threads=threads, precision=precision,
                                 memory=memory, progress=progress, stretch=stretch)
    scale = resize.parse_scale(scale)  # "4" and 4.0 are 4, as for any other scale
    return get_upscaler(model, scale, backend=backend, threads=threads, precision=precision).upscale(
        image, tile=tile, memory=memory, progress=progress)


def upscale_files(inputs: Iterable[str | os.PathLike[str]], model: Any = "default", scale: float = 2, *,
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
    sized = batch.get("width") is not None or batch.get("height") is not None
    model = model_for(model, None if sized else scale)
    return run_batch(inputs, model, scale, output=output, backend=backend, tile=tile,
                     overwrite=overwrite, progress=progress, on_result=on_result, **batch).results


__all__ = ["model_for", "upscale", "upscale_files"]
