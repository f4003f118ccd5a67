"""``srzoo.upscale()`` and :class:`Upscaler`: one call for every model family.

>>> up = Upscaler("espcn", 4)            # doctest: +SKIP
>>> big = up(img)                         # doctest: +SKIP
>>> big = srzoo.upscale("in.png", "fsrcnn", 2)  # doctest: +SKIP

The weights are fetched (and verified) into the cache on first use. Loaded
networks are kept in a small process-wide cache keyed by (model entry, scale,
backend), so repeated :func:`upscale` calls do not read the file again.
"""

from __future__ import annotations

import glob
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import backends
from .errors import ArgumentError, SrzooError
from .imageio import FLOAT_EXTS, load_image, write_image
from .pipeline import ImageLike, ModelPipeline, check_size, finish, prepare
from .registry import ModelEntry

#: how many loaded models :func:`upscale` keeps (least recently used dropped first)
CACHE_SIZE = 8

_cache: "OrderedDict[tuple[Any, ...], Upscaler]" = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: "dict[tuple[Any, ...], threading.Lock]" = {}
#: number of models loaded from disk by this process (tests and diagnostics)
load_count = 0


def _check_backend(backend: Any) -> str:
    if not isinstance(backend, str):
        raise ArgumentError(f"backend must be a string such as 'auto', 'cpu' or 'opencl', got "
                            f"{type(backend).__name__} {backend!r:.40}")
    return backend


def _check_tile(tile: Any, name: str = "tile") -> None:
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer))
                             or tile < 0):
        raise ArgumentError(f"{name} must be None or an integer >= 0, got {tile!r:.40}")


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        if isinstance(scale, float) and scale.is_integer() and scale >= 1:
            return int(scale)
        raise SrzooError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _entry(model: str | ModelEntry, scale: int) -> ModelEntry:
    if not isinstance(model, (str, ModelEntry)):
        raise ArgumentError(f"model must be a model name such as 'espcn' (see srzoo.list_models()) "
                            f"or a ModelEntry, got {type(model).__name__} {model!r:.40}")
    if isinstance(model, ModelEntry):
        if model.scale is None:
            return model.at_scale(scale)
        if model.scale != scale:
            raise SrzooError(f"{model.name} entry is x{model.scale}, not x{scale}")
        return model
    from .api import get_model

    return get_model(model, scale)


class Upscaler:
    """A model loaded once, for upscaling many images.

    ``model`` is a registry name (``"default"`` -- srzoo's own models, shipped
    inside the package, no download --, ``"espcn"``, ``"lapsrn"``, ``"bicubic"``...)
    or a :class:`~srzoo.registry.ModelEntry`; ``scale`` must be one the model
    has (the error lists them). ``backend``: ``auto`` (default: the fastest
    usable, see :attr:`backend`), ``cpu``, ``opencl``, ``opencl_fp16``,
    ``cuda``, ``cuda_fp16`` or ``ENGINE:TARGET``; one that cannot run raises
    :class:`srzoo.BackendUnavailable`. ``tile``: tile side in input pixels
    (``None``: automatic for large images, ``0``: never); ``overlap``: context
    pixels around each tile.
    """

    def __init__(self, model: str | ModelEntry = "default", scale: int = 2, *, backend: str = "auto",
                 tile: int | None = None, overlap: int | None = None,
                 quiet: bool | None = None) -> None:
        global load_count
        from .engines import engine_for

        scale = _check_scale(scale)
        self.entry = _entry(model, scale)
        self.scale = scale
        self.tile = tile
        self.overlap = overlap
        engine = engine_for(self.entry)  # before fetching: refuse unrunnable formats early
        resolved = backends.resolve(backend)
        if getattr(engine, "name", "") == "interpolation":
            resolved = backends.resolve("cpu")  # cv2.resize runs on the CPU whatever was asked
        path = None
        if self.entry.artifact is not None:
            from .api import fetch_entry

            path = fetch_entry(self.entry, quiet=quiet)
        self.path: Path | None = path
        self.runner = engine.load(self.entry, path, resolved)
        self.pipeline = ModelPipeline(self.entry, self.runner)
        self._resolved = resolved
        load_count += 1

    # ---- what was chosen -------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend actually in use (what ``auto`` picked), e.g. ``"cpu"``."""
        return str(self._resolved)

    @property
    def model(self) -> str:
        return self.entry.name

    @property
    def scales(self) -> tuple[int, ...]:
        """Every scale one call can return (several for pyramid models like LapSRN)."""
        return tuple(sorted(set(self.pipeline.scales))) if not self.pipeline.direct else (self.scale,)

    def __repr__(self) -> str:
        return f"Upscaler({self.entry.name!r}, {self.scale}, backend={self.backend!r})"

    # ---- running ---------------------------------------------------------------
    def _run(self, image: ImageLike, want: Sequence[int], tile: int | None,
             overlap: int | None) -> dict[int, np.ndarray]:
        what = str(image) if not isinstance(image, np.ndarray) else "image"
        arr = load_image(image, scale=max(want))  # a bomb is refused before decoding
        p = prepare(arr, what, split_alpha=not self.pipeline.direct)
        h, w = p.color.shape[:2]
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        check_size(h, w, channels, max(want), arr.dtype.itemsize, what)
        outs = self.pipeline.run(p.color, want, self.tile if tile is None else tile,
                                 self.overlap if overlap is None else overlap)
        return {s: finish(p, outs[s], s) for s in want}

    def upscale(self, image: ImageLike, *, tile: int | None = None,
                overlap: int | None = None) -> np.ndarray:
        """The image upscaled ``scale`` times, in the input's layout and dtype."""
        return self._run(image, (self.scale,), tile, overlap)[self.scale]

    __call__ = upscale

    def upscale_all(self, image: ImageLike, *, tile: int | None = None,
                    overlap: int | None = None) -> dict[int, np.ndarray]:
        """Every output of one pass, keyed by scale: for LapSRN x8 the x2, x4
        and x8 levels of its pyramid; for other models just ``{scale: image}``."""
        return self._run(image, self.scales, tile, overlap)


def get_upscaler(model: str | ModelEntry = "default", scale: int = 2, *,
                 backend: str = "auto") -> Upscaler:
    """A cached :class:`Upscaler` for (model, scale, backend), loading it on first use.

    Threads asking for the same key at once wait for one load (a lock per key);
    different models load in parallel."""
    scale = _check_scale(scale)
    entry = _entry(model, scale)
    key = (entry, _check_backend(backend).strip().lower())
    with _cache_lock:
        up = _cache.get(key)
        if up is not None:
            _cache.move_to_end(key)
            return up
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:  # loaded by another thread while this one waited?
            up = _cache.get(key)
            if up is not None:
                _cache.move_to_end(key)
                return up
        up = Upscaler(entry, scale, backend=backend)
        with _cache_lock:
            _cache[key] = up
            while len(_cache) > CACHE_SIZE:
                old, _ = _cache.popitem(last=False)
                _key_locks.pop(old, None)
    return up


def clear_cache() -> None:
    """Drop every network :func:`upscale` keeps loaded."""
    with _cache_lock:
        _cache.clear()


def upscale(image: ImageLike, model: str | ModelEntry = "default", scale: float = 2, *,
            backend: str = "auto", tile: int | None = None, width: int | None = None,
            height: int | None = None) -> np.ndarray:
    """Upscale ``image`` (array or path) ``scale`` times with ``model``.

    The result has the input's channel layout (grey, BGR, BGRA) and dtype
    (uint8, uint16, float32) and exactly ``scale`` times its height and width.
    ``model="default"`` is srzoo's own built-in model (x2, x3, x4; shipped in
    the package, works offline). Other weights are fetched and cached on first
    use; the loaded network is reused
    by later calls. See :class:`Upscaler` for ``backend`` and ``tile``.

    Any factor (``1.5``, ``3`` with an x4-only model) or a target ``width``
    and/or ``height`` runs the smallest model scale at or above the request
    and shrinks with ``cv2.INTER_AREA`` (see :mod:`srzoo.resize`).
    """
    _check_tile(tile)
    if not isinstance(image, (np.ndarray, str, os.PathLike)):
        raise ArgumentError(f"image must be a numpy array or a path, got {type(image).__name__}")
    from . import resize

    if resize.wants_resize(model, scale, width, height):
        return resize.upscale_to(image, model, scale, width=width, height=height,
                                 backend=backend, tile=tile)
    return get_upscaler(model, scale, backend=backend).upscale(image, tile=tile)


# --------------------------------------------------------------------------- files
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
              ".exr", ".hdr", ".jp2", ".pfm")
_FLOAT_EXTS = FLOAT_EXTS


@dataclass
class FileResult:
    """What happened to one input: the output written, or why not."""

    input: str
    output: Path | None = None
    error: str | None = None
    #: the output existed already and ``skip_existing`` was asked for
    skipped: bool = False
    #: seconds spent reading, upscaling and writing this file (None when not run)
    seconds: float | None = None
    #: (height, width) of the input and of the output
    in_shape: tuple[int, int] | None = None
    out_shape: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """``written``, ``skipped`` or ``failed``."""
        return "failed" if self.error is not None else "skipped" if self.skipped else "written"


def expand_inputs(items: Iterable[str | os.PathLike[str]],
                  skip_suffix: str | None = None) -> tuple[list[Path], list[FileResult]]:
    """Files, folders (their images, not recursive) and glob patterns → input files.

    Files of a folder whose stem ends with ``skip_suffix`` (earlier outputs,
    e.g. ``_espcn_x2``) are left out. Returns (files in order, without
    duplicates; failures for items that match nothing).
    """
    files: list[Path] = []
    failed: list[FileResult] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS
                           and not (skip_suffix and q.stem.endswith(skip_suffix)))
            if not found:
                failed.append(FileResult(text, error="folder holds no image files "
                                                     f"({', '.join(IMAGE_EXTS[:4])}, ...)"))
            for q in found:
                add(q)
        elif p.is_file():
            add(p)
        elif glob.has_magic(text):
            found = sorted(Path(q) for q in glob.glob(text, recursive=True) if Path(q).is_file())
            if not found:
                failed.append(FileResult(text, error="pattern matches no file"))
            for q in found:
                add(q)
        else:
            failed.append(FileResult(text, error="no such file or folder"))
    return files, failed


def file_tag(model: str) -> str:
    """A model name as it appears in output file names: ``omdb:ID@onnx`` -> ``omdb-ID-onnx``
    (no ':' or '@', which some file systems refuse)."""
    return model.replace(":", "-").replace("@", "-")


def output_path(src: Path, out: Path | None, model: str, scale: int, *, single: bool,
                ext: str = ".png") -> Path:
    """Where the result of ``src`` goes: ``<stem>_<model>_x<scale>.png`` beside it,
    ``OUT/<stem>.png`` for an output folder, or ``OUT`` itself for one input and
    an ``OUT`` with an image extension."""
    if out is None:
        return src.with_name(f"{src.stem}_{file_tag(model)}_x{scale}{ext}")
    if single and out.suffix.lower() in IMAGE_EXTS and not out.is_dir():
        return out
    return out / f"{src.stem}{ext}"


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
    ``height``, ``json_report``...) go to :func:`srzoo.batch.run_batch`.
    """
    from .batch import run_batch

    return run_batch(inputs, model, scale, output=output, backend=backend, tile=tile,
                     overwrite=overwrite, progress=progress, on_result=on_result, **batch).results


__all__ = ["FileResult", "Upscaler", "clear_cache", "expand_inputs", "file_tag", "get_upscaler", "output_path",
           "upscale", "upscale_files", "write_image"]
