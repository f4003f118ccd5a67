"""The model entry of an ``omdb:`` name and how its file is got: download,
hand-downloaded files, checks of a published ONNX.

* :func:`entry_for`: a record's :class:`CatalogEntry` (a ModelEntry whose
  ``format`` is the published file's: the runtime converts ``.pth`` and
  ``.safetensors`` like any manifest entry's).

* :func:`fetch_source`: the published file, verified (size + sha256) into
  ``<cache>/models/omdb/<id>/``. A file only on Google Drive, Mega, OneDrive...
  raises :class:`ManualDownload`, which says where to get it by hand.
* :func:`add_from_file`: ``srzoo fetch omdb:ID --from FILE``: the same
  verification for a file the user downloaded; nothing is copied if it fails.
* :func:`inspect_onnx`: a published ``.onnx`` must take one float32 NCHW
  input and return exactly ``scale`` times a probe's size in cv2.dnn.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srzoo.errors import (
    ChecksumError,
    DownloadError,
    ModelLoadError,
    SrzooError,
    UnknownModel,
)
from srzoo.hub import cache, download, hosts
from srzoo.hub.catalog.records import IO, PREFIX, ManualDownload, Record, settings
from srzoo.hub.manifest import ModelEntry
from srzoo.hub.untrusted import check_onnx_external


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
        if entry.scripted_urls:
            return _fetch_scripted(entry)
        raise ManualDownload(manual_message(entry))
    try:
        return download.fetch_artifact(art, force=force, quiet=quiet, what=entry.name)
    except ChecksumError:
        raise
    except DownloadError as e:
        if not art.urls:
            if entry.scripted_urls:
                return _fetch_scripted(entry, tried=str(e))
            raise ManualDownload(manual_message(entry, tried=str(e))) from None
        raise


def _fetch_scripted(entry: CatalogEntry, tried: str = "") -> Path:
    """The file from a host with its own protocol (:func:`srzoo.hub.hosts.fetch_scripted`),
    into the cache's partial folder, then verified and added as a hand-downloaded file is
    (:func:`add_from_file`): nothing unverified is kept. Every link failing: one
    DownloadError with each reason and the manual route."""
    art = entry.artifact
    assert art is not None
    if download.offline():
        raise ManualDownload(manual_message(entry, tried=tried))
    part = cache.partial_path(art).with_suffix(".host")
    part.parent.mkdir(parents=True, exist_ok=True)
    why = [tried] if tried else []
    for url in entry.scripted_urls:
        try:
            hosts.fetch_scripted(url, part, art.size)
            return add_from_file(entry, part)
        except (DownloadError, ChecksumError) as e:
            why.append(str(e).splitlines()[0])
        finally:
            part.unlink(missing_ok=True)
    raise DownloadError(f"could not fetch {entry.name} ({art.file}): {'; '.join(why)}. "
                        f"{manual_message(entry)}")


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
    check_onnx_external(path)  # before onnx or cv2.dnn opens any file its tensors name
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


@dataclass(frozen=True)
class CatalogEntry(ModelEntry):
    """The model entry of an ``omdb:`` name.

    ``format`` is the published file's (``pytorch-pth``, ``safetensors``,
    ``onnx``), as for any manifest entry: engines run ``.pth``/``.safetensors``
    from the ONNX :mod:`srzoo.convert` derives, like every other entry.
    ``artifact`` is the published file; ``unrunnable`` says why srzoo cannot
    run a record (engines refuse such an entry with that reason).
    """

    record_id: str = ""
    manual_urls: tuple[str, ...] = ()
    scripted_urls: tuple[str, ...] = ()  # fetched by srzoo.hub.hosts (Mega), after any plain source
    page: str = ""
    unrunnable: str | None = None
    revision: str = ""

    @property
    def source_format(self) -> str:
        """The published file's format (the same as ``format``; kept for callers of 0.2)."""
        return self.format

    def fetch_override(self, *, force: bool = False, quiet: bool | None = None) -> Path:
        """What :func:`srzoo.hub.api.fetch_entry` returns: the verified published
        file (downloaded, or added by hand); a published ``.onnx`` is inspected
        first (:func:`inspect_onnx`)."""
        src = fetch_source(self, force=force, quiet=quiet)
        if self.format == "onnx" and not self.unrunnable:
            inspect_onnx(src, self)
        return src


def entry_for(record: Record, rtype: str | None = None, *, revision: str = "") -> CatalogEntry:
    """The :class:`CatalogEntry` of a record (``rtype``: force one resource type)."""
    res = record.resource(rtype)
    if res is None:
        have = ", ".join(sorted({r.type for r in record.resources})) or "none"
        raise UnknownModel(f"omdb:{record.id} has no {rtype or 'weight'} file (it has: {have})")
    why = record.why_not_runnable(res)
    name = PREFIX + record.id + (f"@{rtype}" if rtype else "")
    page = settings()["source"]["page"].format(id=record.id)
    desc = str(record.raw.get("description", "")).split("\n", 1)[0][:200]
    return CatalogEntry(
        name=name, scale=record.scale, format=res.format, license=record.license, io=IO,
        artifact=res.artifact(record.id), engine="opencv", source=page, description=desc,
        notes=("non-commercial licence" if record.non_commercial else ""),
        arch=" ".join([record.arch, *record.size_tags]).strip(),
        manifest=f"openmodeldb@{revision[:12]}" if revision else "openmodeldb",
        record_id=record.id, manual_urls=res.manual_urls, scripted_urls=res.scripted_urls, page=page,
        unrunnable=why, revision=revision,
    )


__all__ = ["CatalogEntry", "add_from_file", "entry_for", "fetch_source", "inspect_onnx", "manual_message"]
