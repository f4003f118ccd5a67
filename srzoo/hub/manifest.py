"""Model and dataset manifests: the schema (:class:`ModelEntry`, :class:`Artifact`...) and
the parser that validates a manifest file (:func:`parse_manifest`).

Lookup across manifests is :mod:`srzoo.hub.registry`.

A manifest is a TOML file. Model manifests (one per family) look like::

    schema = 1

    [defaults]              # merged into every [[model]] below
    format = "tf-graphdef"
    license = "Apache-2.0"
    engine = "opencv"

    [defaults.io]           # how the network is fed
    color = "y"             # y (of OpenCV YCrCb) | bgr | rgb
    range = 1.0             # input values span [0, range]
    algorithm = "espcn"     # cv2.dnn_superres name, where one applies

    [[model]]
    name = "espcn"
    scale = 2
    file = "ESPCN_x2.pb"
    size = 86446
    sha256 = "59f7..."
    urls = ["https://raw.githubusercontent.com/..."]

Dataset manifests have a ``[dataset]`` table and a list of ``[[file]]``.
Everything is validated on load; a mistake is a :class:`ManifestError` that
names the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from srzoo.errors import ManifestError

SCHEMA_VERSION = 1

#: Formats a manifest may declare, and whether a file is downloaded for them.
FORMATS = {
    "tf-graphdef": True,
    "onnx": True,
    "keras-h5": True,
    "pytorch-pth": True,
    "ncnn": True,
    "tf-savedmodel": True,
    "keras-model": True,
    "interpolation": False,
}
#: Keys older manifests carry that srzoo now decides itself: accepted, ignored. Whether an
#: entry runs from its file as published or from an ONNX derived from it depends on the
#: engine (and on the OpenCV build), so it is asked of the engine, never written in a
#: manifest: :func:`srzoo.runtime.engines.plan`.
IGNORED_KEYS = frozenset({"needs_conversion"})

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_HEX_RE = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "git_blob_sha1": re.compile(r"^[0-9a-f]{40}$")}


@dataclass(frozen=True)
class IOSpec:
    """How a network is fed and how its output is read back.

    ``color``: ``y`` (luma of OpenCV's YCrCb; chroma is upscaled bilinearly and
    re-attached), ``bgr`` or ``rgb``. ``range``: network values span
    ``[0, range]``. ``mean``: subtracted per channel (BGR/RGB order as
    ``color``) in network units. ``algorithm``: the ``cv2.dnn_superres`` name,
    if any. ``outputs``: output tensor names; with ``output_scales`` a pyramid
    model (LapSRN) gives one output per scale. ``pre_upsample``: the network
    expects its input already upscaled (SRCNN, VDSR) with this interpolation
    (``bicubic-matlab``: MATLAB's antialiased a=-0.5 bicubic, :func:`srzoo.resample.imresize`).
    ``method``: for ``format = "interpolation"``, the OpenCV interpolation.
    ``export_layout``: the layout of the input and image outputs of the ONNX
    file ``srzoo export`` writes from a ``.pb``, the one OpenCV 5.1's
    ``dnn_superres`` feeds and reads for this algorithm: ``nhwc`` (the ``.pb``'s
    own; ESPCN, FSRCNN, LapSRN) or ``nchw`` (EDSR).
    """

    color: str = "bgr"
    range: float = 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    algorithm: str | None = None
    input: str | None = None
    outputs: tuple[str, ...] = ()
    output_scales: tuple[int, ...] = ()
    layout: str = "nhwc"
    pre_upsample: str | None = None
    method: str | None = None
    export_layout: str = "nhwc"


_IO_TYPES: dict[str, Any] = {
    "color": str, "range": (int, float), "mean": list, "algorithm": str, "input": str,
    "outputs": list, "output_scales": list, "layout": str, "pre_upsample": str, "method": str,
    "export_layout": str,
}
_IO_CHOICES = {
    "color": {"y", "bgr", "rgb"},
    "layout": {"nhwc", "nchw"},
    "export_layout": {"nhwc", "nchw"},
    "method": {"nearest", "bilinear", "bicubic", "lanczos", "area"},
    "pre_upsample": {"bicubic", "bilinear", "bicubic-matlab"},
}


@dataclass(frozen=True)
class Artifact:
    """A downloadable file: where to get it and how to recognise it."""

    file: str
    size: int
    sha256: str
    urls: tuple[str, ...]
    git_blob_sha1: str | None = None
    #: folder under the cache root where the verified file lives
    subdir: str = "models"
    #: the file ships inside the srzoo package (``srzoo/builtin/``): no download
    bundled: bool = False

    @property
    def hashes(self) -> dict[str, str]:
        """Every hash the manifest gives, keyed by algorithm name."""
        out = {"sha256": self.sha256}
        if self.git_blob_sha1:
            out["git-blob-sha1"] = self.git_blob_sha1
        return out


@dataclass(frozen=True)
class ModelEntry:
    """One model at one scale, as a manifest describes it.

    ``scale`` is ``None`` for interpolation methods, which work at any scale.
    ``artifact`` is ``None`` when no file is needed. ``format`` is what the
    published file is, the one fact about it: how an engine gets from that file
    to something it loads (as published, or from an ONNX that
    :mod:`srzoo.convert` derives and caches) is decided per engine by
    :func:`srzoo.runtime.engines.plan`.
    """

    name: str
    scale: int | None
    format: str
    license: str
    io: IOSpec
    artifact: Artifact | None = None
    engine: str = "opencv"
    paper: str = ""
    source: str = ""
    description: str = ""
    notes: str = ""
    arch: str = ""
    manifest: str = ""
    #: input pixels of context each output pixel depends on, per side (the
    #: receptive-field radius): the overlap tiles need for seamless results;
    #: ``None`` when the manifest does not say
    receptive_field: int | None = None
    #: for an archive artifact (zip, tar.gz): the member that is the model file
    member: str | None = None
    #: further files the model needs beside its main file (the ``.bin`` of an ncnn ``.param``)
    companions: tuple[Artifact, ...] = ()
    #: e.g. ("gan",): trained for perceptual quality, PSNR is not its goal
    tags: tuple[str, ...] = ()

    @property
    def file(self) -> str | None:
        return self.artifact.file if self.artifact else None

    @property
    def size(self) -> int:
        return self.artifact.size if self.artifact else 0

    @property
    def sha256(self) -> str | None:
        return self.artifact.sha256 if self.artifact else None

    def at_scale(self, scale: int) -> "ModelEntry":
        """The entry for a concrete scale (only changes scale-free entries)."""
        return self if self.scale is not None else dataclasses.replace(self, scale=int(scale))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name, "scale": self.scale, "file": self.file, "size": self.size,
            "sha256": self.sha256,
            "git_blob_sha1": self.artifact.git_blob_sha1 if self.artifact else None,
            "format": self.format, "license": self.license, "engine": self.engine,
            "member": self.member, "companions": [c.file for c in self.companions],
            "tags": list(self.tags),
            "urls": list(self.artifact.urls) if self.artifact else [],
            "paper": self.paper, "source": self.source, "manifest": self.manifest,
            "io": dataclasses.asdict(self.io), "receptive_field": self.receptive_field,
        }
        return d


@dataclass(frozen=True)
class Dataset:
    """A benchmark image set: a name and its verified files."""

    name: str
    description: str
    license: str
    source: str
    files: tuple[Artifact, ...]
    manifest: str = ""


_MODEL_KEYS = {
    "name": str, "scale": int, "file": str, "format": str, "size": int, "sha256": str,
    "git_blob_sha1": str, "urls": list, "license": str, "paper": str, "source": str,
    "description": str, "notes": str, "arch": str, "needs_conversion": bool, "engine": str,
    "io": dict, "receptive_field": int, "bundled": bool, "path": str, "member": str, "bin": dict,
    "tags": list,
}
_FILE_KEYS = {"file": str, "size": int, "sha256": str, "git_blob_sha1": str, "urls": list, "path": str}
_DATASET_KEYS = {"name": str, "description": str, "license": str, "source": str}


def _fail(path: Path | str, where: str, msg: str) -> ManifestError:
    return ManifestError(f"{path}: {where}: {msg}")


def _check_type(path: Path | str, where: str, key: str, value: Any, typ: Any) -> None:
    ok = isinstance(value, typ)
    if isinstance(value, bool) and typ is not bool:  # TOML true is no number
        ok = False
    if not ok:
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise _fail(path, where, f"key {key!r} must be {tname}, got {type(value).__name__}")


def _check_keys(path: Path | str, where: str, table: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    for key, value in table.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(path, where, f"unknown key {key!r}{hint}")
        _check_type(path, where, key, value, allowed[key])


def check_file_name(path: Path | str, where: str, name: str) -> None:
    """A cache file name must be one plain path component."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name or ":" in name:
        raise _fail(path, where, f"key 'file' must be a plain file name without path separators "
                                 f"or '..', got {name!r}")


def _artifact(path: Path, where: str, d: Mapping[str, Any], subdir: str) -> Artifact:
    bundled = bool(d.get("bundled", False))
    if "path" in d:  # a local file: the manifest's folder is the base of a relative path
        if "urls" in d:
            raise _fail(path, where, "give either 'urls' or 'path' (a local file), not both")
        local = Path(path).resolve().parent / Path(d["path"]).expanduser()  # an absolute one wins
        d = {"file": local.name, **d, "urls": [str(local)]}
    for key in ("file", "size", "sha256") + (() if bundled else ("urls",)):
        if key not in d:
            extra = ("; a file shipped in srzoo/builtin/ sets bundled = true instead of urls"
                     if key == "urls" else "")
            raise _fail(path, where, f"missing key {key!r} (every downloadable file needs "
                                     f"file, size, sha256 and urls or path{extra})")
    check_file_name(path, where, d["file"])
    if d["size"] <= 0:
        raise _fail(path, where, f"key 'size' must be positive, got {d['size']}")
    for key, rx in _HEX_RE.items():
        if key in d and not rx.fullmatch(d[key]):
            raise _fail(path, where, f"key {key!r} is not a lowercase hex digest: {d[key]!r}")
    urls = d.get("urls", [])
    if not urls and not bundled:
        raise _fail(path, where, "key 'urls' must list at least one URL (or set bundled = true "
                                 "for a file shipped in srzoo/builtin/)")
    for u in urls if "path" not in d else ():
        if not isinstance(u, str) or not re.match(r"^https?://", u):
            raise _fail(path, where, f"key 'urls' holds {u!r}, not an http(s) URL")
    return Artifact(file=d["file"], size=d["size"], sha256=d["sha256"], urls=tuple(urls),
                    git_blob_sha1=d.get("git_blob_sha1"), subdir=subdir, bundled=bundled)


def _io(path: Path, where: str, d: Mapping[str, Any]) -> IOSpec:
    _check_keys(path, where + ".io", d, _IO_TYPES)
    for key, choices in _IO_CHOICES.items():
        if key in d and d[key] not in choices:
            raise _fail(path, where + ".io", f"key {key!r} must be one of {sorted(choices)}, got {d[key]!r}")
    kw: dict[str, Any] = dict(d)
    if "mean" in kw:
        mean = kw["mean"]
        if (not all(isinstance(m, (int, float)) and not isinstance(m, bool) for m in mean)
                or len(mean) not in (1, 3)):
            raise _fail(path, where + ".io", "key 'mean' must be a list of 1 or 3 numbers")
        kw["mean"] = tuple(float(m) for m in mean)
    for key in ("outputs", "output_scales"):
        if key in kw:
            kw[key] = tuple(kw[key])
    if "range" in kw:
        kw["range"] = float(kw["range"])
    return IOSpec(**kw)


def _merge(defaults: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for k, v in model.items():
        if k == "io" and isinstance(v, dict) and isinstance(out.get("io"), dict):
            out["io"] = {**out["io"], **v}
        else:
            out[k] = v
    return out


def _model(path: Path, where: str, d: Mapping[str, Any]) -> ModelEntry:
    _check_keys(path, where, d, _MODEL_KEYS)
    for key in ("name", "format", "license"):
        if key not in d:
            raise _fail(path, where, f"missing key {key!r}")
    name = d["name"]
    if not _NAME_RE.fullmatch(name):
        raise _fail(path, where, f"key 'name' must be lowercase letters, digits, '-', '_' or '.', got {name!r}")
    fmt = d["format"]
    if fmt not in FORMATS:
        raise _fail(path, where, f"key 'format' must be one of {sorted(FORMATS)}, got {fmt!r}")
    if FORMATS[fmt]:
        artifact = _artifact(path, where, d, "models")
        if "scale" not in d:
            raise _fail(path, where, "missing key 'scale'")
    else:
        extra = sorted(k for k in _FILE_KEYS if k in d)
        if extra:
            raise _fail(path, where, f"format {fmt!r} needs no file, but keys {extra} are set")
        artifact = None
    scale = d.get("scale")
    if scale is not None and scale < 1:
        raise _fail(path, where, f"key 'scale' must be a positive integer, got {scale}")
    member = d.get("member")
    if member is not None and (not member or member.startswith("/") or ".." in member.split("/")):
        raise _fail(path, where, f"key 'member' must be a relative path inside the archive, got {member!r}")
    companions: tuple[Artifact, ...] = ()
    if fmt == "ncnn":
        if "bin" not in d or not isinstance(d["bin"], dict):
            raise _fail(path, where, "an ncnn entry names its .param as 'file' and its weights as a "
                                     "table 'bin' (file, size, sha256, urls or path)")
        _check_keys(path, where + ".bin", d["bin"], _FILE_KEYS)
        companions = (_artifact(path, where + ".bin", d["bin"], "models"),)
        assert artifact is not None  # ncnn is a format with a file
        if Path(companions[0].file).stem != Path(artifact.file).stem:
            raise _fail(path, where, "the ncnn .bin must have the .param's name with .bin "
                                     f"({Path(artifact.file).stem}.bin)")
    elif "bin" in d:
        raise _fail(path, where, "key 'bin' is only for format 'ncnn'")
    io = _io(path, where, d.get("io", {}))
    rf = d.get("receptive_field")
    if rf is not None and rf < 0:
        raise _fail(path, where, f"key 'receptive_field' must be >= 0 input pixels, got {rf}")
    if fmt == "interpolation" and not io.method:
        raise _fail(path, where, "an interpolation model needs io.method")
    return ModelEntry(
        name=name, scale=scale, format=fmt, license=d["license"], io=io, artifact=artifact,
        engine=d.get("engine", "opencv"), paper=d.get("paper", ""), source=d.get("source", ""),
        description=d.get("description", ""), notes=d.get("notes", ""), arch=d.get("arch", ""),
        manifest=str(path), receptive_field=rf, member=member, companions=companions,
        tags=tuple(str(t) for t in d.get("tags", ())),
    )


#: a manifest bigger than this is refused (the shipped ones: a few KiB)
MAX_MANIFEST_BYTES = 16 << 20


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed manifest: a regular file (no device or FIFO) of at most
    :data:`MAX_MANIFEST_BYTES`, UTF-8 TOML, not nested deeper than tomllib can recurse."""
    try:
        with open(path, "rb", opener=_open_regular) as f:  # a regular file, or ManifestError
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise ManifestError(f"{path}: cannot read manifest: {e.strerror or e}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: more than {MAX_MANIFEST_BYTES >> 20} MiB; not a manifest")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not valid TOML: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ManifestError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def _open_regular(path: str, flags: int) -> int:
    """os.open that never blocks on a FIFO (O_NONBLOCK; cleared checks follow in _read_toml)."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ManifestError(f"{path}: is not a regular file; a manifest is a TOML file")
    return fd


def parse_manifest(path: str | os.PathLike[str]) -> tuple[list[ModelEntry], list[Dataset]]:
    """Read and validate one manifest file."""
    path = Path(path)
    doc = _read_toml(path)
    _check_keys(path, "top level", doc,
                {"schema": int, "defaults": dict, "model": list, "dataset": dict, "file": list})
    if doc.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise _fail(path, "schema", f"unsupported schema {doc['schema']} (this srzoo reads {SCHEMA_VERSION})")
    models: list[ModelEntry] = []
    datasets: list[Dataset] = []
    defaults = doc.get("defaults", {})
    _check_keys(path, "defaults", defaults, _MODEL_KEYS)
    seen: set[tuple[str, int | None]] = set()
    for i, raw in enumerate(doc.get("model", [])):
        where = f"model[{i}]" + (f" ({raw.get('name')} x{raw.get('scale')})" if isinstance(raw, dict) else "")
        if not where.isprintable():  # a hostile name or scale: the message stays one line
            where = f"model[{i}]"
        if not isinstance(raw, dict):
            raise _fail(path, where, "each [[model]] must be a table")
        entry = _model(path, where, _merge(defaults, raw))
        key = (entry.name, entry.scale)
        if key in seen:
            raise _fail(path, where, f"duplicate entry for {entry.name} x{entry.scale}")
        seen.add(key)
        models.append(entry)
    if "dataset" in doc or "file" in doc:
        meta = doc.get("dataset", {})
        _check_keys(path, "dataset", meta, _DATASET_KEYS)
        for key in ("name", "license", "source"):
            if key not in meta:
                raise _fail(path, "dataset", f"missing key {key!r}")
        if not _NAME_RE.fullmatch(meta["name"]):
            raise _fail(path, "dataset", f"key 'name' must be lowercase, got {meta['name']!r}")
        files = []
        for i, raw in enumerate(doc.get("file", [])):
            where = f"file[{i}]"
            if not isinstance(raw, dict):
                raise _fail(path, where, "each [[file]] must be a table")
            _check_keys(path, where, raw, _FILE_KEYS)
            files.append(_artifact(path, where, raw, f"datasets/{meta['name']}"))
        if not files:
            raise _fail(path, "file", "a dataset manifest needs at least one [[file]]")
        datasets.append(Dataset(name=meta["name"], description=meta.get("description", ""),
                                license=meta["license"], source=meta["source"],
                                files=tuple(files), manifest=str(path)))
    return models, datasets


__all__ = ["Artifact", "Dataset", "FORMATS", "IOSpec", "ModelEntry", "SCHEMA_VERSION", "check_file_name",
           "parse_manifest"]
