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

``srzoo catalog load FILE`` (:func:`load_file`) takes the catalogue from a
local file instead: the repository archive (.tar.gz or .zip) or a catalogue
.json built by srzoo, checked against the pin of its revision when there is one.

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
import zipfile
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
MAX_MEMBERS = 200_000
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


def _collect(members: Any, where: str, revision: str) -> bytes:
    """The catalogue file from ``(name, size, read)`` triples of an archive's regular files.

    Only ``<top>/data/models/<id>.json`` and ``<top>/data/architectures.json``
    are read; each is bounded in size (``read(limit)`` reads at most ``limit``
    bytes, so a member that lies about its size is caught too)."""
    models: dict[str, Any] = {}
    archs: dict[str, Any] = {}
    count = 0
    for name, size, read in members:
        count += 1
        if count > MAX_MEMBERS:
            raise CatalogError(f"{where}: more than {MAX_MEMBERS} entries; not an OpenModelDB archive")
        hit = _MEMBER.match(name)
        if not hit:
            continue
        if size > MAX_MEMBER:
            raise CatalogError(f"{where}: {name} is {size} bytes, more than {MAX_MEMBER}")
        body = read(MAX_MEMBER + 1)
        if len(body) > MAX_MEMBER:
            raise CatalogError(f"{where}: {name} holds more than {MAX_MEMBER} bytes")
        raw = json_loads(body, f"{where}: {name}", "the record", CatalogError)
        if hit.group(1):
            parse_record(hit.group(1), raw, where)  # refuse a malformed record now
            models[hit.group(1)] = raw
        else:
            archs = raw if isinstance(raw, dict) else {}
    if not models:
        raise CatalogError(f"{where}: no data/models/*.json in the archive of {revision}")
    return serialise(revision, models, archs)


def _tar_members(tar: tarfile.TarFile) -> Any:
    for m in tar:
        if m.isfile():
            f = tar.extractfile(m)
            yield m.name, m.size, (f.read if f else (lambda n: b""))


def build_from_archive(data: bytes, revision: str, where: str = "archive") -> bytes:
    """The catalogue file from a tar.gz of the repository (read in memory, never extracted)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            return _collect(_tar_members(tar), where, revision)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise CatalogError(f"{where}: not a readable tar.gz ({e})") from None
    except ValueError as e:
        raise CatalogError(f"{where}: a record is not valid JSON ({e})") from None


def _zip_members(zf: zipfile.ZipFile) -> Any:
    for info in zf.infolist():
        if not info.is_dir():
            def read(n: int, info: zipfile.ZipInfo = info) -> bytes:
                with zf.open(info) as f:
                    return f.read(n)
            yield info.filename, info.file_size, read


def build_from_zip(data: bytes, revision: str, where: str = "archive") -> bytes:
    """The catalogue file from a .zip of the repository (GitHub's "Download ZIP", or
    ``git archive --format=zip``), read in memory with the same bounds as a tar.gz."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _collect(_zip_members(zf), where, revision)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as e:
        raise CatalogError(f"{where}: not a readable zip ({e})") from None
    except ValueError as e:
        raise CatalogError(f"{where}: a record is not valid JSON ({e})") from None


_TOP_REV = re.compile(r"^[^/]*-([0-9a-f]{40})/")


def _archive_revision(data: bytes, kind: str, where: str) -> str | None:
    """The commit an archive holds, as ``git archive`` and GitHub record it: the pax
    global header's ``comment`` (tar) or the archive comment (zip), else a top
    folder named ``<repo>-<commit>``."""
    names: list[str] = []
    try:
        if kind == "tar.gz":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                first = tar.next()  # the pax global header is read with the first member
                comment = str(tar.pax_headers.get("comment", ""))
                names = [first.name + ("/" if first.isdir() else "")] if first else []
        else:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                comment = zf.comment.decode("ascii", "replace")
                names = [i.filename for i in zf.infolist()[:1]]
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CatalogError(f"{where}: not a readable {kind} ({e})") from None
    if _REV.match(comment.strip()):
        return comment.strip()
    for n in names:
        hit = _TOP_REV.match(n)
        if hit:
            return hit.group(1)
    return None


def read_file(path: Path, revision: str | None = None) -> tuple[bytes, str]:
    """A catalogue file's bytes and revision from a local file: an OpenModelDB
    repository archive (.tar.gz or .zip, the commit read from the archive or given
    as ``revision``) or a catalogue .json built by srzoo (refused unless its bytes
    are exactly what srzoo builds from its content)."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ARCHIVE + 1)
    except OSError as e:
        raise CatalogError(f"{where}: cannot read ({e.strerror or e})") from None
    if len(data) > MAX_ARCHIVE:
        raise CatalogError(f"{where}: more than {MAX_ARCHIVE >> 20} MB; not a catalogue file")
    if revision is not None and not _REV.match(revision):
        raise CatalogError(f"--revision {revision!r}: give the full 40-digit commit id")
    if data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04":
        kind = "tar.gz" if data[:2] == b"\x1f\x8b" else "zip"
        found = _archive_revision(data, kind, where)
        if revision and found and found != revision:
            raise CatalogError(f"{where}: the archive holds commit {found}, not {revision}")
        rev = revision or found
        if not rev:
            raise CatalogError(f"{where}: cannot tell which commit the archive holds; "
                               "give it with --revision COMMIT")
        build = build_from_archive if kind == "tar.gz" else build_from_zip
        return build(data, rev, where), rev
    if data.lstrip()[:1] == b"{":
        cat = parse_catalogue(data, where)
        doc = json_loads(data, where, "the catalogue file", CatalogError)
        if not _REV.match(cat.revision):
            raise CatalogError(f"{where}: the catalogue names no commit (revision {cat.revision[:60]!r})")
        if revision and revision != cat.revision:
            raise CatalogError(f"{where}: the catalogue is of commit {cat.revision}, not {revision}")
        if serialise(cat.revision, doc["models"], doc.get("architectures") or {}) != data:
            raise CatalogError(f"{where}: not a catalogue file as srzoo writes it (edited?); load the "
                               "OpenModelDB archive it was built from instead")
        return data, cat.revision
    raise CatalogError(f"{where}: neither an OpenModelDB archive (.tar.gz, .zip) nor a catalogue "
                       ".json written by srzoo")


def load_file(path: Path, revision: str | None = None) -> tuple["Changes", str]:
    """``srzoo catalog load FILE``: build or read the catalogue of a local file, check it
    against the pin of its revision when srzoo has one (the shipped pin, or the pin in
    the cache), store it in the cache as a fetched one and make it current. Returns
    what changed and how the file was verified."""
    data, rev = read_file(path, revision)
    sha = hashlib.sha256(data).hexdigest()
    pins = [shipped_pin()]
    try:
        pins.append(current_pin())
    except CatalogError:
        pass
    known = [p for p in pins if p.revision == rev]
    for p in known:
        if (p.size, p.sha256) != (len(data), sha):
            raise ChecksumError(f"{path}: the catalogue of {rev[:12]} built from it is {len(data)} bytes with "
                                f"sha256 {sha}; the pin ({p.origin}) says {p.size} bytes, {p.sha256}; "
                                "not loaded (the file is not that commit's, or was changed)")
    how = (f"matches the pin of {rev[:12]} ({known[0].origin})" if known else
           f"srzoo has no pin for {rev[:12]} to check it against: it is trusted as given")
    try:
        old: Catalogue | None = load()
    except SrzooError:
        old = None
    install(data, rev)
    return compare(old, load()), how


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
                           + " | ".join([*failures, str(e)])
                           + "; run `srzoo catalog update` with network, or load a catalogue file with "
                           "`srzoo catalog load FILE` (an OpenModelDB archive .tar.gz/.zip or a "
                           "catalogue .json)") from None
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


__all__ = ["Catalogue", "CatalogError", "Changes", "Pin", "build_from_archive", "build_from_zip",
           "catalogue_path", "compare", "current_pin", "head_revision", "install", "load", "load_file",
           "read_file", "shipped_pin", "update"]
