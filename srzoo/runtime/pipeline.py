"""Everything between an image and a network, driven by the manifest's ``io`` table.

* loading (a path becomes an array; :class:`srzoo.ImageError` names the file),
* layout and dtype normalisation: H×W grey, H×W×1, H×W×3 BGR and H×W×4 BGRA
  in uint8, uint16 or float; the result keeps the layout and dtype. Float
  input outside [0, 1] (HDR) is scaled from its [min, max] into [0, 1] and
  back; NaN/inf are refused; float results are clipped to
  [min(0, input min), max(1, input max)] (:func:`prepare`, :func:`finish`),
* pre-/post-processing from :class:`srzoo.hub.manifest.IOSpec`: ``color``
  (``y`` of OpenCV's YCrCb with the chroma resized bilinearly, ``bgr`` or
  ``rgb``), ``range``, ``mean``, ``outputs``/``output_scales`` (pyramids),
  ``pre_upsample``,
* alpha: a constant alpha channel (opaque) is re-attached at the output
  size, its level unchanged (float alpha clipped to [0, 1]); an image with
  transparent edges has its colour premultiplied by alpha and its alpha
  upscaled by the same network (as a grey image), and the colour is
  divided by that alpha after, so the colour hidden under transparent pixels
  (often black) does not bleed into the edges as a dark or light fringe (one
  more network pass, as Real-ESRGAN does for alpha),
* tiling with overlap, and size limits.

For the ``cv2.dnn_superres`` families the steps are those of
``DnnSuperResImpl::upsample`` (YCrCb, Y through the network, bilinear chroma,
one rounding to the output dtype, back to BGR); only the chroma is resized in
the image's dtype instead of float32, which changes the rounding of values
that lie exactly half-way between two levels (:func:`_chroma_source`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, Union

import cv2
import numpy as np

from srzoo import config
from srzoo.errors import ImageError, SrzooError
from srzoo.resample import imresize
from srzoo.runtime.imageio import load_image  # noqa: F401  (moved to srzoo.runtime.imageio; re-exported here)
from srzoo.runtime.imageio import megapixels

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry
    from srzoo.runtime.engines.base import Runner

ImageLike = Union[np.ndarray, str, "os.PathLike[str]"]

#: largest output accepted, in pixels (override with SRZOO_MAX_PIXELS)
MAX_OUTPUT_PIXELS = 1 << 30
#: inputs above this many pixels are tiled automatically (SRZOO_AUTO_TILE_PIXELS)
AUTO_TILE_PIXELS = 1 << 20
#: tile side (input pixels) used by automatic tiling
AUTO_TILE = 512
#: context (input pixels) added on each side of a tile, then cropped away, for
#: models whose manifest gives no ``receptive_field``
DEFAULT_OVERLAP = 24
#: the most overlap any model gets. The theoretical receptive field of deep
#: networks (ESRGAN's RRDB: 350 px) would multiply the work, but their output
#: depends on far pixels by less than a grey level: measured on
#: realesrgan-x4plus-ncnn (Set14 baboon, a 32x32 core with growing context
#: against 128 px of context; onnxruntime): 40 px max 7 levels, 56 px max 3,
#: 64 px max 1 (mean 0.096), 80 px max 1 (mean 0.012), 96 px max 1 (mean 0.0006).
#: On the whole 500x480 photo in 16 tiles, 80 px still left 2 levels in places
#: (bench/photo_memory.py): 96 keeps tiled = untiled within one level for the
#: RRDB family (tests/runtime/test_tiling_rrdb.py)
MAX_OVERLAP = 96
#: bicubic pre-upsampling and the bilinear chroma resize need this much context
MIN_OVERLAP = 2


def default_overlap(entry: "ModelEntry") -> int:
    """Tile overlap for ``entry``: its manifest ``receptive_field`` (tiles then
    give what the whole image gives), capped at :data:`MAX_OVERLAP`;
    :data:`DEFAULT_OVERLAP` when the manifest gives none."""
    rf = entry.receptive_field
    if rf is None:
        return DEFAULT_OVERLAP
    return max(MIN_OVERLAP, min(int(rf), MAX_OVERLAP))

_DTYPES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}
_CV_DEPTH = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U,
             np.dtype(np.float32): cv2.CV_32F}
_INTERP = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}


def _env_int(name: str, default: int) -> int:
    """A validated integer setting from :mod:`srzoo.config` (``default`` is
    kept for callers; the declared default applies when the variable is unset)."""

    return int(config.get(name))


@dataclass
class Prepared:
    """An input split into what the network sees and what is put back after.

    ``color``: H×W (grey) or H×W×3 BGR in a working dtype (uint8, uint16 or
    float32); ``alpha``: H×W or None; ``dtype``/``keepdim``: how to return it.
    """

    color: np.ndarray
    alpha: np.ndarray | None
    dtype: np.dtype
    keepdim: bool
    #: float input outside [0, 1]: the (low, high) it was scaled from into [0, 1]
    span: tuple[float, float] | None = None
    #: float input: results are clipped to [min(0, low), max(1, high)] of the input
    clip: tuple[float, float] | None = None
    #: ``color`` is float32 in [0, 1] premultiplied by alpha (partly transparent input)
    premultiplied: bool = False


def prepare(image: np.ndarray, what: str = "image", split_alpha: bool = True) -> Prepared:
    """Check layout and dtype; split alpha off (unless ``split_alpha`` is False).
    Raises :class:`ImageError`."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: expected a numpy array, got {type(image).__name__}")
    dtype = image.dtype
    if dtype == np.float64:
        work = image.astype(np.float32)
    elif dtype in _DTYPES:
        work = image
    else:
        raise ImageError(f"{what}: unsupported dtype {dtype} (use uint8, uint16, or float32 in [0, 1])")
    keepdim = False
    if work.ndim == 3 and work.shape[2] == 1:
        work, keepdim = work[:, :, 0], True
    if work.ndim not in (2, 3) or (work.ndim == 3 and work.shape[2] not in (3, 4)):
        raise ImageError(f"{what}: unsupported shape {image.shape} (use H×W grey, H×W×3 BGR or "
                         "H×W×4 BGRA)")
    if work.shape[0] < 1 or work.shape[1] < 1:
        raise ImageError(f"{what}: empty image of shape {image.shape}")
    alpha = None
    if split_alpha and work.ndim == 3 and work.shape[2] == 4:
        alpha = work[:, :, 3]
        work = cv2.cvtColor(work, cv2.COLOR_BGRA2BGR)
    span = clip = None
    if work.dtype == np.float32:
        lo, hi = float(np.min(work)), float(np.max(work))  # nan/inf propagate
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageError(f"{what}: holds NaN or infinite values; replace them (e.g. "
                             "numpy.nan_to_num) before upscaling")
        if alpha is not None and not np.isfinite(alpha).all():
            raise ImageError(f"{what}: its alpha channel holds NaN or infinite values")
        clip = (min(0.0, lo), max(1.0, hi))
        if lo < 0.0 or hi > 1.0:  # HDR: the networks expect [0, 1]; scale into it and back
            span = (lo, hi)
            work = (work - np.float32(lo)) * np.float32(1.0 / (hi - lo) if hi > lo else 0.0)
    premultiplied = False
    if alpha is not None and float(alpha.min()) != float(alpha.max()):
        # alpha with edges: the network sees colour x alpha (float32, [0, 1]); a
        # constant alpha (opaque, or one level everywhere) changes nothing and is not applied
        a = _unit_alpha(alpha)
        work = _to_depth(work, 1.0 / _DTYPES[np.dtype(work.dtype)], np.dtype(np.float32))
        work = work * a[:, :, None]
        premultiplied = True
    return Prepared(work, alpha, dtype, keepdim, span, clip, premultiplied)


def _unit_alpha(alpha: np.ndarray) -> np.ndarray:
    """Alpha as float32 in [0, 1]."""
    a = _to_depth(alpha, 1.0 / _DTYPES[np.dtype(alpha.dtype)], np.dtype(np.float32))
    return np.clip(a, 0.0, 1.0, out=a if a is not alpha else None)


def _human(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def free_memory() -> int | None:
    """Free physical memory (MemFree: one cheap syscall), or None where unknown.
    Never more than :func:`available_memory`."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not on every OS
        return None


def available_memory() -> int | None:
    """Bytes of memory that can still be allocated, or None where unknown.

    Linux's ``MemAvailable`` counts reclaimable page cache; MemFree
    (:func:`free_memory`) does not, and on a machine that has been up a while it
    can be a small fraction of what is really available, which would refuse
    images that fit. MemFree is only the fallback. Reading /proc/meminfo costs
    about 40 µs, so :func:`check_size` asks only when MemFree is not enough.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return free_memory()


def check_size(h: int, w: int, channels: int, scale: int, itemsize: int, what: str = "image") -> None:
    """Refuse outputs too large to allocate, with the numbers and the way out."""
    limit = _env_int("SRZOO_MAX_PIXELS", MAX_OUTPUT_PIXELS)
    out_px = h * w * scale * scale
    nbytes = out_px * max(channels, 1) * itemsize
    if out_px > limit:
        raise ImageError(f"{what}: a {w}x{h} input at x{scale} gives {w * scale}x{h * scale} "
                         f"({megapixels(out_px)}, {nbytes / 2**30:.1f} GiB), above the limit of "
                         f"{megapixels(limit)}; downscale or crop it, or raise SRZOO_MAX_PIXELS")
    free = free_memory()
    if free is not None and nbytes <= free:  # the common case, without reading /proc
        return
    avail = available_memory()
    if avail is not None and avail > 0 and nbytes > avail:
        raise ImageError(f"{what}: the x{scale} result of a {w}x{h} input needs {_human(nbytes)} "
                         f"but only {_human(avail)} of memory is available; use a smaller scale "
                         "or crop the image")


def alpha_plane(p: Prepared) -> np.ndarray | None:
    """The alpha of a premultiplied input as an H×W float32 grey image in [0, 1],
    to be upscaled by the network like the colour (None: nothing to upscale)."""
    return _unit_alpha(p.alpha) if p.premultiplied and p.alpha is not None else None


#: most memory a network run gets by default (``SRZOO_MEMORY`` unset). With
#: DEFAULT_PEAK below, realesrgan-x4plus on a 500x480 photo runs 4-16 tiles,
#: not 25 (about 2-5x the work of one untiled run instead of 9x)
DEFAULT_MEMORY = 3 << 29
#: the peak resident memory of the whole process the default budget aims at: the
#: run gets at most this minus what the process holds already (interpreter,
#: libraries, loaded models) and the result's buffers
DEFAULT_PEAK = 2 << 30
#: least memory the default budget gives a run (tiles get slow below it)
MIN_MEMORY = 64 << 20
#: bytes per input pixel no model is expected to exceed: smaller inputs are
#: never measured or tiled for memory (realesrgan-x4plus on opencv:cpu: ~25 KB)
MEMORY_GUESS = 64 * 1024
#: smallest tile side (input pixels) a memory budget shrinks tiles to
MIN_TILE = 32


def resident_memory() -> int | None:
    """This process's resident memory (VmRSS) in bytes; None where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_budget(memory: int | str | None = None, reserve: int = 0) -> int | None:
    """The bytes a network run may take: ``memory`` (bytes, or a size such as
    ``"1.5G"``; 0: no limit), else ``SRZOO_MEMORY``, else the default: a
    quarter of the available memory, at most :data:`DEFAULT_MEMORY`, and at
    most what keeps the whole process under :data:`DEFAULT_PEAK` (minus its
    resident memory now and ``reserve``: the bytes of the result it will hold),
    but never below three quarters of the first two rules, nor :data:`MIN_MEMORY`. None:
    no limit."""
    if memory is None:
        value = config.get("SRZOO_MEMORY")
    elif isinstance(memory, str):
        try:
            value = config.setting("SRZOO_MEMORY").parse(memory)
        except SrzooError:
            raise SrzooError(f"memory={memory!r} is not valid: expected "
                             f"{config.setting('SRZOO_MEMORY').allowed()}") from None
    elif isinstance(memory, bool) or not isinstance(memory, (int, np.integer)) or memory < 0:
        raise SrzooError(f"memory must be a number of bytes >= 0 or a size such as '1.5G', "
                         f"got {memory!r:.40}")
    else:
        value = int(memory)
    if value is None:
        avail = available_memory()
        budget = DEFAULT_MEMORY if not avail else min(DEFAULT_MEMORY, avail // 4)
        rss = resident_memory()
        if rss is not None:
            # at most a quarter of it given up: a process that already holds most of
            # DEFAULT_PEAK (a notebook with PyTorch, a server with several models)
            # cannot stay under it anyway, and under ~1 GB a heavy model's tiles are
            # mostly overlap (realesrgan-x4plus on onnxruntime, 500x480: 90 windows of
            # 224x224 around 32 px cores at 64 MiB or 768 MiB, 18.7x the pixels of one
            # untiled run; 16 windows, 4.7x, at 1152 MiB)
            budget = max(budget * 3 // 4, min(budget, DEFAULT_PEAK - rss - max(0, int(reserve))))
        return max(MIN_MEMORY, budget)
    return int(value) or None


def budget_tile(h: int, w: int, bytes_per_pixel: float, budget: int, overlap: int,
                pre: int = 1) -> int | None:
    """The tile side (input pixels) that keeps one network run under ``budget``
    bytes when each network-input pixel takes ``bytes_per_pixel`` (``pre``: the
    model's pre-upsampling factor; the overlap on both sides counts); None when
    the whole image fits. The side is the largest that fits; :func:`tiles`
    then spreads the fewest windows of that size evenly (and shrinks them to
    what still covers the image)."""
    px = budget / max(bytes_per_pixel, 1.0)
    if h * w * pre * pre <= px:
        return None
    # the network input of a tile is at most (side + 2 overlap)^2; tiles() clamps
    # windows inside the image and evens them out (never larger than this)
    return max(MIN_TILE, int(px ** 0.5) // pre - 2 * overlap)


def finish(p: Prepared, color: np.ndarray, scale: int,
           alpha: np.ndarray | None = None) -> np.ndarray:
    """Divide premultiplied colour by the upscaled alpha (``alpha``: the network's
    result for :func:`alpha_plane`; bicubic when not given, a constant alpha's
    level when it is constant), restore the input's
    value range (float inputs outside [0, 1]), re-attach alpha, restore the
    channel layout and dtype."""
    a = ua = None
    if p.alpha is not None:
        h, w = color.shape[:2]
        if alpha is not None:
            ua = np.clip(alpha.astype(np.float32, copy=False), 0.0, 1.0)
            a = _to_depth(ua, _DTYPES[np.dtype(p.alpha.dtype)], np.dtype(p.alpha.dtype))
        else:
            if not p.premultiplied:
                # constant (prepare found one level everywhere): that level; bicubic weights
                # sum to 1 only up to float error (a float 0.7 came back 0.70000005 in places)
                a = np.full((h, w), p.alpha.flat[0], p.alpha.dtype)
            else:
                a = cv2.resize(p.alpha, (w, h), interpolation=cv2.INTER_CUBIC)
            if a.dtype == np.float32:
                np.clip(a, 0.0, 1.0, out=a)
    if p.premultiplied and a is not None:
        ua = _unit_alpha(a) if ua is None else ua
        color = color / np.maximum(ua, np.float32(1e-6))[:, :, None]
        np.clip(color, 0.0, 1.0, out=color)
        color[ua <= 0.0] = 0.0  # fully transparent: no colour to recover
        if p.dtype != np.float32 and p.dtype != np.float64:
            color = _to_depth(color, _DTYPES[np.dtype(p.dtype)], np.dtype(p.dtype))
        elif p.span is None:
            color = color.astype(np.float32)
    if p.span is not None:
        lo, hi = p.span
        color = color * np.float32(hi - lo) + np.float32(lo)
    if p.clip is not None and color.dtype == np.float32:
        color = np.clip(color, np.float32(p.clip[0]), np.float32(p.clip[1]))
    if a is not None:
        color = np.dstack((color, a)) if color.ndim == 3 else np.dstack((color, color, color, a))
    if p.keepdim:
        color = color[:, :, None]
    if color.dtype != p.dtype:
        color = color.astype(p.dtype)
    return color


# --------------------------------------------------------------------------- arithmetic
def _to_depth(x: np.ndarray, alpha: float, dtype: np.dtype, beta: float = 0.0) -> np.ndarray:
    """``x * alpha + beta`` converted to ``dtype`` with rounding and saturation
    (``Mat::convertTo`` semantics; float results are not clipped here); one pass."""
    if alpha == 1.0 and beta == 0.0 and x.dtype == dtype:
        return x
    if dtype == np.float32:
        return cv2.addWeighted(x, alpha, x, 0.0, beta, dtype=cv2.CV_32F)
    return cv2.addWeighted(x, alpha, x, 0.0, beta, dtype=_CV_DEPTH[dtype])


#: most output pixels one band of post-processing covers (bounds its temporaries)
BAND_PIXELS = 4_000_000
_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="srzoo-post")
        return pool


def _forget_pools() -> None:
    """In a forked child: the parent's pools have no threads here (a task put on one would
    wait forever), so the child starts its own."""
    global _pool_lock
    _pool_lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pools)


def _in_strips(h: int, fn: Callable[[int, int], None], workers: int, row_pixels: int) -> None:
    """Call ``fn(r0, r1)`` for bands of input rows covering ``0..h``, on
    ``workers`` threads (OpenCV releases the GIL).

    One band per worker, fewer rows where a band would cover more than
    :data:`BAND_PIXELS` output pixels (``row_pixels`` per input row). Measured
    (ESPCN x4, 3072x2048 output, 2 cores): two bands 16 ms, 16-row bands 30 ms,
    the whole image with OpenCV's own threads 30 ms: each call has a cost and
    OpenCV's nested parallel loops contend, while keeping bands in cache gains
    nothing here."""
    rows = max(1, -(-h // max(workers, 1)))
    rows = max(1, min(rows, BAND_PIXELS // max(row_pixels, 1)))
    bands = [(r0, min(h, r0 + rows)) for r0 in range(0, h, rows)]
    if workers <= 1 or len(bands) == 1:
        for r0, r1 in bands:
            fn(r0, r1)
        return
    for f in [_pool(workers).submit(fn, r0, r1) for r0, r1 in bands]:
        f.result()


def _chroma_source(plane: np.ndarray, s: int) -> tuple[np.ndarray, int]:
    """How a chroma plane is upscaled ``s`` times: the plane to resize and the
    interpolation (then rounded to the image's dtype).

    ``dnn_superres.upsample()`` resizes chroma as float32 in [0, 1] and rounds.
    srzoo keeps chroma in the image's dtype (it never passes through the
    network): for 8/16-bit planes and a power-of-two scale ``INTER_LINEAR_EXACT``
    is the correctly rounded bilinear value (its 8-bit weights are exact for
    these scales; ties round up), with no float plane and two fewer passes
    over the output. Other scales would get inexact weights (off by up to 0.8
    of a level at x3), so their planes are resized as float32 and rounded.
    Against upsample() the result differs only where the exact value lies
    half-way between two levels and float error picks the side (about 1 % of
    output values at x2, 0.4 % at x4, by 1-2 levels after the colour
    conversion; tested)."""
    if plane.dtype == np.float32:
        return plane, cv2.INTER_LINEAR
    if s & (s - 1) == 0:
        return plane, cv2.INTER_LINEAR_EXACT
    return plane.astype(np.float32), cv2.INTER_LINEAR


def _resize_band(src: np.ndarray, r0: int, r1: int, s: int, out_w: int,
                 interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Rows ``r0*s .. r1*s`` of ``cv2.resize(src, (out_w, h*s))`` (bilinear), from
    rows r0-1..r1 of ``src`` only: with an integer scale the sample positions
    of a band are those of the whole image, so the values are identical."""
    if s == 1 and src.shape[1] == out_w:  # already full size (pre-upsampled models)
        return src[r0:r1]
    h = src.shape[0]
    a, b = max(0, r0 - 1), min(h, r1 + 1)
    big = cv2.resize(src[a:b], (out_w, (b - a) * s), interpolation=interp)
    return big[(r0 - a) * s:(r1 - a) * s]


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class ModelPipeline:
    """Pre-process → run → post-process for one loaded network, from ``entry.io``.

    The same for every engine: the runner only sees the tensor (in its
    ``input_layout``, fed to its ``input_name``). Work outside the network is
    kept small: colour conversion and scaling of the (small) input in its own
    dtype; on the way back the chroma planes are upscaled in the image's dtype
    (they never pass through the network), and the conversion of Y to the
    output dtype, the merge and the colour conversion run band by band, one
    band per thread, into the preallocated result, so no full-size float
    intermediate is ever made.
    """

    def __init__(self, entry: "ModelEntry", runner: "Runner", threads: int | None = None) -> None:
        self.entry = entry
        self.runner = runner
        io = entry.io
        self.io = io
        self.direct = hasattr(runner, "upscale_image")
        self.workers = int(threads) if threads else _default_workers()
        self.scale = int(entry.scale or 1)
        n_out = max(len(getattr(runner, "output_names", ()) or ()), 1)
        if io.output_scales:
            if len(io.output_scales) != n_out:
                raise SrzooError(f"{entry.manifest}: {entry.name} x{entry.scale}: io.output_scales "
                                 f"has {len(io.output_scales)} values for {n_out} outputs")
            self.scales: tuple[int, ...] = tuple(int(s) for s in io.output_scales)
        else:
            self.scales = (self.scale,) if n_out == 1 else tuple([self.scale] * n_out)
        if self.scale not in self.scales:
            raise SrzooError(f"{entry.manifest}: {entry.name} x{entry.scale}: no output gives "
                             f"x{self.scale} (io.output_scales = {list(self.scales)})")
        self.mean = np.asarray(io.mean if len(io.mean) == 3 else io.mean * 3, np.float32)
        self.has_mean = bool(np.any(self.mean))
        self.layout = getattr(runner, "input_layout", "nchw")

    # ---- tensors ---------------------------------------------------------------
    def blob(self, plane_or_img: np.ndarray) -> np.ndarray:
        """The network input for an H×W plane or H×W×C float32 image, in the
        runner's layout (a view, not a copy, for one channel)."""
        if plane_or_img.ndim == 2:
            p = np.ascontiguousarray(plane_or_img)
            return p[None, None] if self.layout == "nchw" else p[None, :, :, None]
        if self.layout == "nhwc":
            return np.ascontiguousarray(plane_or_img[None])
        return np.ascontiguousarray(plane_or_img.transpose(2, 0, 1)[None])

    def _chw(self, out: np.ndarray, s: int, hw: tuple[int, int]) -> np.ndarray:
        """A network output as C×H×W (a view), NCHW or NHWC found from its shape."""
        want = (hw[0] * s, hw[1] * s)
        if out.ndim == 4:
            out = out[0]
        if out.ndim == 2:
            out = out[None]
        if out.ndim != 3:
            raise SrzooError(f"{self.entry.name} x{self.entry.scale}: unexpected output shape {out.shape}")
        if tuple(out.shape[1:]) == want:
            return out
        if tuple(out.shape[:2]) == want:
            return out.transpose(2, 0, 1)
        raise SrzooError(f"{self.entry.name} x{self.entry.scale}: network output {out.shape} for a "
                         f"{hw[1]}x{hw[0]} input is not x{s}")

    def process(self, color: np.ndarray, want: Sequence[int]) -> dict[int, np.ndarray]:
        """Upscale one grey or BGR image (working dtype) to each scale in ``want``."""
        if self.direct:
            return {s: self.runner.upscale_image(color) for s in want}  # type: ignore[union-attr]
        io = self.io
        dtype = color.dtype
        k = io.range / _DTYPES[dtype]
        h, w = color.shape[:2]
        if io.pre_upsample == "bicubic-matlab":  # what MATLAB-trained SRCNN/VDSR weights expect

            up = imresize(color, output_shape=(h * self.scale, w * self.scale))
            if dtype != np.uint8:
                up = np.clip(np.round(up), 0, _DTYPES[dtype]) if dtype == np.uint16 else up
            color = up.astype(dtype)
        elif io.pre_upsample:
            color = cv2.resize(color, (w * self.scale, h * self.scale),
                               interpolation=_INTERP[io.pre_upsample])
        hw0 = (h, w) if not io.pre_upsample else (color.shape[0] // self.scale,
                                                   color.shape[1] // self.scale)
        if io.color == "y":
            return self._run_y(color, k, want, hw0)
        return self._run_rgb(color, k, want, hw0)

    def _run_y(self, color: np.ndarray, k: float, want: Sequence[int],
               hw: tuple[int, int]) -> dict[int, np.ndarray]:
        dtype = color.dtype
        if color.ndim == 2:
            y = _to_depth(color, k, np.dtype(np.float32))
            crcb = None
        else:
            ycc = cv2.cvtColor(color, cv2.COLOR_BGR2YCrCb)
            y = _to_depth(cv2.extractChannel(ycc, 0), k, np.dtype(np.float32))
            # chroma never goes through the network: it stays in the image's dtype
            # and is upscaled there (see _chroma_source)
            crcb = [cv2.extractChannel(ycc, c) for c in (1, 2)]
        outs = self.runner.run(self.blob(y))  # type: ignore[union-attr]
        inv = 1.0 / k
        result = {}
        for s, out in zip(self.scales, outs):
            if s not in want:
                continue
            Y = self._chw(out, s, hw)[0]
            if crcb is None:
                img = _to_depth(Y, inv, dtype)
                if dtype == np.float32:
                    img = np.clip(img, 0.0, 1.0, out=img if img is not Y else None)
                result[s] = img
                continue
            ch, cw = crcb[0].shape
            if Y.shape[:2] == (ch * s, cw * s):
                s_eff, src = s, [_chroma_source(c, s) for c in crcb]
            elif Y.shape[:2] == (ch, cw):  # pre_upsample models: chroma already upscaled
                s_eff, src = 1, [(c, cv2.INTER_LINEAR) for c in crcb]
            else:  # not an integer ratio: whole planes, float32, rounded
                s_eff = 1
                src = [(_to_depth(cv2.resize(c.astype(np.float32), (Y.shape[1], Y.shape[0]),
                                             interpolation=cv2.INTER_LINEAR), 1.0, dtype),
                        cv2.INTER_LINEAR) for c in crcb]
            img = np.empty(Y.shape + (3,), dtype)
            out_w = Y.shape[1]

            def band(r0: int, r1: int, Y: np.ndarray = Y, img: np.ndarray = img,
                     src: list = src, s_eff: int = s_eff, out_w: int = out_w) -> None:
                rows = slice(r0 * s_eff, r1 * s_eff)
                planes = [_to_depth(Y[rows], inv, dtype)] + \
                    [_to_depth(_resize_band(c, r0, r1, s_eff, out_w, interp), 1.0, dtype)
                     for c, interp in src]
                cv2.cvtColor(cv2.merge(planes), cv2.COLOR_YCrCb2BGR, dst=img[rows])
                if dtype == np.float32:
                    np.clip(img[rows], 0.0, 1.0, out=img[rows])

            _in_strips(src[0][0].shape[0], band, self.workers, out_w * s_eff)
            result[s] = img
        return result

    def _run_rgb(self, color: np.ndarray, k: float, want: Sequence[int],
                 hw: tuple[int, int]) -> dict[int, np.ndarray]:
        dtype = color.dtype
        grey = color.ndim == 2
        bgr = cv2.cvtColor(color, cv2.COLOR_GRAY2BGR) if grey else color
        if dtype != np.uint8 and dtype != np.float32:
            bgr = bgr.astype(np.float32)
        mean = tuple(float(m) / k for m in self.mean) + (0.0,)
        if self.layout == "nhwc":
            x = _to_depth(bgr, k, np.dtype(np.float32))
            if self.io.color == "rgb":
                x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)
            if self.has_mean:  # mean is in the network's channel order
                x = cv2.subtract(x, tuple(float(m) for m in self.mean) + (0.0,))
            blob = np.ascontiguousarray(x[None])
        else:
            blob = cv2.dnn.blobFromImage(bgr, scalefactor=k, mean=mean, swapRB=self.io.color == "rgb",
                                         crop=False, ddepth=cv2.CV_32F)
        outs = self.runner.run(blob)  # type: ignore[union-attr]
        inv = 1.0 / k
        order = (2, 1, 0) if self.io.color == "rgb" else (0, 1, 2)  # network channel -> BGR slot
        result = {}
        for s, out in zip(self.scales, outs):
            if s not in want:
                continue
            chw = self._chw(out, s, hw)
            if chw.shape[0] != 3:
                raise SrzooError(f"{self.entry.name} x{self.entry.scale}: io.color = "
                                 f"{self.io.color!r} but the network gives {chw.shape[0]}-channel outputs")
            H, W = chw.shape[1:]
            img = np.empty((H, W, 3), dtype)
            m = self.mean

            def band(r0: int, r1: int, chw: np.ndarray = chw, img: np.ndarray = img) -> None:
                rows = slice(r0 * s, r1 * s)
                planes = [_to_depth(np.ascontiguousarray(chw[c, rows]), inv, dtype, float(m[c]) * inv)
                          for c in order]
                cv2.merge(planes, dst=img[rows])
                if dtype == np.float32:
                    np.clip(img[rows], 0.0, 1.0, out=img[rows])

            _in_strips(hw[0], band, self.workers, W * s)
            result[s] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if grey else img
        return result

    # ---- whole image, tiled or not ----------------------------------------------
    def run(self, color: np.ndarray, want: Sequence[int], tile: int | None = None,
            overlap: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict[int, np.ndarray]:
        """Upscale ``color`` to each scale in ``want``, in tiles of ``tile`` input
        pixels when asked (``tile=None``: automatic above the pixel budget,
        ``tile=0``: never). Tiles overlap by ``overlap`` pixels of context that
        is cropped away, so seams do not show. ``progress(done, total)`` is
        called after each tile (once for an untiled run)."""
        h, w = color.shape[:2]
        if tile is None:
            budget = _env_int("SRZOO_AUTO_TILE_PIXELS", AUTO_TILE_PIXELS)
            tile = AUTO_TILE if (h * w > budget and not self.direct) else 0
        if self.direct or not tile or (h <= tile and w <= tile):
            out = self.process(color, want)
            if progress is not None:
                progress(1, 1)
            return out
        if tile < 1:
            raise SrzooError(f"tile must be a positive number of pixels, got {tile}")
        return run_tiled(color, lambda t: self.process(t, want), want, int(tile),
                         default_overlap(self.entry) if overlap is None else int(overlap),
                         progress)


def windows(n: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """``(core0, core1, pad0, pad1)`` along one side of ``n`` pixels: network-input
    windows of one size that cover it, each with at least ``overlap`` pixels of
    context on every side of its core that is not the image's edge.

    The window is ``tile + 2 * overlap`` (the whole side when that is larger).
    Windows are clamped inside the image instead of shrunk at its edges, so an
    edge window's core is ``overlap`` longer (its outer side needs no context)
    and every window has the same size: engines that allocate per input shape
    (OpenVINO compiles per shape, onnxruntime's arena grows per shape)
    allocate once. The fewest windows that cover the side are then spread
    evenly and shrunk to the smallest size that still covers it (less work)."""
    size = tile + 2 * overlap
    if n <= size:
        return [(0, n, 0, n)]
    step = size - 2 * overlap  # = tile >= 1: the core of a middle window
    k = 2 + -(-max(0, n - 2 * (size - overlap)) // step)
    size = -(-(n + 2 * overlap * (k - 1)) // k)  # the smallest size k windows cover n with
    starts = [i * (n - size) // (k - 1) for i in range(k)]
    # a core ends half-way through the overlap of two neighbouring windows: at
    # least `overlap` pixels of context on both sides (k*size >= n + 2*overlap*(k-1))
    cuts = [0] + [(starts[i] + size + starts[i + 1]) // 2 for i in range(k - 1)] + [n]
    return [(cuts[i], cuts[i + 1], starts[i], starts[i] + size) for i in range(k)]


def tiles(h: int, w: int, tile: int, overlap: int):
    """Yield ``(core, padded)`` boxes ``(y0, y1, x0, x1)`` covering an h×w image:
    the cores split it, every padded box (the network input) has the same
    size (:func:`windows`)."""
    cols = windows(w, tile, overlap)
    for y0, y1, py0, py1 in windows(h, tile, overlap):
        for x0, x1, px0, px1 in cols:
            yield (y0, y1, x0, x1), (py0, py1, px0, px1)


def run_tiled(color: np.ndarray, fn: Callable[[np.ndarray], dict[int, np.ndarray]],
              scales: Sequence[int], tile: int, overlap: int,
              progress: Callable[[int, int], None] | None = None) -> dict[int, np.ndarray]:
    """Run ``fn`` on overlapping tiles and paste the cores into full-size outputs;
    ``progress(done, total)`` after each tile."""
    if overlap < 0:
        raise SrzooError(f"overlap must be >= 0, got {overlap}")
    h, w = color.shape[:2]
    outs: dict[int, np.ndarray] = {}
    boxes = list(tiles(h, w, tile, overlap))
    for i, ((y0, y1, x0, x1), (py0, py1, px0, px1)) in enumerate(boxes):
        res = fn(color[py0:py1, px0:px1])
        for s, r in res.items():
            if s not in outs:
                outs[s] = np.empty((h * s, w * s) + r.shape[2:], r.dtype)
            outs[s][y0 * s:y1 * s, x0 * s:x1 * s] = \
                r[(y0 - py0) * s:(y1 - py0) * s, (x0 - px0) * s:(x1 - px0) * s]
        if progress is not None:
            progress(i + 1, len(boxes))
    return outs
