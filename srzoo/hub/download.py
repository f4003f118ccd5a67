"""Fetch an artifact into the cache: mirrors first, then the manifest URLs.

Every byte goes to a partial file under ``<cache>/.incomplete``; only after the
size and every manifest hash match is it renamed into place, so the cache
never holds an unverified file. Sources are tried in order and *any* failure
of one source (HTTP error, redirect loop or redirect to a forbidden place,
undecodable body, malformed URL, too slow, wrong bytes) moves on to the next;
when all fail, :class:`DownloadError` lists every source and why.

* Interrupted transfers resume with HTTP ``Range``, but only from the source
  that produced the partial (recorded beside it, with the ETag or
  Last-Modified sent back as ``If-Range``); bytes from another source are
  never resumed from.
* Connection errors, time-outs, 429 and 5xx answers are retried with
  exponential back-off; a 4xx moves on at once.
* A 200 answer whose announced size differs from the manifest's (a captive
  portal's or rate limiter's HTML page) is refused before its body is read;
  a server that sends more than the manifest's size is cut off.
* A local mirror folder is searched recursively by file name (:mod:`srzoo.hub.mirror`).
* Redirects: at most ``SRZOO_MAX_REDIRECTS``, only to http(s), and with
  ``SRZOO_MIRROR_ONLY`` only to the same host.
* No source can hang: each gets ``SRZOO_TIMEOUT + remaining bytes /
  SRZOO_MIN_RATE`` seconds in all (retries included), then the next is tried.
* One process downloads a file at a time (a file lock); the others wait and
  say so, and give up with an error if the holder makes no progress for the
  same bound.
* Disk full, read-only cache, a file where a folder should be: one
  :class:`CacheError` naming the path; the partial of a failed write is deleted.

Settings are read through :mod:`srzoo.config`. This module orders the sources
and keeps or discards what they delivered; moving one source's bytes is
:mod:`srzoo.hub.transfer`, the partial files :mod:`srzoo.hub.partial`.
"""

from __future__ import annotations

import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import filelock

from srzoo import config
from srzoo.errors import (
    CacheError,
    ChecksumError,
    DownloadError,
    OfflineError,
    SrzooError,
)
from srzoo.fsutil import redact
from srzoo.hub import cache, mirror
from srzoo.hub.manifest import Artifact
from srzoo.hub.partial import DiskError, Partial
from srzoo.hub.transfer import (
    Fatal,
    Progress,
    copy_local,
    http_fetch,
    is_url,
    new_session,
    time_bound,
)


def offline() -> bool:
    """True when ``SRZOO_OFFLINE`` forbids network access."""
    return config.flag("SRZOO_OFFLINE")


def mirrors() -> list[str]:
    """The bases named by ``SRZOO_MIRROR``, in order."""
    return list(config.get("SRZOO_MIRROR"))


def sources(artifact: Artifact) -> list[str]:
    """Every place the file may come from, in the order they are tried. A model
    file given by path (``models/local/``, :mod:`srzoo.convert.localmodel`) comes
    from that path only."""
    if artifact.subdir.startswith("models/local/"):
        return [u for u in artifact.urls if not is_url(u)]
    out = []
    for m in mirrors():
        if is_url(m):
            out.append(m.rstrip("/") + "/" + artifact.file)
        else:  # a folder: searched recursively by file name (hub.mirror, bounded)
            base = Path(m[7:] if m.startswith("file://") else m).expanduser()
            found = mirror.find(base, artifact.file) or [base / artifact.file]
            out.extend(str(p) for p in found)
    if not config.flag("SRZOO_MIRROR_ONLY"):
        out.extend(artifact.urls)
    else:  # a manifest's local file ('path' key) is not a download: always allowed
        out.extend(u for u in artifact.urls if not is_url(u))
    return out


# --------------------------------------------------------------------------- locking
@contextmanager
def _locked(artifact: Artifact, partial: Partial, quiet: bool | None, what: str) -> Iterator[None]:
    lock_file = cache.lock_path(artifact)
    cache.ensure_dir(lock_file.parent)
    lock = filelock.FileLock(str(lock_file))
    try:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            bound = time_bound(artifact.size)
            if quiet is not True:
                print(f"srzoo: waiting for another process to finish downloading {what} "
                      f"({artifact.file}; lock {lock_file}); giving up after {bound:.0f} s "
                      "without progress", file=sys.stderr, flush=True)
            last, since = partial.mark(), time.monotonic()
            while True:
                try:
                    lock.acquire(timeout=min(0.5, bound))
                    break
                except filelock.Timeout:
                    mark = partial.mark()
                    if mark != last:
                        last, since = mark, time.monotonic()
                    elif time.monotonic() - since > bound:
                        raise DownloadError(
                            f"gave up waiting for another process downloading {what} "
                            f"({artifact.file}): it made no progress for {bound:.0f} s; stop that "
                            f"process (it holds {lock_file}) or try again later") from None
    except OSError as e:
        raise cache.os_error(e, lock_file, "lock") from None
    try:
        yield
    finally:
        lock.release()


_bundled_ok: set[tuple[str, str]] = set()


def _check_bundled(artifact: Artifact, path: Path, what: str) -> Path:
    """A file shipped inside the package: verified once per process, never downloaded."""
    key = (str(path), artifact.sha256)
    if key not in _bundled_ok:
        bad = cache.problems(path, artifact)
        if bad:
            raise ChecksumError(f"{what}: the copy shipped with srzoo at {path} is damaged or missing "
                                f"({'; '.join(bad)}); reinstall srzoo (pip install --force-reinstall srzoo)")
        _bundled_ok.add(key)
    return path


# --------------------------------------------------------------------------- the entry point
def fetch_artifact(artifact: Artifact, *, force: bool = False, quiet: bool | None = None,
                   what: str | None = None) -> Path:
    """Make sure the verified file of ``artifact`` is in the cache; return its path.

    ``force`` re-downloads even when a copy is cached (use it to repair a file
    that ``srzoo cache verify`` reports as corrupt). ``what`` is the name used
    in error messages (e.g. ``"espcn x4"``). A cached copy that changed since
    it was verified is re-hashed; a damaged one is moved aside and fetched again.
    """
    target = cache.path_for(artifact)
    what = what or artifact.file
    if artifact.bundled:
        return _check_bundled(artifact, target, what)
    note = None
    if not force:
        ok, note = cache.trusted(artifact)
        if ok:
            return target
    srcs = sources(artifact)
    if offline():
        srcs = [s for s in srcs if not is_url(s)]
        if not srcs:
            first = f"{note}. " if note else ""
            raise OfflineError(
                f"{first}{what} ({artifact.file}) is not in the cache {cache.cache_dir()} and "
                "SRZOO_OFFLINE=1 forbids downloading it. Run `srzoo fetch` on a machine with "
                "network and copy the cache, point SRZOO_MIRROR at a folder holding the file, "
                "or unset SRZOO_OFFLINE.")
    if not srcs:
        raise DownloadError(f"{what}: no source to fetch {artifact.file} from "
                            "(SRZOO_MIRROR_ONLY=1 and SRZOO_MIRROR is empty)")
    if note and quiet is not True:
        print(f"srzoo: {note}; fetching it again", file=sys.stderr, flush=True)
    partial = Partial(artifact)
    try:
        if target.is_dir():
            raise CacheError(f"{target} is a folder where the file of {what} should be; "
                             "remove it (or run `srzoo cache rm`) and try again")
        cache.ensure_dir(partial.path.parent)
        cache.ensure_dir(target.parent)
        with _locked(artifact, partial, quiet, what):
            if not force:
                ok, _ = cache.trusted(artifact)
                if ok:  # another process fetched it meanwhile
                    return target
            return _fetch_locked(artifact, srcs, partial, target, quiet, what)
    except DiskError as e:
        partial.discard()  # never leave a partial that filled the disk
        raise cache.os_error(e.err, e.path, "write") from None
    except SrzooError:
        raise
    except OSError as e:
        raise cache.os_error(e, Path(e.filename) if e.filename else cache.cache_dir(),
                             "use") from None


def _fetch_locked(artifact: Artifact, srcs: list[str], partial: Partial, target: Path,
                  quiet: bool | None, what: str) -> Path:
    failures: list[tuple[str, str]] = []
    checksum_failed = False
    progress = Progress(artifact, quiet)
    try:
        with new_session() as session:
            for src in srcs:
                try:
                    if is_url(src):
                        http_fetch(session, src, partial, artifact, progress)
                    else:
                        copy_local(Path(src), partial, artifact)
                except Fatal as e:
                    failures.append((src, _cause(src, str(e))))
                    if e.discard:
                        partial.discard()
                    continue
                bad = cache.problems(partial.path, artifact)
                if bad:
                    partial.discard()
                    checksum_failed = True
                    failures.append((src, "; ".join(bad)))
                    continue
                os.replace(partial.path, target)
                partial.discard()  # the source record
                cache.record(artifact)
                return target
    finally:  # a partial that passed no check stays for a resume from its own source
        progress.close()
    cls = ChecksumError if checksum_failed else DownloadError
    err = cls(failure_line(what, artifact.file, failures))
    err.failures = [(redact(s), redact(c)) for s, c in failures]  # type: ignore[attr-defined]
    raise err


# --------------------------------------------------------------------------- the error line
#: how long the cause and its source may be in the line (one of many sources / the only one),
#: and each other cause
_CAUSE_MAX, _ONLY_CAUSE_MAX, _SOURCE_MAX, _ONLY_SOURCE_MAX, _OTHER_MAX = 110, 200, 48, 120, 30
_LONG_HEX = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{28,}\b")


def _cause(src: str, message: str) -> str:
    """A source's failure without the source in front (it is kept beside it)."""
    return message[len(src) + 2:] if message.startswith(src + ": ") else message


def _weight(cause: str) -> int:
    """How much a cause tells: wrong bytes > a server's or reader's error > the file is absent."""
    low = cause.lower()
    if "mismatch" in low or "manifest" in low or "cut off" in low:
        return 2
    if "http 404" in low or "no such file" in low or "http 410" in low:
        return 0
    return 1


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _short_source(src: str, limit: int) -> str:
    """A source as ``host/.../file`` (or ``.../file``) when longer than ``limit``."""
    src = redact(src)
    if len(src) <= limit:
        return src
    head, _, tail = src.rpartition("/")
    host = head.split("/")[2] if is_url(src) and head.count("/") >= 2 else ""
    short = f"{host}/.../{tail}" if host else f".../{tail}"
    return _clip(short, limit)


def _short_cause(cause: str, file: str, limit: int) -> str:
    """A cause without the file name (the line names it) and with hashes cut to 12 digits."""
    cause = redact(cause).replace(f" for {file}:", ":")
    return _clip(_LONG_HEX.sub(r"\1...", cause), limit)


def failure_line(what: str, file: str, failures: list[tuple[str, str]]) -> str:
    """The one-line message of a fetch that failed everywhere: the most telling
    cause first (wrong bytes over a server's error over an absent file), the
    source that gave it, then how many others failed and how. Hashes are cut to
    12 digits; the full list is the exception's ``failures`` attribute, which
    ``srzoo -v`` prints."""
    if not failures:
        return f"could not fetch {what} ({file}): no source answered"
    best = max(range(len(failures)), key=lambda i: (_weight(failures[i][1]), -i))
    src, cause = failures[best]
    only = len(failures) == 1
    line = (f"could not fetch {what} ({file}): "
            f"{_short_cause(cause, file, _ONLY_CAUSE_MAX if only else _CAUSE_MAX)} "
            f"(from {_short_source(src, _ONLY_SOURCE_MAX if only else _SOURCE_MAX)})")
    others = [c for i, (_, c) in enumerate(failures) if i != best]
    if others:
        kinds: dict[str, int] = {}
        for c in others:
            key = _short_cause(c, file, _OTHER_MAX)
            kinds[key] = kinds.get(key, 0) + 1
        top = max(kinds, key=lambda k: kinds[k])
        listed = f"{top} x{kinds[top]}" if kinds[top] > 1 else top
        more = ", ..." if len(kinds) > 1 else ""
        line += f"; {len(others)} other source(s) failed too ({listed}{more}); `srzoo -v` lists them"
    return line


__all__ = ["failure_line", "fetch_artifact", "mirrors", "offline", "sources", "time_bound"]
