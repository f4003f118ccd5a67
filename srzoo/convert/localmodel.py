"""A model file given by path (``-m ./model.pth``, ``upscale(img, "x.onnx", 4)``,
``Upscaler(Path(...))``) as a :class:`~srzoo.hub.manifest.ModelEntry`.

* A file whose sha256 is a registry model's file IS that model: its manifest
  entry (how it is fed, its licence) is used, with the file itself as source.
* Otherwise the format is told from the bytes (:func:`srzoo.convert.files.sniff`;
  ``.safetensors`` from its header), the architecture and scale(s) from the
  weights (the converter's ``inspect``: nothing is converted yet), and the entry
  is fed like an OpenModelDB model (RGB, [0, 1], NCHW; a Y-channel network as
  its converter says). A published ``.onnx`` must take one 3-channel input and
  give exactly ``scale`` times its size (two probe runs in cv2.dnn).
* The file is copied into the cache by its sha256 (``models/local/<sha16>/``,
  verified like a download) and converted and verified once like a registry
  model's (:mod:`srzoo.convert.derive`); a second run converts nothing.
* ``scale``: the file's own; asked for only when the file holds several (CARN-M
  x2/x3/x4), and refused (with the scales it has) when it does not hold it.
* Only the file's folder is read: an ncnn ``.param`` takes the ``.bin`` of the
  same name beside it (a ``.bin`` given names its ``.param``), nothing else.

Every failure is one :class:`~srzoo.errors.SrzooError` line naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from srzoo.convert import converter_for
from srzoo.convert.files import _onnx_facts, sniff
from srzoo.errors import SrzooError, UnknownModel
from srzoo.hub import api
from srzoo.hub.manifest import Artifact, IOSpec, ModelEntry
from srzoo.hub.untrusted import regular_file

#: what a path ends with when it names a model file (a name with one of these is never a registry name)
SUFFIXES = (".onnx", ".pth", ".pt", ".ckpt", ".safetensors", ".param", ".bin", ".h5")
#: how a model given by path is fed unless its converter says otherwise (as OpenModelDB's)
IO = IOSpec(color="rgb", range=1.0, layout="nchw")
_FORMATS = ("pytorch-pth", "safetensors", "ncnn", "onnx", "keras-h5")


def looks_like_path(model: Any) -> bool:
    """True for an ``os.PathLike`` or a string that names a file rather than a
    registry model (a folder separator, or a model file suffix)."""
    if isinstance(model, os.PathLike):
        return True
    if not isinstance(model, str) or ":" in model.split("/")[0] and not os.path.exists(model):
        return False  # omdb:ID and other catalogue names
    return "/" in model or os.sep in model or model.lower().endswith(SUFFIXES)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _format(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(10)
    except OSError as e:
        raise SrzooError(f"{path}: cannot read: {e.strerror or e}") from None
    # .safetensors: an 8-byte little-endian header length, then the JSON header
    if len(head) == 10 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (100 << 20):
        return "safetensors"
    fmt = sniff(path)
    if fmt not in _FORMATS:
        raise SrzooError(f"{path}: is {fmt}; srzoo runs .onnx, .pth, .safetensors, ncnn .param "
                         "(with its .bin) and Keras .h5 files given by path")
    return fmt


def _local_artifact(path: Path, sha: str, size: int, file: str | None = None) -> Artifact:
    """The file as a cache artifact under ``models/local/<sha16>/`` with its own name
    (so an ncnn .param and its .bin sit side by side there too)."""
    return Artifact(file=file or path.name, size=size, sha256=sha, urls=(str(path.absolute()),),
                    subdir=f"models/local/{sha[:16]}")


def _registry_match(path: Path, sha: str, scale: float | None, exact: bool) -> ModelEntry | None:
    """The registry entry whose file this is (at ``scale``), with the file itself as source."""
    hits = [m for m in api.list_models() if m.artifact is not None and not m.member
            and not m.artifact.bundled and m.artifact.sha256 == sha]
    if not hits:
        return None
    scales = sorted({m.scale for m in hits if m.scale is not None})
    if scales:
        want = _pick_scale(path, scales, scale, exact)
        chosen = next(m for m in hits if m.scale == want)
    else:
        chosen = hits[0]
    art = chosen.artifact
    assert art is not None
    companions = []
    for c in chosen.companions:  # e.g. the ncnn .bin: beside the file, under its published name
        beside = _beside(path, c.file)
        companions.append(dataclasses.replace(c, urls=(str(beside.absolute()),)))
    return dataclasses.replace(chosen, artifact=dataclasses.replace(art, urls=(str(path.absolute()),)),
                               companions=tuple(companions))


def _beside(path: Path, name: str) -> Path:
    """The file ``name`` in the model file's own folder; never a link that leads out of it."""
    other = path.parent / name
    if not other.is_file():
        raise SrzooError(f"{path}: needs {name} beside it in {path.parent or '.'}, and it is not there")
    if other.is_symlink():
        try:
            other.resolve(strict=True).relative_to(path.parent.resolve(strict=True))
        except (OSError, ValueError, RuntimeError):
            raise SrzooError(f"{path}: {name} beside it is a link out of {path.parent}; srzoo reads "
                             "only the model file's own folder (copy the file there)") from None
    return other


def _pick_scale(path: Path, scales: list[int], scale: float | None, exact: bool = True) -> int:
    if not exact and scale is not None and scale not in scales:
        # srzoo.upscale(img, path, 3.5): the smallest scale at or above, resized down after
        above = [s for s in sorted(scales) if s >= scale]
        return above[0] if above else max(scales)
    if scale is None:
        if len(scales) != 1:
            raise SrzooError(f"{path}: holds the scales {', '.join(f'x{s}' for s in scales)}: give one (-s)")
        return scales[0]
    if scale not in scales:
        raise UnknownModel(f"{path}: upscales x{'/x'.join(str(s) for s in scales)}, not x{scale}; "
                           f"give -s {scales[0]} (srzoo.upscale(img, path, scale) resizes to "
                           "other scales)")
    return int(scale)


_seen: dict[tuple[Any, ...], ModelEntry] = {}


def entry_for_path(model: str | os.PathLike[str], scale: float | None = None, *,
                   exact: bool = True) -> ModelEntry:
    """The entry of the model file at ``model`` (see the module's doc) at ``scale``
    (``None``: the file's only scale). ``exact=False``: a scale the file does not
    hold picks the smallest one above it (the caller resizes the result)."""
    path = Path(model).expanduser()
    try:
        st = path.stat()
        key: tuple[Any, ...] | None = (str(path.absolute()), st.st_size, st.st_mtime_ns, st.st_ino, scale, exact)
    except OSError:
        key = None
    if key is not None and key in _seen:
        return _seen[key]
    entry = _entry_for_path(path, scale, exact)
    if key is not None:
        if len(_seen) > 64:
            _seen.clear()
        _seen[key] = entry
    return entry


def _entry_for_path(path: Path, scale: float | None, exact: bool) -> ModelEntry:
    if not os.path.lexists(path):
        raise UnknownModel(f"{path}: no such model file (a model name is one of `srzoo list`; a path "
                           "must name an existing .onnx, .pth, .safetensors or .param file)")
    regular_file(path)  # a regular file (no folder, device or FIFO) within SRZOO_MAX_MODEL_BYTES
    if path.suffix.lower() == ".bin" and path.with_suffix(".param").is_file():
        path = path.with_suffix(".param")  # ncnn: the .param is the model, the .bin its weights
    size = regular_file(path)
    sha = _sha256(path)
    known = _registry_match(path, sha, scale, exact)
    if known is not None:
        return known
    fmt = _format(path)
    name = re.sub(r"[^A-Za-z0-9._+-]", "-", path.stem)[:64] or "model"
    companions: tuple[Artifact, ...] = ()
    if fmt == "ncnn":
        weights = _beside(path, path.with_suffix(".bin").name)
        companions = (_local_artifact(weights, _sha256(weights), regular_file(weights)),)
    if fmt == "onnx":
        facts = _onnx_facts(path)
        if "probe" in facts:
            raise SrzooError(f"{path}: {facts['probe']}")
        s = facts.get("scale")
        if not isinstance(s, int) or s < 1:
            raise SrzooError(f"{path}: not an image-to-image network of a whole scale (output/input = {s})")
        if not str(facts.get("padding", "")).startswith("none"):
            raise SrzooError(f"{path}: {facts['padding']}; srzoo runs ONNX models whose output is "
                             "exactly scale x input (convert the source .pth instead)")
        if facts.get("layout") != "nchw":
            raise SrzooError(f"{path}: the input is not NCHW with 3 channels; srzoo cannot tell how "
                             "to feed it")
        io, arch, scales = IO, "onnx", [s]
    else:
        try:
            info = converter_for(fmt).inspect(path, None, "auto")
        except SrzooError as e:
            msg = str(e)
            raise type(e)(msg if str(path) in msg else f"{path}: {msg}") from None
        scales = [int(s) for s in (info.get("scales") or [info["scale"]])]
        io = dataclasses.replace(IO, color=str(info.get("color") or "rgb"),
                                 pre_upsample=info.get("pre_upsample"))
        arch = str(info.get("arch", ""))
    chosen = _pick_scale(path, scales, scale, exact)
    return ModelEntry(
        name=name, scale=chosen, format=fmt, io=io, arch=arch,
        license="unknown (a local file: see where you got it)",
        artifact=_local_artifact(path, sha, size), companions=companions,
        source=str(path.absolute()), description=f"{path.name} ({fmt}, given by path)",
        manifest=f"file {path.absolute()}",
    )


__all__ = ["SUFFIXES", "entry_for_path", "looks_like_path"]
