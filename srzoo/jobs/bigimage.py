"""Images larger than memory: upscaled window by window, chunk store to chunk store.

>>> upscale_big("scene.tif", "scene_x2.zarr", "fsrcnn", 2, chunk=1024)   # doctest: +SKIP

The image is cut into a grid of ``chunk``×``chunk`` input pixels and every grid
cell is one independent task that reads ITS OWN padded window straight from the
input store (a Zarr array, or a TIFF through ``tifffile``'s Zarr view, which
reads only the tiles/strips the window needs): the cell plus ``overlap`` pixels
of context on each side that has a neighbour (the model's ``receptive_field``
from its manifest unless given). The window is upscaled by the normal
:class:`srzoo.Upscaler` (the same pre/post-processing as everywhere), the
context is cropped away and the cell's output is written straight into its own
chunk of the output Zarr store (``.zarr``), or handed in tile order to a tiled
TIFF (``.tif``/``.tiff``: one task per TIFF tile). Outputs are written under a
temporary name and renamed when complete. No task waits for another, so peak
memory is one padded window, its activations and its output per running task,
whatever the image size (``tests/jobs/test_bigimage.py`` measures it at two sizes).

Tasks run where Dask runs them: in this process (``scheduler="synchronous"``,
the default without a client; OpenCV uses every core inside each task) or on a
``distributed.Client``'s workers (which must see the input and output paths).
Results equal the in-memory tiled path within one grey level (the grid, not the
model, is the only difference). :func:`open_array` / :func:`upscale_array` give
the same computation as a lazy Dask array (``map_overlap``) for use inside
larger Dask graphs; that form keeps rows of chunks in memory.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from srzoo import fsutil
from srzoo.errors import ImageError, SrzooError
from srzoo.hub import cache
from srzoo.hub.api import fetch_entry, get_model
from srzoo.hub.manifest import ModelEntry
from srzoo.runtime.pipeline import default_overlap
from srzoo.runtime.upscaler import get_upscaler

#: default chunk side (input pixels)
DEFAULT_CHUNK = 1024
_TIFF = (".tif", ".tiff")
_lock = threading.Lock()


def _need() -> tuple[Any, Any]:
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise SrzooError("images as Dask arrays need dask: pip install 'srzoo[dask]'") from None
    return dask, da


class _TiffRegions:
    """A TIFF as a lazy array: each ``[...]`` opens the file and reads only that
    region through tifffile's Zarr view. Holds just the path, so it pickles to
    Dask workers (which must see the same path)."""

    def __init__(self, path: str) -> None:
        import tifffile

        self.path = path
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            self.shape = tuple(series.shape)
            self.dtype = np.dtype(series.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        import tifffile
        import zarr

        with tifffile.imread(self.path, aszarr=True) as store:
            z = zarr.open(store, mode="r")
            if not hasattr(z, "shape"):  # a multiscale group: level 0
                z = z["0"]
            return np.asarray(z[key])


def open_array(src: Any, chunk: int = DEFAULT_CHUNK) -> Any:
    """``src`` (a ``.zarr`` path, a TIFF path, a NumPy or Dask array) as a Dask
    array of ``chunk``×``chunk`` pixels (channels in one chunk), read lazily."""
    _, da = _need()
    if isinstance(src, np.ndarray):
        arr = da.from_array(src, chunks=-1)
    elif hasattr(src, "dask") and hasattr(src, "chunks"):
        arr = src
    else:
        path = Path(os.fspath(src))
        if not path.exists():
            raise ImageError(f"{path}: no such file or folder")
        try:
            if path.suffix.lower() in _TIFF:
                lazy = _TiffRegions(str(path))
                arr = da.from_array(lazy, chunks=(chunk, chunk) + lazy.shape[2:], lock=False,
                                    asarray=True, meta=np.empty((0,) * lazy.ndim, lazy.dtype))
            else:
                arr = da.from_zarr(str(path))
        except ImportError as e:
            raise SrzooError(f"{path}: reading it needs {e.name}: pip install 'srzoo[dask]'") from None
        except Exception as e:  # zarr/tifffile errors: name the file
            raise ImageError(f"{path}: cannot open as a chunked image ({type(e).__name__}: "
                             f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''})") from None
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{src}: unsupported shape {arr.shape} (use H×W, H×W×1, H×W×3 or H×W×4)")
    chunks = (chunk, chunk) + ((arr.shape[2],) if arr.ndim == 3 else ())
    return arr.rechunk(chunks)


def _crop_upscale(block: np.ndarray, entry: Any, scale: int, backend: str, ov: int,
                  grid: tuple[tuple[int, ...], ...], model_files: tuple[str, ...] = (),
                  block_info: Any = None) -> np.ndarray:
    """One task: upscale a chunk with its context border, return the chunk's part.

    With ``boundary="none"`` a chunk gets ``ov`` pixels of context on each side
    that has a neighbour and none at the image's edges (where the network pads,
    as it does for the whole image)."""
    loc = block_info[0]["chunk-location"]
    before = [ov if loc[a] > 0 else 0 for a in (0, 1)]
    sizes = [grid[a][loc[a]] for a in (0, 1)]
    after = [ov if loc[a] < len(grid[a]) - 1 else 0 for a in (0, 1)]
    if any(block.shape[a] != before[a] + sizes[a] + after[a] for a in (0, 1)):
        raise SrzooError(f"internal: chunk {tuple(loc)} came with shape {block.shape[:2]}, "
                         f"expected {sizes} plus {before}/{after} of context")
    out = _run_model(block, entry, scale, backend, model_files)
    y0, x0 = before[0] * scale, before[1] * scale
    out = out[y0:y0 + sizes[0] * scale, x0:x0 + sizes[1] * scale]
    if block.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def _prepare(model: Any, scale: int, overlap: int | None) -> tuple[Any, tuple[str, ...], int]:
    """The model entry at ``scale``, its verified file (fetched once, here, before
    any task) and the overlap (default: the manifest's ``receptive_field``,
    capped as for in-memory tiles)."""

    entry = model if isinstance(model, ModelEntry) else get_model(model, scale)
    entry = entry.at_scale(scale)
    if entry.scale != scale:
        raise SrzooError(f"{entry.name} entry is x{entry.scale}, not x{scale}")
    files: tuple[str, ...] = ()
    if entry.artifact is not None:
        files = (str(fetch_entry(entry)),)
    # the same rule as in-memory tiling: the receptive field, capped where far
    # pixels stop mattering (pipeline.MAX_OVERLAP: RRDB's 350 px would add ~8x work)
    ov = overlap if overlap is not None else default_overlap(entry)
    if ov < 0:
        raise SrzooError(f"overlap must be >= 0, got {ov}")
    return entry, files, ov


def _run_model(window: np.ndarray, entry: Any, scale: int, backend: str,
               model_files: tuple[str, ...]) -> np.ndarray:
    """Upscale one window with this process's (cached) upscaler."""

    with _lock:  # one network per process; OpenCV parallelises inside it
        if entry.artifact is not None:  # a worker
            cache.seed(entry.artifact, model_files)  # that sees the client's verified copy
        up = get_upscaler(entry, scale, backend=backend)
        return up.upscale(np.ascontiguousarray(window), tile=0)


def upscale_array(arr: Any, model: str = "espcn", scale: int = 2, *, overlap: int | None = None,
                  backend: str = "auto") -> Any:
    """A lazy Dask array: ``arr`` (Dask, chunked in H and W only) upscaled chunk by
    chunk with ``map_overlap``, for use inside a larger Dask graph. Dask keeps
    neighbouring chunks (about two rows) in memory for the overlaps; to write a
    huge image with memory that does not grow with it use :func:`upscale_big`."""
    _, da = _need()
    entry, files, ov = _prepare(model, scale, overlap)
    fixed = []
    for ch in arr.chunks[:2]:  # every chunk must be able to lend `ov` pixels to its neighbour
        ch = list(ch)
        if len(ch) > 1 and ch[-1] < ov:
            ch[-2] += ch.pop()
        if len(ch) > 1 and min(ch) < ov:
            raise SrzooError(f"chunks of {min(ch)} pixels are smaller than the overlap of {ov}; "
                             "use a larger chunk")
        fixed.append(tuple(ch))
    if tuple(fixed) != tuple(arr.chunks[:2]):
        arr = arr.rechunk(tuple(fixed) + tuple(arr.chunks[2:]))
    chunks = arr.chunks
    out_chunks = tuple(tuple(c * scale for c in ch) for ch in chunks[:2]) + tuple(chunks[2:])
    depth = {0: ov, 1: ov} | ({2: 0} if arr.ndim == 3 else {})
    import functools

    fn = functools.partial(_crop_upscale, entry=entry, scale=scale, backend=backend, ov=ov,
                           grid=arr.chunks[:2], model_files=files)
    return arr.map_overlap(fn, depth=depth, boundary="none", trim=False, dtype=arr.dtype,
                           chunks=out_chunks, meta=np.empty((0,) * arr.ndim, arr.dtype))


def _tmp_beside(dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent))


class _Source:
    """The input image as regions: a NumPy or Dask array, or the path of a Zarr
    store or a TIFF. Holds paths, not open files, so it pickles to Dask workers
    (which must see the same path); every :meth:`read` opens the store and reads
    only the chunks/tiles/strips that region touches."""

    def __init__(self, src: Any) -> None:
        self.array: Any = None
        self.path: str | None = None
        self.tiff: _TiffRegions | None = None
        if isinstance(src, np.ndarray) or (hasattr(src, "dask") and hasattr(src, "chunks")):
            self.array = src
            shape, dtype = src.shape, src.dtype
        else:
            path = Path(os.fspath(src))
            if not path.exists():
                raise ImageError(f"{path}: no such file or folder")
            self.path = str(path)
            try:
                if path.suffix.lower() in _TIFF:
                    self.tiff = _TiffRegions(self.path)
                    shape, dtype = self.tiff.shape, self.tiff.dtype
                else:
                    import zarr

                    z = zarr.open(self.path, mode="r")
                    if not hasattr(z, "shape"):
                        raise ValueError("a Zarr group, not an array")
                    shape, dtype = z.shape, z.dtype
            except ImportError as e:
                raise SrzooError(f"{path}: reading it needs {e.name}: pip install 'srzoo[dask]'") from None
            except Exception as e:  # zarr/tifffile errors: name the file
                raise ImageError(f"{path}: cannot open as a chunked image ({type(e).__name__}: "
                                 f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''})") from None
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
            raise ImageError(f"{src}: unsupported shape {tuple(shape)} "
                             "(use H×W, H×W×1, H×W×3 or H×W×4)")
        self.shape: tuple[int, ...] = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if self.tiff is not None:
            return self.tiff[y0:y1, x0:x1]
        if self.path is not None:
            import zarr

            return np.asarray(zarr.open(self.path, mode="r")[y0:y1, x0:x1])
        part = self.array[y0:y1, x0:x1]
        if hasattr(part, "dask"):
            part = part.compute(scheduler="synchronous")
        return np.asarray(part)


def _window_task(cell: tuple[int, int, int, int], src: _Source, entry: Any, scale: int,
                 backend: str, ov: int, model_files: tuple[str, ...],
                 out_store: str | None = None) -> np.ndarray | None:
    """One task: read the input cell ``(y0, y1, x0, x1)`` with ``ov`` pixels of
    context on each side that has a neighbour (none at the image's edges, where
    the network pads as it does for the whole image), upscale it, crop the
    context away; write the cell's output into ``out_store`` (a Zarr array whose
    chunks are the cells, so no two tasks touch one chunk) or return it."""
    y0, y1, x0, x1 = cell
    h, w = src.shape[:2]
    wy0, wy1, wx0, wx1 = max(0, y0 - ov), min(h, y1 + ov), max(0, x0 - ov), min(w, x1 + ov)
    window = src.read(wy0, wy1, wx0, wx1)
    out = _run_model(window, entry, scale, backend, model_files)
    oy, ox = (y0 - wy0) * scale, (x0 - wx0) * scale
    out = out[oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    if window.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    if out.shape[:2] != ((y1 - y0) * scale, (x1 - x0) * scale):
        raise SrzooError(f"internal: cell {cell} upscaled to {out.shape[:2]}, "
                         f"expected {((y1 - y0) * scale, (x1 - x0) * scale)}")
    if out_store is None:
        return out
    import zarr

    zarr.open(out_store, mode="r+")[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = out
    return None


def _cells(h: int, w: int, step: int) -> list[tuple[int, int, int, int]]:
    """The grid of ``step``-pixel cells, row by row (the TIFF tile order)."""
    return [(y, min(y + step, h), x, min(x + step, w))
            for y in range(0, h, step) for x in range(0, w, step)]


def _compute(fn: Any, cells: list[tuple[int, int, int, int]], client: Any) -> tuple[Any, ...]:
    """``fn(cell)`` for every cell as independent Dask tasks, in this process
    (synchronous) or on ``client``; results in the cells' order."""
    dask, _ = _need()
    tasks = [dask.delayed(fn, pure=False)(cell) for cell in cells]
    return dask.compute(*tasks, scheduler=client if client is not None else "synchronous")


def _is_zarr(path: Path) -> bool:
    """A folder holding a Zarr array (v2 or v3 metadata at its top)."""
    return path.is_dir() and any((path / m).is_file() for m in (".zarray", ".zgroup", "zarr.json"))


def _write_zarr(src: _Source, dst: Path, task: Any, scale: int, step: int, client: Any) -> None:
    """Every cell's task writes its own output chunk of a Zarr store created
    under a temporary name; renamed into place when all are done."""
    import zarr

    h, w = src.shape[:2]
    extra = src.shape[2:]
    tmpdir = _tmp_beside(dst)
    try:
        store = tmpdir / dst.name
        zarr.open(str(store), mode="w", shape=(h * scale, w * scale) + extra,
                  chunks=(step * scale, step * scale) + extra, dtype=src.dtype)
        import functools

        _compute(functools.partial(task, out_store=str(store)), _cells(h, w, step), client)
        if dst.is_symlink() or (dst.exists() and not _is_zarr(dst)):
            raise SrzooError(f"{dst}: exists and is not a Zarr store srzoo wrote; refusing to "
                             "delete it (remove it or choose another -o)")
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        os.replace(store, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _tiff_tile(chunk: int, scale: int) -> int:
    """TIFF tile side (output pixels): a multiple of 16 (TIFF) and of ``scale``
    (so a tile is a whole input cell), near ``chunk * scale``, at most 1024 when
    possible."""
    m = 16 * scale // math.gcd(16, scale)
    return max(m, min(chunk * scale, 1024) // m * m)


def _write_tiff(src: _Source, dst: Path, task: Any, scale: int, t: int, client: Any,
                group: int) -> None:
    """A tiled TIFF written tile by tile in the file's order: each tile is one
    cell's task, ``group`` tasks computed together, so only ``group`` output
    tiles are ever in memory."""
    import tifffile

    h, w = src.shape[:2]
    extra = src.shape[2:]
    shape = (h * scale, w * scale) + extra
    cells = _cells(h, w, t // scale)

    def tiles():
        for k in range(0, len(cells), group):
            for b in _compute(task, cells[k:k + group], client):
                if b.shape[:2] != (t, t):  # edge tile: pad to the tile size
                    pad = np.zeros((t, t) + extra, b.dtype)
                    pad[:b.shape[0], :b.shape[1]] = b
                    b = pad
                yield b

    tmpdir = _tmp_beside(dst)
    try:
        tmp = tmpdir / dst.name
        grey = len(shape) == 2 or shape[2] == 1
        nbytes = int(np.prod(shape)) * src.dtype.itemsize
        tifffile.imwrite(str(tmp), tiles(), shape=shape, dtype=src.dtype, tile=(t, t),
                         photometric="minisblack" if grey else "rgb", bigtiff=nbytes > 2**31,
                         extrasamples=("unassalpha",) if len(shape) == 3 and shape[2] == 4 else None)
        fsutil.install(tmp, dst)  # a device, FIFO or link to one is written through
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def upscale_big(src: Any, dst: str | os.PathLike[str], model: str = "espcn", scale: int = 2, *,
                chunk: int = DEFAULT_CHUNK, overlap: int | None = None, backend: str = "auto",
                client: Any = None, group: int = 4) -> Path:
    """Upscale a chunked image ``src`` (a ``.zarr`` path, a TIFF path, a NumPy or
    Dask array) into the chunked store ``dst`` (``.zarr`` or ``.tif``/``.tiff``)
    without ever holding the whole image; returns ``dst``.

    ``chunk``: side of each task's input cell (a Zarr output's chunks are
    ``chunk * scale``; a TIFF's tiles are that rounded to a multiple of 16 and of
    ``scale``, at most 1024); ``overlap``: context pixels per side (default: the
    model's manifest ``receptive_field``); ``client``: a ``distributed.Client``
    to run the tasks on (default: this process). Each task holds one padded
    window, so memory does not grow with the image. Channels are BGR(A) as
    everywhere in srzoo (a TIFF's RGB is read as is: swap it first for colour
    models if it matters). ``group``: TIFF tiles computed together.
    """
    import functools

    dst = Path(os.fspath(dst))
    if chunk < 16:
        raise SrzooError(f"chunk must be at least 16 pixels, got {chunk}")
    suffix = dst.suffix.lower()
    if suffix not in _TIFF + (".zarr",):
        raise SrzooError(f"{dst}: big-image output must be a .zarr store or a .tif/.tiff file")
    if suffix == ".zarr" and (dst.is_symlink() or (dst.exists() and not _is_zarr(dst))):
        raise SrzooError(f"{dst}: exists and is not a Zarr store srzoo wrote; refusing to "
                         "delete it (remove it or choose another -o)")
    _need()
    source = _Source(src)
    entry, files, ov = _prepare(model, scale, overlap)
    task = functools.partial(_window_task, src=source, entry=entry, scale=scale, backend=backend,
                             ov=ov, model_files=files)
    if suffix == ".zarr":
        _write_zarr(source, dst, task, scale, chunk, client)
    else:
        _write_tiff(source, dst, task, scale, _tiff_tile(chunk, scale), client, max(1, group))
    return dst


__all__ = ["DEFAULT_CHUNK", "open_array", "upscale_array", "upscale_big"]
