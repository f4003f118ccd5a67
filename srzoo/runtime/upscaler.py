""":class:`Upscaler`: one model, loaded once, run at its own scales on any engine.

>>> up = Upscaler("espcn", 4)            # doctest: +SKIP
>>> big = up(img)                         # doctest: +SKIP

The weights are fetched (and verified) into the cache on first use. Loaded
networks are kept in a small process-wide cache keyed by (model entry, scale,
backend) (:func:`get_upscaler`), so repeated ``srzoo.upscale()`` calls do not
read the file again. Upscaler knows nothing of target sizes or batches: those
layers (:mod:`srzoo.jobs`) wrap it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from srzoo.convert.localmodel import entry_for_path, looks_like_path
from srzoo.errors import ArgumentError, PrecisionError, SrzooError, UnknownModel
from srzoo.hub import api
from srzoo.hub.manifest import ModelEntry
from srzoo.runtime import autotune, backends, pipeline
from srzoo.runtime import precision as precisions
from srzoo.runtime import quantize
from srzoo.runtime.engines import engine_for, get_engine, plan
from srzoo.runtime.engines.opencv import cv2_threads
from srzoo.runtime.imageio import load_image
from srzoo.runtime.pipeline import (ImageLike, ModelPipeline, alpha_plane, check_size, finish,
                                    prepare)

#: how many loaded models :func:`upscale` keeps (least recently used dropped first)
CACHE_SIZE = 8

_cache: "OrderedDict[tuple[Any, ...], Upscaler]" = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: "dict[tuple[Any, ...], threading.Lock]" = {}
#: number of models loaded from disk by this process (tests and diagnostics)
load_count = 0


def check_backend(backend: Any) -> str:
    if not isinstance(backend, str):
        raise ArgumentError(f"backend must be a string such as 'auto', 'cpu' or 'opencl', got "
                            f"{type(backend).__name__} {backend!r:.40}")
    return backend


def check_tile(tile: Any, name: str = "tile") -> None:
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer))
                             or tile < 0):
        raise ArgumentError(f"{name} must be None or an integer >= 0, got {tile!r:.40}")


def check_scale(scale: Any) -> int:
    if isinstance(scale, str) and scale.strip().isdigit():  # "4", as srzoo.upscale takes it
        scale = int(scale.strip())
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        if isinstance(scale, float) and scale.is_integer() and scale >= 1:
            return int(scale)
        raise SrzooError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def check_threads(threads: Any) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or int(threads) < 1:
        raise SrzooError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


def _resolve(model: Any, scale: Any) -> tuple[ModelEntry, int]:
    """The entry and scale of (``model``, ``scale``): a model file given by path
    (:mod:`srzoo.convert.localmodel`) at ``scale``, or at its own scale when
    ``scale`` is None; a name or entry at ``scale`` (None: 2)."""
    if looks_like_path(model):
        entry = entry_for_path(model, None if scale is None else check_scale(scale))
        return entry, int(entry.scale or 1)
    scale = check_scale(2 if scale is None else scale)
    return _entry(model, scale), scale


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
    try:
        return api.get_model(model, scale)
    except UnknownModel as e:
        if "has no x" not in str(e):
            raise
        raise UnknownModel(f"{e}; srzoo.upscale(image, {model!r}, {scale}) runs the next larger "
                           "scale and shrinks the result (an Upscaler runs the model's own "
                           "scales only)") from None


class Upscaler:
    """A model loaded once, for upscaling many images.

    ``model`` is a registry name (``"default"`` -- srzoo's own models, shipped
    inside the package, no download --, ``"espcn"``, ``"lapsrn"``, ``"bicubic"``...),
    a :class:`~srzoo.hub.manifest.ModelEntry`, or the path of a model file
    (``.onnx``, ``.pth``, ``.safetensors``, ncnn ``.param``; converted and
    verified once, cached by its sha256: :mod:`srzoo.convert.localmodel`);
    ``scale`` must be one the model has (the error lists them; ``None``: 2 for
    a name, the file's own scale for a path). ``backend``: ``auto`` (default: measured once
    per model and input-size class, see :mod:`srzoo.runtime.autotune`;
    ``SRZOO_BACKEND`` replaces it), a plain target (``cpu``, ``cuda``...: the
    preferred engine offering it) or ``ENGINE:TARGET`` (``onnxruntime:cuda``,
    ``openvino:cpu``, ``opencv:cuda_fp16``); one that cannot run raises
    :class:`srzoo.BackendUnavailable`. An entry whose format the chosen engine
    does not load is converted once to ONNX (:func:`srzoo.convert.derive.derive`).
    ``threads``: threads for the network and the pre/post-processing, the
    same on every engine (None: each engine's default). ``tile``: tile side in
    input pixels (``None``: automatic for large images, ``0``: never);
    ``overlap``: context pixels around each tile (``None``: the manifest's
    ``receptive_field``, at most 96; 24 when the manifest gives none).
    ``precision``: ``fp32``, ``bf16``, ``fp16``, ``int8`` or ``auto`` (``None``:
    ``SRZOO_PRECISION``, default fp32, identical results on every engine); a
    reduced precision is measured against fp32 on a probe first and refused
    (:class:`srzoo.errors.PrecisionError`, with the numbers) when over the
    quality budget; ``auto`` picks the fastest within it (see
    :mod:`srzoo.runtime.precision`).
    ``memory``: bytes (or ``"1.5G"``) one network run may use: with automatic
    tiling, an input that would need more is cut into tiles that fit, from the
    model's memory per pixel on the chosen engine (measured once,
    :func:`srzoo.runtime.autotune.memory_per_pixel`); ``None``: ``SRZOO_MEMORY``,
    else a quarter of the available memory, at most 1.5 GiB and at most what
    keeps the whole process under 2 GiB (its resident memory and the result
    counted), never less than three quarters of the first two rules; ``0``: no limit.
    """

    def __init__(self, model: str | ModelEntry | os.PathLike[str] = "default", scale: int | None = None, *,
                 backend: str = "auto",
                 tile: int | None = None, overlap: int | None = None,
                 quiet: bool | None = None, threads: int | None = None,
                 precision: str | None = None, memory: int | str | None = None) -> None:
        self.entry, scale = _resolve(model, scale)
        self.scale = scale
        self.tile = tile
        self.overlap = overlap
        self.memory = memory
        self._bpp: dict[str, float | None] = {}
        self.threads = check_threads(threads)
        self._quiet = quiet
        engine_for(self.entry)  # before fetching: refuse formats nothing can run, early
        requested = backend if isinstance(backend, str) else "auto"
        if requested.strip().lower() == "auto" and backends.env_backend():
            requested = backends.env_backend() or "auto"
        self.requested = requested
        self._want = precisions.requested(precision)
        engine, target = backends.parse(requested)
        self._auto_engine: str | None = engine if target == "auto" else None
        self._auto = target == "auto" or self._want == "auto"
        self._fixed = None if target == "auto" else backends.resolve(requested, self.entry)
        self._source: Path | None = None
        self._runners: dict[str, Any] = {}
        self._pipelines: dict[str, ModelPipeline] = {}
        self._choices: dict[str, Any] = {}
        self._cands: list[backends.ResolvedBackend] | None = None
        #: reduced precisions measured for this model (backend@precision -> Quality)
        self.quality: dict[str, precisions.Quality] = {}
        #: candidates left out for their quality, with the measured numbers
        self.refused: dict[str, str] = {}
        self._lock = threading.Lock()
        if self._auto:
            resolved = self._choose("medium")
        else:
            assert self._fixed is not None
            resolved = self._candidates()[0] if self._checks() else self._fixed
            self._load(resolved)
            self._drop_except({str(resolved)})
        self._resolved = resolved

    # ---- loading ---------------------------------------------------------------
    def _source_file(self) -> Path | None:
        if self.entry.artifact is None:
            return None
        if self._source is None:
            self._source = api.fetch_entry(self.entry, quiet=self._quiet)
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
        eng = get_engine(resolved.engine)
        how = plan(self.entry, eng)
        if how is None:  # resolve() checked; a plugin may disagree
            raise backends.BackendUnavailable(f"engine {resolved.engine} cannot run {self.entry.name}")
        path, entry = how.loadable(self.entry, self._source_file())
        if resolved.precision == "int8":  # the model quantized (once, cached) from the fp32 ONNX
            fp32 = dataclasses.replace(resolved, precision="")
            src = path
            path = quantize.quantized(entry, src, lambda: eng.load(entry, src, fp32, self.threads),
                                      self.threads)
        runner = eng.load(entry, path, resolved, self.threads)
        self._runners[key] = runner
        self._pipelines[key] = ModelPipeline(self.entry, runner, self.threads)
        self._path = path
        load_count += 1
        return runner

    def _checks(self) -> bool:
        """Whether a precision other than each target's own is asked for, or a
        target runs reduced precision of its own (``opencv:cuda_fp16``)."""
        if self.entry.format == "interpolation":
            if self._want not in ("", "fp32", "auto"):
                raise PrecisionError(f"{self.entry.name} is an interpolation: it runs in "
                                     f"fp32 only, not {self._want}")
            return False
        return bool(self._want) or (self._fixed is not None
                                    and precisions.effective(self._fixed) != "fp32")

    def _candidates(self) -> list["backends.ResolvedBackend"]:
        """The (backend, precision) pairs to choose among, reduced ones measured
        against fp32 first (:func:`srzoo.runtime.precision.candidates`)."""
        if self._cands is None:
            bases = [self._fixed] if self._fixed is not None else \
                backends.candidates(self.entry, self._auto_engine)
            cands, self.refused, self.quality = precisions.candidates(
                self.entry, bases, self._want, self._load, self.threads, self._unload)
            self._drop_except({str(c) for c in cands})  # fp32 references loaded only to compare
            self._cands = cands
        return self._cands

    def _unload(self, resolved: "backends.ResolvedBackend") -> None:
        """Forget a loaded runner (an fp32 reference once its probe output is kept)."""
        self._unload_name(str(resolved))

    def _unload_name(self, name: str) -> None:
        self._runners.pop(name, None)
        self._pipelines.pop(name, None)

    def _in_use(self) -> set[str]:
        """The backends a size class runs on (their runners are kept)."""
        return {str(c.backend) for c in self._choices.values()}

    def _unload_unused(self, resolved: "backends.ResolvedBackend") -> None:
        """Forget a trial's loser unless another size class runs on it."""
        if str(resolved) not in self._in_use():
            self._unload(resolved)

    def _drop_except(self, keep: set[str]) -> None:
        """Forget every runner but ``keep`` and those a size class runs on."""
        for name in list(self._runners):
            if name not in keep and name not in self._in_use():
                self._unload_name(name)

    def _choose(self, cls: str, size: tuple[int, int] | None = None,
                memory: int | str | None = None, tileable: bool = False) -> "backends.ResolvedBackend":
        """The backend ``auto`` runs inputs of size class ``cls`` on (measured once,
        at ``size``: the network input that runs, counting its memory; ``tileable``:
        automatic tiling will fit the run to the budget, so engines are ranked by
        their tiled runs)."""
        budget = pipeline.memory_budget(self.memory if memory is None else memory)
        counted = size is not None and autotune.counts_memory(size, budget) \
            and not self.pipeline_direct()
        tileable = bool(tileable and counted and budget)
        slot = cls + ("/memory" if counted else "") + ("/tiled" if tileable else "")
        choice = self._choices.get(slot)
        if choice is None:
            if counted and self._choices.pop(cls, None) is not None:
                # the guess made without memory (the constructor's) gives way: its
                # runner is not kept beside the trials and the real run
                self._drop_except(set())
                autotune.release_memory()
            channels = 1 if self.entry.io.color == "y" else 3
            cands = self._candidates() if self._checks() else None
            choice, _ = autotune.choose(self.entry, cls, self.threads, self._load, channels,
                                        self._auto_engine, cands, self.refused, size,
                                        self._bytes_per_pixel if counted else None, budget,
                                        self._unload_unused, tileable)
            self._drop_except({str(choice.backend)})  # the losers of the trial
            autotune.release_memory()  # their pools, before the real run allocates its own
            self._choices[slot] = choice
            self._load(choice.backend)
        return choice.backend

    def pipeline_direct(self) -> bool:
        """Whether the model runs whole images itself (no tiles, no memory budget)."""
        return any(p.direct for p in self._pipelines.values())

    # ---- what was chosen -------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend in use (what ``auto`` picked), e.g. ``"onnxruntime:cpu"``."""
        return self._resolved.name

    @property
    def precision(self) -> str:
        """The precision the network runs in (``fp32``, ``bf16``...)."""
        return precisions.effective(self._resolved)

    @property
    def backend_reason(self) -> str:
        """Why :attr:`backend` (and :attr:`precision`) was chosen, in words."""
        why = self._resolved.reason or f"asked for {self._resolved.requested!r}"
        q = self.quality.get(str(self._resolved))
        if q is not None:
            why += f"; {q.precision} within the quality budget: {q.summary()}"
        if self.refused:
            why += "; refused: " + "; ".join(f"{k}: {v}" for k, v in self.refused.items())
        return why

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
        extra = f", precision={self.precision!r}" if self.precision != "fp32" else ""
        return f"Upscaler({self.entry.name!r}, {self.scale}, backend={self.backend!r}{extra})"

    # ---- running ---------------------------------------------------------------
    def _pipeline_for(self, h: int, w: int, tile: int | None, overlap: int | None = None,
                      memory: int | str | None = None, tileable: bool | None = None) -> ModelPipeline:
        """The pipeline of the backend ``auto`` chooses for what really runs: the
        network input is the whole h×w image, or a tile with its overlap on both
        sides (the class, and the size the trial is extrapolated to)."""
        if not self._auto:
            return self.pipeline
        if tileable is None:  # automatic tiling: tiles are sized to the memory budget
            tileable = tile is None
        if tile is None and h * w > pipeline._env_int("SRZOO_AUTO_TILE_PIXELS", pipeline.AUTO_TILE_PIXELS):
            tile = pipeline.AUTO_TILE
        if tile and (h > tile or w > tile):
            ov = pipeline.default_overlap(self.entry) if overlap is None else int(overlap)
            h, w = min(h, int(tile) + 2 * ov), min(w, int(tile) + 2 * ov)
        cls = autotune.size_class(h, w)
        with self._lock:
            self._resolved = self._choose(cls, (h, w), memory, tileable)
            return self._pipelines[str(self._resolved)]

    def _bytes_per_pixel(self, backend: "backends.ResolvedBackend | None" = None) -> float | None:
        """Memory per network-input pixel of ``backend`` (default: the one in use;
        measured once)."""
        key = str(backend or self._resolved)
        if key not in self._bpp:
            resolved = backend or self._resolved

            def fresh() -> Any:
                eng = get_engine(resolved.engine)
                path, entry = plan(self.entry, eng).loadable(self.entry, self._source_file())
                return eng.load(entry, path, resolved, self.threads)

            channels = 1 if self.entry.io.color == "y" else 3
            self._bpp[key] = autotune.memory_per_pixel(self.entry, resolved, self.threads, fresh,
                                                       channels)
        return self._bpp[key]

    def _memory_tile(self, h: int, w: int, memory: int | str | None,
                     overlap: int | None, reserve: int = 0) -> int | None:
        """The tile side that keeps one network run under the memory budget, or
        None when the image fits (or no budget applies). ``reserve``: bytes of
        the result (the default budget leaves room for them)."""
        budget = pipeline.memory_budget(self.memory if memory is None else memory, reserve)
        pre = self.scale if self.entry.io.pre_upsample else 1
        if not budget or self.pipeline.direct or h * w * pre * pre * pipeline.MEMORY_GUESS <= budget:
            return None
        bpp = self._bytes_per_pixel()
        if bpp is None:
            return None
        ov = pipeline.default_overlap(self.entry) if overlap is None else int(overlap)
        return pipeline.budget_tile(h, w, bpp, budget, ov, pre)

    def _run(self, image: ImageLike, want: Sequence[int], tile: int | None,
             overlap: int | None, memory: int | str | None = None,
             progress: "Callable[[int, int], None] | None" = None) -> dict[int, np.ndarray]:
        what = str(image) if not isinstance(image, np.ndarray) else "image"
        arr = load_image(image, scale=max(want))  # a bomb is refused before decoding
        direct = self.pipeline.direct
        p = prepare(arr, what, split_alpha=not direct)
        h, w = p.color.shape[:2]
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        check_size(h, w, channels, max(want), arr.dtype.itemsize, what)
        tile = self.tile if tile is None else tile
        ov = self.overlap if overlap is None else overlap
        pipe = self._pipeline_for(h, w, tile, ov, memory)
        if tile is None:  # automatic: tiles that keep the run under the memory budget
            auto = pipeline.AUTO_TILE if h * w > pipeline._env_int(
                "SRZOO_AUTO_TILE_PIXELS", pipeline.AUTO_TILE_PIXELS) else None
            chosen = None
            # the result and one full-size intermediate (premultiplied colour, alpha)
            reserve = 2 * h * w * max(want) ** 2 * channels * arr.dtype.itemsize
            for _ in range(2):  # the tiles' size class may choose another backend: size again
                budget_tile = self._memory_tile(h, w, memory, ov, reserve)
                if budget_tile is None or (auto is not None and budget_tile >= auto) or \
                        budget_tile == chosen:
                    break
                tile = chosen = budget_tile
                pipe = self._pipeline_for(h, w, tile, ov, memory, tileable=True)
        with cv2_threads(self.threads):
            plane = alpha_plane(p)  # partly transparent: alpha through the network too
            passes = 1 if plane is None else 2

            def step(k: int) -> "Callable[[int, int], None] | None":
                if progress is None:
                    return None
                return lambda done, total: progress(k * total + done, passes * total)

            outs = pipe.run(p.color, want, tile, ov, step(0))
            alphas = pipe.run(plane, want, tile, ov, step(1)) if plane is not None else {}
            return {s: finish(p, outs[s], s, alphas.get(s)) for s in want}

    def upscale(self, image: ImageLike, *, tile: int | None = None,
                overlap: int | None = None, memory: int | str | None = None,
                progress: "Callable[[int, int], None] | None" = None) -> np.ndarray:
        """The image upscaled ``scale`` times, in the input's layout and dtype
        (``memory``: see the class; None: the Upscaler's). ``progress(done,
        total)`` is called after each tile (total: tiles of every pass)."""
        return self._run(image, (self.scale,), tile, overlap, memory, progress)[self.scale]

    __call__ = upscale

    def upscale_all(self, image: ImageLike, *, tile: int | None = None,
                    overlap: int | None = None,
                    memory: int | str | None = None) -> dict[int, np.ndarray]:
        """Every output of one pass, keyed by scale: for LapSRN x8 the x2, x4
        and x8 levels of its pyramid; for other models just ``{scale: image}``."""
        return self._run(image, self.scales, tile, overlap, memory)


def get_upscaler(model: str | ModelEntry | os.PathLike[str] = "default", scale: int | None = 2, *,
                 backend: str = "auto", threads: int | None = None,
                 precision: str | None = None) -> Upscaler:
    """A cached :class:`Upscaler` for (model, scale, backend, threads, precision), loading it on first use.

    Threads asking for the same key at once wait for one load (a lock per key);
    different models load in parallel."""
    entry, scale = _resolve(model, scale)
    key = (entry, check_backend(backend).strip().lower(), backends.env_backend(),
           check_threads(threads), precisions.requested(precision))
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
        up = Upscaler(entry, scale, backend=backend, threads=threads, precision=precision)
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


__all__ = ["CACHE_SIZE", "Upscaler", "check_backend", "check_scale", "check_threads", "check_tile",
           "clear_cache", "get_upscaler"]
