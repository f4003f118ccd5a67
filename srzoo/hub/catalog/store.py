"""The OpenModelDB catalogue as an artifact: pinned, verified, cached, updated.

OpenModelDB publishes its data as one JSON file per model in a GitHub
repository. srzoo builds ONE catalogue file from the repository at a commit
(``data/models/*.json`` and ``data/architectures.json``, read out of the
commit's tar.gz in memory) and serialises it deterministically, so the same
commit always gives the same bytes. A pin (``revision``, ``size``,
``sha256``) names that file; the shipped pin is in ``openmodeldb.toml``,
``srzoo catalog update`` writes a newer one into the cache folder. The file
lives at ``<cache>/catalog/openmodeldb-<rev12>.json`` and is re-hashed
against its pin every time it is loaded, so a changed file is never used.

Where it comes from, in order: the cache; ``SRZOO_MIRROR`` (a mirror holding
``openmodeldb-<rev12>.json``, like any model file); the upstream archive at
the pinned commit (not with ``SRZOO_OFFLINE=1`` or ``SRZOO_MIRROR_ONLY=1``).

Environment (declared in srzoo/config.py):
    SRZOO_CATALOG_UPSTREAM  scheme://host that replaces api.github.com and
                            codeload.github.com (a local copy of both)
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from srzoo import config, fsutil
from srzoo.errors import (
    ChecksumError,
    DownloadError,
    OfflineError,
    SrzooError,
    UnknownModel,
)
from srzoo.hub import cache, download, transfer
from srzoo.hub.catalog.records import Record, parse_record, settings
from srzoo.hub.manifest import Artifact
from srzoo.hub.untrusted import json_loads

SCHEMA = 1
#: upper bounds when reading an upstream archive (it is about 1.2 MB today)
MAX_ARCHIVE = 256 << 20
MAX_MEMBER = 4 << 20
_REV = re.compile(r"^[0-9a-f]{40}$")
_MEMBER = re.compile(r"^[^/]+/data/(?:models/([^/]+)\.json|(architectures)\.json)$")


class CatalogError(SrzooError):
    """The catalogue could not be fetched, built or verified."""


@dataclass(frozen=True)
class Pin:
    """Which catalogue file is in use: the upstream commit and the built file's size and hash."""

    revision: str
    size: int
    sha256: str
    origin: str = "shipped"

    @property
    def artifact(self) -> Artifact:
        return Artifact(file=f"openmodeldb-{self.revision[:12]}.json", size=self.size,
                        sha256=self.sha256, urls=(), subdir="catalog")


def _env_upstream() -> str | None:
    """``SRZOO_CATALOG_UPSTREAM``: a scheme://host standing in for GitHub (tests, mirrors)."""
    raw = str(config.get("SRZOO_CATALOG_UPSTREAM") or "").strip()
    if not raw:
        return None
    u = urlparse(raw)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise CatalogError(f"SRZOO_CATALOG_UPSTREAM={raw!r} is not an http(s)://host URL")
    return f"{u.scheme}://{u.netloc}"


def _upstream(template: str, **kw: str) -> str:
    url = template.format(**kw)
    base = _env_upstream()
    if base:
        u = urlparse(url)
        url = base + u.path + (f"?{u.query}" if u.query else "")
    return url


def shipped_pin() -> Pin:
    p = settings()["pin"]
    return Pin(revision=p["revision"], size=int(p["size"]), sha256=p["sha256"], origin="shipped")


def user_pin_path() -> Path:
    return cache.cache_dir() / "catalog" / "openmodeldb.pin.json"


def current_pin() -> Pin:
    """The pin ``srzoo catalog update`` wrote into the cache, else the shipped one."""
    path = user_pin_path()
    try:
        d = json.loads(path.read_text())
        pin = Pin(revision=d["revision"], size=int(d["size"]), sha256=d["sha256"], origin=str(path))
    except (FileNotFoundError, NotADirectoryError):  # none written (or no cache folder at all)
        return shipped_pin()
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CatalogError(f"{path}: unreadable catalogue pin ({e}); delete it to go back to "
                           "the pin shipped with srzoo, or run `srzoo catalog update`") from None
    if not _REV.match(pin.revision) or not re.match(r"^[0-9a-f]{64}$", pin.sha256):
        raise CatalogError(f"{path}: malformed catalogue pin; delete it or run `srzoo catalog update`")
    return pin


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        fsutil.atomic_write(path, data)
    except OSError as e:
        raise cache.os_error(e, Path(e.filename or path), "write") from None


# ---- building ------------------------------------------------------------------------------
def serialise(revision: str, models: dict[str, Any], architectures: dict[str, Any]) -> bytes:
    """The catalogue file's bytes: deterministic for the same content."""
    doc = {"schema": SCHEMA, "source": settings()["source"]["repository"], "revision": revision,
           "architectures": architectures, "models": models}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_from_archive(data: bytes, revision: str, where: str = "archive") -> bytes:
    """The catalogue file from a tar.gz of the repository (read in memory, never extracted).

    Only regular files named ``<top>/data/models/<id>.json`` and
    ``<top>/data/architectures.json`` are read; each is bounded in size.
    """
    models: dict[str, Any] = {}
    archs: dict[str, Any] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar:
                hit = _MEMBER.match(m.name)
                if not hit or not m.isfile():
                    continue
                if m.size > MAX_MEMBER:
                    raise CatalogError(f"{where}: {m.name} is {m.size} bytes, more than {MAX_MEMBER}")
                f = tar.extractfile(m)
                raw = json_loads(f.read(), f"{where}: {m.name}", "the record",
                                 CatalogError) if f else None
                if hit.group(1):
                    parse_record(hit.group(1), raw, where)  # refuse a malformed record now
                    models[hit.group(1)] = raw
                else:
                    archs = raw if isinstance(raw, dict) else {}
    except (tarfile.TarError, OSError, EOFError) as e:
        raise CatalogError(f"{where}: not a readable tar.gz ({e})") from None
    except ValueError as e:
        raise CatalogError(f"{where}: a record is not valid JSON ({e})") from None
    if not models:
        raise CatalogError(f"{where}: no data/models/*.json in the archive of {revision}")
    return serialise(revision, models, archs)


def _get(url: str, limit: int, accept: str | None = None) -> bytes:
    """GET ``url`` (at most ``limit`` bytes). The whole exchange is bounded: the
    answer's headers must arrive within ``SRZOO_TIMEOUT`` seconds in all, each
    body chunk within ``SRZOO_TIMEOUT``, and the body within ``SRZOO_TIMEOUT +
    limit / SRZOO_MIN_RATE`` (a server trickling bytes is cut off)."""
    import requests

    timeout = float(config.get("SRZOO_TIMEOUT"))
    headers = {"Accept": accept} if accept else {}
    start = time.monotonic()
    overall = start + transfer.time_bound(limit)
    shown = fsutil.redact(url)
    with transfer.new_session() as session, transfer.Watchdog(session, start + timeout) as watch:
        try:
            with session.get(url, headers=headers, stream=True, timeout=(timeout, timeout)) as r:
                if r.status_code >= 400:
                    raise CatalogError(f"{shown}: HTTP {r.status_code} {r.reason}")
                buf = bytearray()
                watch.extend(min(overall, time.monotonic() + timeout))
                for chunk in r.iter_content(64 * 1024):
                    buf += chunk
                    if len(buf) > limit:
                        raise CatalogError(f"{shown}: more than {limit} bytes; refused")
                    watch.extend(min(overall, time.monotonic() + timeout))
                if watch.fired:
                    raise requests.ConnectionError("cut off")
                return bytes(buf)
        except requests.RequestException as e:
            if watch.fired:
                raise CatalogError(f"{shown}: too slow: no complete answer within the time allowed "
                                   f"(SRZOO_TIMEOUT={timeout:g} s for the headers and each chunk, "
                                   f"{transfer.time_bound(limit):.0f} s in all); try again later") from None
            raise CatalogError(fsutil.redact(f"{shown}: {type(e).__name__}: {e}")) from None


def _network_allowed(what: str) -> None:
    if download.offline():
        raise OfflineError(f"{what} needs the network and SRZOO_OFFLINE=1 forbids it")
    if config.flag("SRZOO_MIRROR_ONLY") and not _env_upstream():
        raise DownloadError(f"{what} needs GitHub and SRZOO_MIRROR_ONLY=1 forbids it "
                            "(put openmodeldb-<rev12>.json in the mirror, or set SRZOO_CATALOG_UPSTREAM)")


def head_revision() -> str:
    """The newest commit of the OpenModelDB repository's main branch."""
    src = settings()["source"]
    _network_allowed("looking up the newest OpenModelDB revision")
    url = _upstream(src["head"], branch=src["branch"])
    rev = _get(url, 4096, accept="application/vnd.github.sha").decode("ascii", "replace").strip()
    if not _REV.match(rev):
        raise CatalogError(f"{url}: expected a commit id, got {rev[:60]!r}")
    return rev


def build_upstream(revision: str) -> bytes:
    """Download the repository archive at ``revision`` and build the catalogue file."""
    _network_allowed(f"building the OpenModelDB catalogue at {revision[:12]}")
    url = _upstream(settings()["source"]["archive"], revision=revision)
    return build_from_archive(_get(url, MAX_ARCHIVE), revision, where=url)


# ---- using ---------------------------------------------------------------------------------
def catalogue_path(pin: Pin | None = None, *, quiet: bool | None = True) -> Path:
    """The verified catalogue file of ``pin`` (default: the current one) in the cache."""
    pin = pin or current_pin()
    art = pin.artifact
    if cache.is_cached(art):
        return cache.path_for(art)
    failures = []
    if download.mirrors():
        try:
            return download.fetch_artifact(art, quiet=quiet, what=f"OpenModelDB catalogue {pin.revision[:12]}")
        except (DownloadError, OfflineError) as e:
            failures.append(str(e))
    try:
        data = build_upstream(pin.revision)
    except SrzooError as e:
        raise CatalogError(f"the OpenModelDB catalogue {pin.revision[:12]} is not in the cache "
                           f"{cache.cache_dir()} and could not be fetched: "
                           + " | ".join([*failures, str(e)])) from None
    got = hashlib.sha256(data).hexdigest()
    if len(data) != pin.size or got != pin.sha256:
        raise ChecksumError(f"the OpenModelDB catalogue built at {pin.revision[:12]} is {len(data)} bytes "
                            f"with sha256 {got}; the pin ({pin.origin}) says {pin.size} bytes, "
                            f"{pin.sha256}; not used")
    target = cache.path_for(art)
    _write_atomic(target, data)
    return target


@dataclass
class Catalogue:
    """A loaded catalogue: its revision, records by id and the architecture names."""

    revision: str
    records: dict[str, Record]
    architectures: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def get(self, rid: str) -> Record:
        from difflib import get_close_matches

        if rid in self.records:
            return self.records[rid]
        low = {k.lower(): k for k in self.records}
        if rid.lower() in low:
            return self.records[low[rid.lower()]]
        close = get_close_matches(rid.lower(), list(low), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join('omdb:' + low[c] for c in close)}?" if close else ""
        raise UnknownModel(f"no OpenModelDB record {rid!r} at revision {self.revision[:12]}.{hint} "
                           "Run 'srzoo list --catalog openmodeldb PATTERN' to search.")


def parse_catalogue(data: bytes, where: str) -> Catalogue:
    doc = json_loads(data, where, "the catalogue file", CatalogError)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("models"), dict):
        raise CatalogError(f"{where}: not a schema-{SCHEMA} srzoo catalogue file")
    recs = {rid: parse_record(rid, raw, where) for rid, raw in doc["models"].items()}
    return Catalogue(revision=str(doc.get("revision", "")), records=recs,
                     architectures=doc.get("architectures") or {})


_loaded: dict[tuple[Any, ...], Catalogue] = {}


def load(pin: Pin | None = None) -> Catalogue:
    """The catalogue of ``pin`` (default: current), fetched if needed and re-verified on load."""
    pin = pin or current_pin()
    path = catalogue_path(pin)
    st = path.stat()
    key = (str(path), pin.sha256, st.st_size, st.st_mtime_ns)
    if key in _loaded:
        return _loaded[key]
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if len(data) != pin.size or got != pin.sha256:
        raise ChecksumError(f"{path}: the cached OpenModelDB catalogue does not match its pin "
                            f"({len(data)} bytes, sha256 {got}; pin: {pin.size}, {pin.sha256}); "
                            "delete it and run `srzoo catalog update`")
    cat = parse_catalogue(data, str(path))
    cat.path = path
    _loaded.clear()
    _loaded[key] = cat
    return cat


def install(data: bytes, revision: str) -> Pin:
    """Put a built catalogue file into the cache and make it the current pin."""
    parse_catalogue(data, f"catalogue {revision[:12]}")
    pin = Pin(revision=revision, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
              origin=str(user_pin_path()))
    _write_atomic(cache.path_for(pin.artifact), data)
    _write_atomic(user_pin_path(), (json.dumps({"revision": pin.revision, "size": pin.size,
                                                "sha256": pin.sha256}, indent=2) + "\n").encode())
    return pin


# ---- updating ------------------------------------------------------------------------------
@dataclass
class Changes:
    """What moved between two catalogue revisions."""

    old_revision: str
    new_revision: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: (id, resource type, old sha256, new sha256) for files whose hash changed
    rehashed: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: ids whose record changed in other ways (description, tags, URLs...)
    edited: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"OpenModelDB catalogue: {self.old_revision[:12] or '(none)'} -> {self.new_revision[:12]}"]
        out += [f"+ omdb:{r}" for r in self.added]
        out += [f"- omdb:{r}" for r in self.removed]
        out += [f"~ omdb:{r} {t}: sha256 {o[:12] or '(none)'} -> {n[:12] or '(none)'}"
                for r, t, o, n in self.rehashed]
        out.append(f"{len(self.added)} added, {len(self.removed)} removed, {len(self.rehashed)} "
                   f"file hash(es) changed, {len(self.edited)} other record(s) edited")
        return out


def _hashes(rec: Record) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rec.resources:
        out.setdefault(r.type, set()).add(r.sha256)
    return out


def compare(old: Catalogue | None, new: Catalogue) -> Changes:
    ch = Changes(old.revision if old else "", new.revision)
    before = old.records if old else {}
    ch.added = sorted(set(new.records) - set(before))
    ch.removed = sorted(set(before) - set(new.records))
    for rid in sorted(set(before) & set(new.records)):
        a, b = _hashes(before[rid]), _hashes(new.records[rid])
        moved = False
        for t in sorted(set(a) | set(b)):
            if a.get(t, set()) != b.get(t, set()):
                ch.rehashed.append((rid, t, ",".join(sorted(a.get(t, set()))), ",".join(sorted(b.get(t, set())))))
                moved = True
        if not moved and before[rid].raw != new.records[rid].raw:
            ch.edited.append(rid)
    return ch


def update(revision: str | None = None) -> Changes:
    """Move to ``revision`` (default: the newest upstream) and report what changed."""
    try:
        old: Catalogue | None = load()
    except SrzooError:
        old = None
    rev = revision or head_revision()
    if old is not None and old.revision == rev:
        return Changes(rev, rev)
    data = build_upstream(rev)
    install(data, rev)
    return compare(old, load())


__all__ = ["Catalogue", "CatalogError", "Changes", "Pin", "build_from_archive", "catalogue_path",
           "compare", "current_pin", "head_revision", "install", "load", "shipped_pin", "update"]
