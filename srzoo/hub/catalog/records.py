"""OpenModelDB records: parsing, and what srzoo can do with each one.

A record is one ``data/models/<id>.json`` of the OpenModelDB repository. Each
names an architecture, a scale, a licence and one or more resources (weight
files with type ``pth``, ``safetensors`` or ``onnx``, their size, sha256 and
URLs). What srzoo runs is read from ``openmodeldb.toml`` (architectures,
formats, size tags); :mod:`.entries` turns a record into the
:class:`~srzoo.hub.manifest.ModelEntry` that ``omdb:<id>`` resolves to.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from srzoo.errors import ManifestError, SrzooError, UnknownModel
from srzoo.hub import hosts
from srzoo.hub.manifest import Artifact, IOSpec

PREFIX = "omdb:"
SETTINGS = Path(__file__).with_name("openmodeldb.toml")
#: OpenModelDB resource type -> srzoo format name
FORMAT_OF = {"pth": "pytorch-pth", "safetensors": "safetensors", "onnx": "onnx"}
#: how every OpenModelDB image model is fed (RGB in [0,1], NCHW), as the converters emit it
IO = IOSpec(color="rgb", range=1.0, layout="nchw")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class ManualDownload(SrzooError):
    """The file is only on hosts a script cannot download from (Google Drive, Mega, ...)."""


class UnsupportedArchitecture(SrzooError):
    """srzoo has no converter for the record's architecture (or its size tags)."""


@lru_cache(maxsize=1)
def settings() -> dict[str, Any]:
    """The parsed ``openmodeldb.toml`` shipped with srzoo."""
    with open(SETTINGS, "rb") as f:
        return tomllib.load(f)


def runnable_archs() -> dict[str, dict[str, Any]]:
    """Architectures srzoo converts: id -> {name, formats, size_tags}."""
    return dict(settings()["arch"])


def runs_today() -> str:
    """One phrase naming what srzoo runs, for error messages."""
    names = ", ".join(f"{k} ({v['name']})" for k, v in runnable_archs().items())
    return f"srzoo runs {names} from .pth/.safetensors, and .onnx files directly"


def normalise_url(url: str) -> str:
    """A download link for page links that have one: GitHub and Hugging Face ``/blob/``,
    and the share links of the hosts :mod:`srzoo.hub.hosts` follows (Google Drive files)."""
    direct = hosts.direct_url(url)
    if direct is not None:
        return direct
    u = urlparse(url)
    if u.netloc == "github.com" and "/blob/" in u.path:
        return url.replace("/blob/", "/raw/", 1)
    if u.netloc == "huggingface.co" and "/blob/" in u.path:
        return url.replace("/blob/", "/resolve/", 1)
    return url


def is_direct(url: str) -> bool:
    """True when a script can download the file at ``url`` (not a Drive/Mega/... page)."""
    hosts = settings()["hosts"]
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        return False
    if u.netloc.lower() in hosts["manual"]:
        return False
    return not any(p in u.path for p in hosts["manual_paths"])


def non_commercial(license: str | None) -> bool:
    """True for licences that forbid commercial use (the Creative Commons NC family)."""
    return bool(license) and "-NC" in license.upper()


def _file_name(url: str, rid: str, rtype: str) -> str:
    name = Path(urlparse(url).path).name
    ok = (name and not name.startswith(".") and re.match(r"^[A-Za-z0-9._+-]+$", name)
          and name.lower().endswith("." + rtype))
    return name if ok else f"{rid}.{rtype}"


@dataclass(frozen=True)
class Resource:
    """One weight file of a record."""

    type: str
    platform: str
    size: int
    sha256: str
    urls: tuple[str, ...]

    @property
    def format(self) -> str:
        return FORMAT_OF.get(self.type, self.type)

    @property
    def direct_urls(self) -> tuple[str, ...]:
        return tuple(normalise_url(u) for u in self.urls if is_direct(normalise_url(u)))

    @property
    def manual_urls(self) -> tuple[str, ...]:
        return tuple(u for u in self.urls if not is_direct(normalise_url(u)))

    @property
    def scripted_urls(self) -> tuple[str, ...]:
        """Links that are no plain download but that srzoo.hub.hosts fetches with the host's
        own protocol (Mega public files)."""
        return tuple(u for u in self.urls if not is_direct(normalise_url(u)) and hosts.scripted(u))

    @property
    def downloadable(self) -> bool:
        return bool(self.direct_urls or self.scripted_urls)

    def artifact(self, rid: str) -> Artifact:
        first = (self.direct_urls or self.urls or ("",))[0]
        return Artifact(file=_file_name(first, rid, self.type), size=self.size, sha256=self.sha256,
                        urls=self.direct_urls, subdir=f"models/omdb/{rid}")


@dataclass(frozen=True)
class Record:
    """One OpenModelDB model record (``raw`` is the JSON as published)."""

    id: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    resources: tuple[Resource, ...] = ()

    @property
    def name(self) -> str:
        return str(self.raw.get("name", self.id))

    @property
    def arch(self) -> str:
        return str(self.raw.get("architecture", ""))

    @property
    def scale(self) -> int:
        return int(self.raw.get("scale", 1))

    @property
    def license(self) -> str:
        return self.raw.get("license") or "unknown"

    @property
    def non_commercial(self) -> bool:
        return non_commercial(self.raw.get("license"))

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self.raw.get("tags") or ())

    @property
    def size_tags(self) -> tuple[str, ...]:
        return tuple(str(s) for s in (self.raw.get("size") or ()))

    @property
    def author(self) -> str:
        a = self.raw.get("author", "")
        return ", ".join(a) if isinstance(a, list) else str(a)

    @property
    def downloadable(self) -> bool:
        """A script can download at least one of its files."""
        return any(r.downloadable for r in self.resources)

    def why_not_runnable(self, resource: Resource | None = None) -> str | None:
        """None when srzoo can run ``resource`` (default: the chosen one), else why not."""
        res = resource or self.resource()
        if res is None:
            return f"omdb:{self.id} lists no weight file"
        channels = (self.raw.get("inputChannels", 3), self.raw.get("outputChannels", 3))
        if channels != (3, 3):
            return (f"omdb:{self.id} takes {channels[0]} and returns {channels[1]} channels; "
                    "srzoo runs 3-channel colour models")
        if self.arch in settings().get("video", {}).get("archs", ()):
            return (f"omdb:{self.id} is a video model ({self.arch}: several frames in, one out); "
                    "srzoo runs single-image models (srzoo.upscale_video runs those frame by frame)")
        if res.format == "onnx":
            return None
        spec = runnable_archs().get(self.arch)
        if spec is None:
            return (f"omdb:{self.id} is a {self.arch or 'unknown'} model and srzoo has no converter "
                    f"for {self.arch or 'it'}; {runs_today()}")
        if res.format not in spec["formats"]:
            return f"omdb:{self.id}: srzoo converts {self.arch} from {', '.join(spec['formats'])}, not {res.format}"
        bad = [t for t in self.size_tags if not any(re.match(p, t) for p in spec["size_tags"])]
        if bad:
            return (f"omdb:{self.id}: size tags {bad} are not a {spec['name']} shape srzoo knows "
                    f"(expected tags like {', '.join(spec['size_tags'])})")
        return None

    @property
    def runnable(self) -> str:
        """``yes`` (converted from .pth/.safetensors), ``onnx`` (run as published), or ``no``."""
        res = self.resource()
        if res is None or self.why_not_runnable(res):
            return "no"
        return "onnx" if res.format == "onnx" else "yes"

    def resource(self, rtype: str | None = None) -> Resource | None:
        """The file srzoo uses: ``rtype`` if given, else the best one it can run and fetch.

        Order: a convertible .pth/.safetensors a script can fetch, a fetchable .onnx,
        then the same without a fetchable link (downloaded by hand), then anything.
        """
        cands = [r for r in self.resources if rtype is None or r.type == rtype]
        if not cands:
            return None

        def rank(r: Resource) -> tuple[int, int]:
            ok = self.why_not_runnable(r) is None
            kind = 0 if (ok and r.format != "onnx") else 1 if ok else 2
            return (0 if r.downloadable else 1, kind) if ok else (2, kind)

        return min(cands, key=lambda r: (rank(r), self.resources.index(r)))


def parse_record(rid: str, raw: Any, where: str = "catalogue") -> Record:
    """Validate one record's fields that srzoo relies on; ManifestError names the record."""
    def fail(msg: str) -> ManifestError:
        return ManifestError(f"{where}: record {rid!r}: {msg}")

    if not _ID.match(rid):
        raise fail("id must be letters, digits, '.', '_', '+' or '-'")
    if not isinstance(raw, dict):
        raise fail(f"must be a JSON object, got {type(raw).__name__}")
    scale = raw.get("scale")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise fail(f"'scale' must be a positive integer, got {scale!r}")
    res = []
    resources = raw.get("resources") or []
    if not isinstance(resources, list):
        raise fail(f"'resources' must be a list, got {type(resources).__name__}")
    for i, r in enumerate(resources):
        if not isinstance(r, dict):
            raise fail(f"resources[{i}] must be an object")
        size, sha, urls = r.get("size"), r.get("sha256"), r.get("urls") or []
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise fail(f"resources[{i}].size must be a positive integer, got {size!r}")
        if not isinstance(sha, str) or not _HEX64.match(sha.lower()):
            raise fail(f"resources[{i}].sha256 is not a sha256 hex digest: {sha!r}")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise fail(f"resources[{i}].urls must be a list of strings")
        res.append(Resource(type=str(r.get("type", "")), platform=str(r.get("platform", "")),
                            size=size, sha256=sha.lower(), urls=tuple(urls)))
    return Record(id=rid, raw=raw, resources=tuple(res))


def split_name(name: str) -> tuple[str, str | None]:
    """``omdb:ID[@type]`` -> (ID, type or None)."""
    body = name[len(PREFIX):] if name.lower().startswith(PREFIX) else name
    rid, _, rtype = body.partition("@")
    if rtype and rtype not in FORMAT_OF:
        raise UnknownModel(f"{name!r}: '@{rtype}' is not a resource type (use @pth, @safetensors or @onnx)")
    return rid, rtype or None


__all__ = ["FORMAT_OF", "IO", "ManualDownload", "PREFIX", "Record", "Resource", "UnsupportedArchitecture",
           "is_direct", "non_commercial", "parse_record", "runnable_archs", "runs_today",
           "split_name"]
