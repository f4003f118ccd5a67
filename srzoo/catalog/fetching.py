"""Getting an ``omdb:`` model's file: download, hand-downloaded files, conversion, ONNX checks.

* :func:`fetch_source`: the published file, verified (size + sha256) into
  ``<cache>/models/omdb/<id>/``. A file only on Google Drive, Mega, OneDrive...
  raises :class:`ManualDownload`, which says where to get it by hand.
* :func:`add_from_file`: ``srzoo fetch omdb:ID --from FILE``: the same
  verification for a file the user downloaded; nothing is copied if it fails.
* :func:`runnable_path`: what an engine loads: the published ``.onnx`` after
  :func:`inspect_onnx`, or the ONNX :func:`srzoo.derived.derive` builds from a
  ``.pth``/``.safetensors`` with the converter :func:`srzoo.convert.converter_for`
  registers for that format.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from .. import cache, download
from ..errors import ChecksumError, DownloadError, ModelLoadError, SrzooError
from .records import CatalogEntry, ManualDownload, UnsupportedArchitecture


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n} bytes"


def manual_message(entry: CatalogEntry, tried: str = "") -> str:
    art = entry.artifact
    assert art is not None
    where = ", ".join(entry.manual_urls) or "(no link in the record)"
    tail = f" (mirrors tried: {tried})" if tried else ""
    return (f"{entry.name}: {art.file} ({_size(art.size)}, sha256 {art.sha256}) is only published on "
            f"hosts a script cannot download from: {where}{tail}. Download it by hand from there "
            f"(record page: {entry.page}), then run `srzoo fetch {entry.name} --from FILE`, which "
            "checks its size and sha256 before adding it to the cache.")


def fetch_source(entry: CatalogEntry, *, force: bool = False, quiet: bool | None = None) -> Path:
    """The verified published file of ``entry`` in the cache (downloaded if needed)."""
    art = entry.artifact
    assert art is not None
    if not force and cache.is_cached(art):
        return cache.path_for(art)
    if not art.urls and not download.mirrors():
        raise ManualDownload(manual_message(entry))
    try:
        return download.fetch_artifact(art, force=force, quiet=quiet, what=entry.name)
    except ChecksumError:
        raise
    except DownloadError as e:
        if not art.urls:
            raise ManualDownload(manual_message(entry, tried=str(e))) from None
        raise


def add_from_file(entry: CatalogEntry, source: str | os.PathLike[str]) -> Path:
    """Verify a hand-downloaded file against the record and copy it into the cache."""
    art = entry.artifact
    assert art is not None
    src = Path(source).expanduser()
    if not src.is_file():
        raise SrzooError(f"{src}: no such file (give the file you downloaded for {entry.name})")
    bad = cache.problems(src, art)
    if bad:
        raise ChecksumError(f"{src} is not the file of {entry.name}: {'; '.join(bad)}; nothing was "
                            "added to the cache (download it again from the record's link)")
    part = cache.partial_path(art)
    part.parent.mkdir(parents=True, exist_ok=True)
    target = cache.path_for(art)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(src, part)
        bad = cache.problems(part, art)  # the copy itself, in case the file changed meanwhile
        if bad:
            raise ChecksumError(f"{src} changed while it was copied: {'; '.join(bad)}; nothing added")
        os.replace(part, target)
        cache.record(art)  # what was verified: later uses need not re-hash it
    finally:
        part.unlink(missing_ok=True)
    return target


def inspect_onnx(path: Path, entry: CatalogEntry) -> dict[str, Any]:
    """Check that a published ONNX file is one srzoo's pipeline can feed; returns what was seen.

    Reads the graph's inputs (one float32 NCHW input with 3 channels) with the
    ``onnx`` package when installed, then runs cv2.dnn once on a 32x32 probe
    and requires an output of exactly ``scale`` times that size.
    """
    import cv2
    import numpy as np

    seen: dict[str, Any] = {}
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # onnx raises its own DecodeError types
            raise ModelLoadError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
        init = {i.name for i in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in init]
        if len(inputs) != 1:
            raise ModelLoadError(f"{entry.name}: the ONNX file has {len(inputs)} inputs "
                                 f"({', '.join(i.name for i in inputs)}); srzoo feeds one image tensor")
        t = inputs[0].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        dtype = onnx.TensorProto.DataType.Name(t.elem_type)
        seen.update(input=inputs[0].name, dtype=dtype, shape=dims)
        if dtype != "FLOAT":
            raise ModelLoadError(f"{entry.name}: the ONNX file takes {dtype} input; srzoo feeds float32 "
                                 f"(use another resource of the record, e.g. {entry.name.split('@')[0]}@pth)")
        if len(dims) != 4 or dims[1] not in (3, "?") and not isinstance(dims[1], str):
            raise ModelLoadError(f"{entry.name}: the ONNX input is {dims}; srzoo feeds NCHW with 3 channels")
    try:
        net = cv2.dnn.readNetFromONNX(str(path))
        probe = np.full((1, 3, 32, 32), 0.5, np.float32)
        net.setInput(probe)
        out = net.forward()
    except cv2.error as e:
        msg = [ln for ln in str(e).splitlines() if ln.strip()]
        raise ModelLoadError(f"{entry.name}: OpenCV cannot run this ONNX file: "
                             f"{msg[-1].strip() if msg else e}") from None
    want = (1, 3, 32 * entry.scale, 32 * entry.scale)
    seen["probe"] = {"input": list(probe.shape), "output": list(out.shape)}
    if tuple(out.shape) != want:
        raise ModelLoadError(f"{entry.name}: for a 1x3x32x32 input the ONNX file returns "
                             f"{'x'.join(map(str, out.shape))}, not {'x'.join(map(str, want))} "
                             f"(x{entry.scale}, as the record says); a network that crops a border or "
                             "has another layout is not run")
    return seen


def _derive(entry: CatalogEntry, src: Path, force: bool) -> Path:
    from .. import derived
    from ..convert import converter_for
    from .converters import install

    install()
    converter = converter_for(entry.source_format)
    plain = dataclasses.replace(entry, name=f"omdb-{entry.record_id}", format=entry.source_format)
    return derived.derive(src, plain, converter, source_sha256=entry.sha256, force=force)


def runnable_path(entry: CatalogEntry, *, force: bool = False, quiet: bool | None = None) -> Path:
    """The ONNX file an engine loads for ``entry`` (fetched, verified, converted if needed)."""
    if entry.unrunnable:
        raise UnsupportedArchitecture(entry.unrunnable)
    src = fetch_source(entry, force=force, quiet=quiet)
    if entry.source_format == "onnx":
        inspect_onnx(src, entry)
        return src
    return _derive(entry, src, force)


__all__ = ["add_from_file", "fetch_source", "inspect_onnx", "manual_message", "runnable_path"]
