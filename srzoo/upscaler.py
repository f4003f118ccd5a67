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


def _check_threads(threads: Any) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or int(threads) < 1:
        raise SrzooError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


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
    has (the error lists them). ``backend``: ``auto`` (default: measured once
    per model and input-size class, see :mod:`srzoo.autotune`;
    ``SRZOO_BACKEND`` replaces it), a plain target (``cpu``, ``cuda``...: the
    preferred engine offering it) or ``ENGINE:TARGET`` (``onnxruntime:cuda``,
    ``openvino:cpu``, ``opencv:cuda_fp16``); one that cannot run raises
    :class:`srzoo.BackendUnavailable`. An entry whose format the chosen engine
    does not load is converted once to ONNX (:func:`srzoo.derived.derive`).
    ``threads``: threads for the network and the pre/post-processing, the
    same on every engine (None: each engine's default). ``tile``: tile side in
    input pixels (``None``: automatic for large images, ``0``: never);
    ``overlap``: context pixels around each tile (``None``: the manifest's
    ``receptive_field``, at most 24; 24 when the manifest gives none).
    """

    def __init__(self, model: str | ModelEntry = "default", scale: int = 2, *, backend: str = "auto",
                 tile: int | None = None, overlap: int | None = None,
                 quiet: bool | None = None, threads: int | None = None) -> None:
        from .engines import engine_for

        scale = _check_scale(scale)
        self.entry = _entry(model, scale)
        self.scale = scale
        self.tile = tile
        self.overlap = overlap
        self.threads = _check_threads(threads)
        self._quiet = quiet
        engine_for(self.entry)  # before fetching: refuse formats nothing can run, early
        requested = backend if isinstance(backend, str) else "auto"
        if requested.strip().lower() == "auto" and backends.env_backend():
            requested = backends.env_backend() or "auto"
        self.requested = requested
        engine, target = backends.parse(requested)
        self._auto_engine: str | None = engine if target == "auto" else None
        self._auto = target == "auto"
        self._source: Path | None = None
        self._runners: dict[str, Any] = {}
        self._pipelines: dict[str, ModelPipeline] = {}
        self._choices: dict[str, Any] = {}
        self._lock = threading.Lock()
        if self._auto:
            resolved = self._choose("medium")
        else:
            resolved = backends.resolve(requested, self.entry)
            self._load(resolved)
        self._resolved = resolved

    # ---- loading ---------------------------------------------------------------
    def _source_file(self) -> Path | None:
        if self.entry.artifact is None:
            return None
        if self._source is None:
            from .api import fetch_entry

            self._source = fetch_entry(self.entry, quiet=self._quiet)
        return self._source

    @property
    def path(self) -> Path | None:
        """The file the network was loaded from (a derived ONNX when converted)."""
        return getattr(self, "_path", None) or self._source

    def _load(self, resolved: "backends.ResolvedBackend") -> Any:
        """Load (once) the runner of ``resolved``, deriving an ONNX file when the
        engine does not load the published format."""
        global load_count
        key = str(resolved)
        if key in self._runners:
            return self._runners[key]
        from dataclasses import replace

        from .engines import get_engine, plan

        eng = get_engine(resolved.engine)
        how = plan(self.entry, eng)
        if how is None:  # resolve() checked; a plugin may disagree
            raise backends.BackendUnavailable(f"engine {resolved.engine} cannot run {self.entry.name}")
        path = self._source_file()
        entry = self.entry
        if how.derived and path is not None:
            from . import derived

            path = derived.derive(path, entry, how.converter)
            rec = derived.read_record(path.parent) or {}
            layout = (rec.get("info") or {}).get("input_layout", entry.io.layout)
            entry = replace(entry, format="onnx", io=replace(entry.io, layout=layout))
        runner = eng.load(entry, path, resolved, self.threads)
        self._runners[key] = runner
        self._pipelines[key] = ModelPipeline(self.entry, runner, self.threads)
        self._path = path
        load_count += 1
        return runner

    def _choose(self, cls: str) -> "backends.ResolvedBackend":
        """The backend ``auto`` runs inputs of size class ``cls`` on (measured once)."""
        from . import autotune

        choice = self._choices.get(cls)
        if choice is None:
            channels = 1 if self.entry.io.color == "y" else 3
            choice, loaded = autotune.choose(self.entry, cls, self.threads, self._load, channels,
                                             self._auto_engine)
            for name in list(self._runners):  # drop the losers of the trial
                if name != str(choice.backend) and name in loaded and \
                        name not in {str(c.backend) for c in self._choices.values()}:
                    self._runners.pop(name, None)
                    self._pipelines.pop(name, None)
            self._choices[cls] = choice
            self._load(choice.backend)
        return choice.backend

    # ---- what was chosen -------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend in use (what ``auto`` picked), e.g. ``"onnxruntime:cpu"``."""
        return str(self._resolved)

    @property
    def backend_reason(self) -> str:
        """Why :attr:`backend` was chosen, in words."""
        return self._resolved.reason or f"asked for {self._resolved.requested!r}"

    @property
    def runner(self) -> Any:
        return self._runners[str(self._resolved)]

    @property
    def pipeline(self) -> ModelPipeline:
        return self._pipelines[str(self._resolved)]

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
    def _pipeline_for(self, h: int, w: int, tile: int | None) -> ModelPipeline:
        if not self._auto:
            return self.pipeline
        from . import autotune
        from .pipeline import AUTO_TILE, AUTO_TILE_PIXELS, _env_int

        if tile is None and h * w > _env_int("SRZOO_AUTO_TILE_PIXELS", AUTO_TILE_PIXELS):
            tile = AUTO_TILE
        if tile:
            h, w = min(h, int(tile)), min(w, int(tile))
        cls = autotune.size_class(h, w)
        with self._lock:
            self._resolved = self._choose(cls)
            return self._pipelines[str(self._resolved)]

    def _run(self, image: ImageLike, want: Sequence[int], tile: int | None,
             overlap: int | None) -> dict[int, np.ndarray]:
        from .engines.opencv import cv2_threads

        what = str(image) if not isinstance(image, np.ndarray) else "image"
        arr = load_image(image, scale=max(want))  # a bomb is refused before decoding
        direct = self.pipeline.direct
        p = prepare(arr, what, split_alpha=not direct)
        h, w = p.color.shape[:2]
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        check_size(h, w, channels, max(want), arr.dtype.itemsize, what)
        tile = self.tile if tile is None else tile
        pipe = self._pipeline_for(h, w, tile)
        with cv2_threads(self.threads):
            outs = pipe.run(p.color, want, tile, self.overlap if overlap is None else overlap)
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
                 backend: str = "auto", threads: int | None = None) -> Upscaler:
    """A cached :class:`Upscaler` for (model, scale, backend, threads), loading it on first use.

    Threads asking for the same key at once wait for one load (a lock per key);
    different models load in parallel."""
    scale = _check_scale(scale)
    entry = _entry(model, scale)
    key = (entry, _check_backend(backend).strip().lower(), backends.env_backend(),
           _check_threads(threads))
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
        up = Upscaler(entry, scale, backend=backend, threads=threads)
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
            height: int | None = None, threads: int | None = None) -> np.ndarray:
    """Upscale ``image`` (array or path) ``scale`` times with ``model``.

    The result has the input's channel layout (grey, BGR, BGRA) and dtype
    (uint8, uint16, float32) and exactly ``scale`` times its height and width.
    ``model="default"`` is srzoo's own built-in model (x2, x3, x4; shipped in
    the package, works offline). Other weights are fetched and cached on first
    use; the loaded network is reused
    by later calls. See :class:`Upscaler` for ``backend``, ``threads`` and ``tile``.

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
                                 backend=backend, tile=tile, threads=threads)
    return get_upscaler(model, scale, backend=backend, threads=threads).upscale(image, tile=tile)


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
