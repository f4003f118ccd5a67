"""Images larger than memory: upscaled as a tiled Dask array, chunk store to chunk store.

>>> upscale_big("scene.tif", "scene_x2.zarr", "fsrcnn", 2, chunk=1024)   # doctest: +SKIP

The input is read lazily from a chunked store (a Zarr array, or a TIFF through
``tifffile``'s Zarr view, which reads only the tiles/strips a chunk needs),
rechunked to ``chunk``×``chunk`` input pixels, and every chunk is one task:
``map_overlap`` hands it its neighbours' border of ``overlap`` pixels (the
model's ``receptive_field`` from its manifest unless given), the chunk is
upscaled by the normal :class:`srzoo.Upscaler` (so the same pre/post-processing
as everywhere) and the context is cropped away. Outputs go straight to a Zarr
store (``.zarr``) or a tiled TIFF (``.tif``/``.tiff``), written under a
temporary name and renamed when complete. Peak memory is a few chunks per
worker (input chunk with its border, the network's activations for it, the
output chunk), whatever the image size.

Chunks run where Dask runs them: in this process (``scheduler="synchronous"``,
the default without a client; OpenCV uses every core inside each chunk) or on
a ``distributed.Client``'s workers. Results equal the in-memory tiled path
within one grey level (the chunk grid, not the model, is the only difference).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageError, SrzooError

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
    from .upscaler import get_upscaler

    loc = block_info[0]["chunk-location"]
    before = [ov if loc[a] > 0 else 0 for a in (0, 1)]
    sizes = [grid[a][loc[a]] for a in (0, 1)]
    after = [ov if loc[a] < len(grid[a]) - 1 else 0 for a in (0, 1)]
    if any(block.shape[a] != before[a] + sizes[a] + after[a] for a in (0, 1)):
        raise SrzooError(f"internal: chunk {tuple(loc)} came with shape {block.shape[:2]}, "
                         f"expected {sizes} plus {before}/{after} of context")
    with _lock:  # one network per process; OpenCV parallelises inside it
        from .batch import ensure_model

        ensure_model(entry, model_files)  # a worker that sees the client's verified copy
        up = get_upscaler(entry, scale, backend=backend)
        out = up.upscale(np.ascontiguousarray(block), tile=0)
    y0, x0 = before[0] * scale, before[1] * scale
    out = out[y0:y0 + sizes[0] * scale, x0:x0 + sizes[1] * scale]
    if block.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def upscale_array(arr: Any, model: str = "espcn", scale: int = 2, *, overlap: int | None = None,
                  backend: str = "auto") -> Any:
    """A lazy Dask array: ``arr`` (Dask, chunked in H and W only) upscaled chunk by chunk."""
    _, da = _need()
    from .api import fetch_entry, get_model
    from .pipeline import DEFAULT_OVERLAP
    from .registry import ModelEntry

    entry = model if isinstance(model, ModelEntry) else get_model(model, scale)
    entry = entry.at_scale(scale)
    if entry.scale != scale:
        raise SrzooError(f"{entry.name} entry is x{entry.scale}, not x{scale}")
    files: tuple[str, ...] = ()
    if entry.artifact is not None:
        files = (str(fetch_entry(entry)),)  # once, here, before any task
    ov = overlap if overlap is not None else (entry.receptive_field if entry.receptive_field
                                              is not None else DEFAULT_OVERLAP)
    if ov < 0:
        raise SrzooError(f"overlap must be >= 0, got {ov}")
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


def _write_zarr(out: Any, dst: Path, compute_kw: dict) -> None:
    _, da = _need()
    tmpdir = _tmp_beside(dst)
    try:
        store = tmpdir / dst.name
        import dask

        dask.compute(da.to_zarr(out, str(store), compute=False), **compute_kw)
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        os.replace(store, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _write_tiff(out: Any, dst: Path, compute_kw: dict, group: int) -> None:
    """A tiled TIFF written tile by tile (``group`` tiles computed together), so
    only a few output tiles are ever in memory."""
    import dask
    import tifffile

    c = out.chunks[0][0]
    t = c - c % 16 if c >= 16 else 16  # TIFF tiles are multiples of 16
    t = min(t, 1024)
    h, w = out.shape[:2]
    extra = out.shape[2:]
    idx = [(y, x) for y in range(0, h, t) for x in range(0, w, t)]

    def tiles():
        for k in range(0, len(idx), group):
            part = idx[k:k + group]
            blocks = dask.compute(*[out[y:y + t, x:x + t] for y, x in part], **compute_kw)
            for b in blocks:
                if b.shape[:2] != (t, t):  # edge tile: pad to the tile size
                    pad = np.zeros((t, t) + extra, b.dtype)
                    pad[:b.shape[0], :b.shape[1]] = b
                    b = pad
                yield b

    tmpdir = _tmp_beside(dst)
    try:
        tmp = tmpdir / dst.name
        grey = out.ndim == 2 or out.shape[2] == 1
        tifffile.imwrite(str(tmp), tiles(), shape=out.shape, dtype=out.dtype, tile=(t, t),
                         photometric="minisblack" if grey else "rgb", bigtiff=out.nbytes > 2**31,
                         extrasamples=("unassalpha",) if out.ndim == 3 and out.shape[2] == 4 else None)
        os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def upscale_big(src: Any, dst: str | os.PathLike[str], model: str = "espcn", scale: int = 2, *,
                chunk: int = DEFAULT_CHUNK, overlap: int | None = None, backend: str = "auto",
                client: Any = None, group: int = 4) -> Path:
    """Upscale a chunked image ``src`` into the chunked store ``dst`` (``.zarr``
    or ``.tif``/``.tiff``) without ever holding the whole image; returns ``dst``.

    ``chunk``: side of each task's input tile; ``overlap``: context pixels per
    side (default: the model's manifest ``receptive_field``); ``client``: a
    ``distributed.Client`` to run the tasks on (default: this process).
    Channels are BGR(A) as everywhere in srzoo (a TIFF's RGB is read as is:
    swap it first for colour models if it matters). ``group``: TIFF output
    chunks computed together.
    """
    dst = Path(os.fspath(dst))
    if chunk < 16:
        raise SrzooError(f"chunk must be at least 16 pixels, got {chunk}")
    suffix = dst.suffix.lower()
    if suffix not in _TIFF + (".zarr",):
        raise SrzooError(f"{dst}: big-image output must be a .zarr store or a .tif/.tiff file")
    arr = open_array(src, chunk)
    out = upscale_array(arr, model, scale, overlap=overlap, backend=backend)
    compute_kw: dict[str, Any] = {"scheduler": client if client is not None else "synchronous"}
    if suffix == ".zarr":
        _write_zarr(out, dst, compute_kw)
    else:
        _write_tiff(out, dst, compute_kw, group)
    return dst


__all__ = ["DEFAULT_CHUNK", "open_array", "upscale_array", "upscale_big"]
