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
* Redirects: at most ``SRZOO_MAX_REDIRECTS``, only to http(s), and with
  ``SRZOO_MIRROR_ONLY`` only to the same host.
* No source can hang: each gets ``SRZOO_TIMEOUT + remaining bytes /
  SRZOO_MIN_RATE`` seconds in all (retries included), then the next is tried.
* One process downloads a file at a time (a file lock); the others wait and
  say so, and give up with an error if the holder makes no progress for the
  same bound.
* Disk full, read-only cache, a file where a folder should be: one
  :class:`CacheError` naming the path; the partial of a failed write is deleted.

Settings are read through :mod:`srzoo.config`.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urljoin, urlparse

import filelock
import requests
import urllib3

from srzoo import config
from srzoo._version import __version__
from srzoo.errors import (
    CacheError,
    ChecksumError,
    DownloadError,
    OfflineError,
    SrzooError,
)
from srzoo.hub import cache
from srzoo.hub.manifest import Artifact

CHUNK = 64 * 1024


def offline() -> bool:
    """True when ``SRZOO_OFFLINE`` forbids network access."""
    return config.flag("SRZOO_OFFLINE")


def mirrors() -> list[str]:
    """The bases named by ``SRZOO_MIRROR``, in order."""
    return list(config.get("SRZOO_MIRROR"))


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _host(url: str) -> str | None:
    try:
        return urlparse(url).hostname
    except ValueError:
        return None


def sources(artifact: Artifact) -> list[str]:
    """Every place the file may come from, in the order they are tried."""
    out = []
    for m in mirrors():
        if _is_url(m):
            out.append(m.rstrip("/") + "/" + artifact.file)
        else:
            base = Path(m[7:] if m.startswith("file://") else m).expanduser()
            out.append(str(base / artifact.file))
    if not config.flag("SRZOO_MIRROR_ONLY"):
        out.extend(artifact.urls)
    else:  # a manifest's local file ('path' key) is not a download: always allowed
        out.extend(u for u in artifact.urls if not _is_url(u))
    return out


def time_bound(nbytes: int) -> float:
    """Seconds one source gets to deliver ``nbytes`` (retries included), and how
    long a waiting process tolerates a lock holder that makes no progress:
    ``SRZOO_TIMEOUT + nbytes / SRZOO_MIN_RATE``."""
    return float(config.get("SRZOO_TIMEOUT")) + nbytes / float(config.get("SRZOO_MIN_RATE"))


class _Transient(Exception):
    """A failure worth retrying the same URL for (connection, time-out, 5xx)."""


class _Fatal(Exception):
    """A failure of this source; move on to the next one. ``discard``: the
    partial file holds bytes that must not be resumed from."""

    def __init__(self, message: str, *, discard: bool = False) -> None:
        super().__init__(message)
        self.discard = discard


class _DiskError(Exception):
    """Writing the partial failed (disk full, file too large, I/O error): no
    other source can help, so the whole fetch stops."""

    def __init__(self, err: OSError, path: Path) -> None:
        super().__init__(str(err))
        self.err = err
        self.path = path


class _Progress:
    """A tqdm bar on a terminal, nothing otherwise."""

    def __init__(self, artifact: Artifact, quiet: bool | None) -> None:
        if quiet is None:
            quiet = not sys.stderr.isatty()
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=artifact.size, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=artifact.file, file=sys.stderr, leave=False)

    def set(self, n: int) -> None:
        if self.bar is not None:
            self.bar.n = n
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- partial files
class _Partial:
    """The partial file of one artifact and the record of where its bytes came
    from (``<part>.json``: source, ETag, Last-Modified). The record's mtime is
    also the heartbeat that waiting processes watch."""

    def __init__(self, artifact: Artifact) -> None:
        self.path = cache.partial_path(artifact)
        self.meta_path = self.path.with_name(self.path.name + ".json")
        self._beat = 0.0

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def resumable_from(self, source: str) -> int:
        """Bytes that may be resumed from ``source`` (0 after deleting bytes of another origin)."""
        have = self.size()
        if have and self.meta().get("source") != source:
            self.discard()
            return 0
        return have

    def start(self, source: str, etag: str | None = None, last_modified: str | None = None) -> None:
        """Record that the partial is about to be (re)written from ``source``."""
        _write_small(self.meta_path, json.dumps(
            {"source": source, "etag": etag, "last_modified": last_modified}))
        self._beat = time.monotonic()

    def beat(self, force: bool = False) -> None:
        """Show waiting processes that this one is still working (at most once a second)."""
        now = time.monotonic()
        if force or now - self._beat >= 1.0:
            self._beat = now
            try:
                os.utime(self.meta_path)
            except OSError:
                pass

    def discard(self) -> None:
        for p in (self.path, self.meta_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def mark(self) -> tuple[int, int]:
        """What a waiting process compares to see progress: (partial size, record mtime)."""
        try:
            m = self.meta_path.stat().st_mtime_ns
        except OSError:
            m = 0
        return self.size(), m


def _write_small(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise _DiskError(e, path) from None


def _write_all(f: Any, data: bytes, path: Path) -> None:
    """Write all of ``data`` to an unbuffered file (raw writes may be short)."""
    view = memoryview(data)
    try:
        while view:
            n = f.write(view)
            if not n:
                raise OSError(errno.EIO, "write returned 0 bytes")
            view = view[n:]
    except OSError as e:
        raise _DiskError(e, path) from None


# --------------------------------------------------------------------------- sources
def _copy_local(src: Path, partial: _Partial, artifact: Artifact) -> None:
    try:
        size = src.stat().st_size
    except FileNotFoundError:
        raise _Fatal(f"{src}: no such file in the mirror folder") from None
    except OSError as e:
        raise _Fatal(f"{src}: cannot read: {e.strerror or e}") from None
    if not src.is_file():
        raise _Fatal(f"{src}: not a file")
    if size > artifact.size:
        raise _Fatal(f"{src}: {size} bytes, more than the manifest's {artifact.size}")
    try:
        fin = open(src, "rb")
    except OSError as e:
        raise _Fatal(f"{src}: cannot read: {e.strerror or e}") from None
    with fin:
        partial.start(str(src))
        try:
            fout = open(partial.path, "wb", buffering=0)
        except OSError as e:
            raise _DiskError(e, partial.path) from None
        with fout:
            while True:
                try:
                    chunk = fin.read(cache.CHUNK)
                except OSError as e:
                    raise _Fatal(f"{src}: read error: {e.strerror or e}", discard=True) from None
                if not chunk:
                    break
                _write_all(fout, chunk, partial.path)
            try:
                fout.flush()
                os.fsync(fout.fileno())
            except OSError as e:
                raise _DiskError(e, partial.path) from None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}".rstrip(": ")


def _get(session: requests.Session, url: str, headers: dict[str, str], timeout: float,
         max_redirects: int, same_host: bool) -> requests.Response:
    """GET ``url`` following redirects ourselves: bounded, http(s) only, and
    with ``same_host`` never to another host."""
    seen = [url]
    cur = url
    host = _host(url)
    for _ in range(max_redirects + 1):
        try:
            resp = session.get(cur, headers=headers, stream=True, timeout=(timeout, timeout),
                               allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as e:
            if isinstance(e, requests.exceptions.InvalidURL):  # pragma: no cover - subclass quirk
                raise _Fatal(f"{url}: invalid URL: {_short(e)}") from None
            raise _Transient(f"{url}: {_short(e)}") from None
        except (requests.RequestException, ValueError, urllib3.exceptions.HTTPError,
                http.client.HTTPException) as e:  # InvalidURL, InvalidSchema, bad port...
            raise _Fatal(f"{url}: {_short(e)}") from None
        if not resp.is_redirect:
            return resp
        resp.close()
        try:
            loc = urljoin(cur, resp.headers.get("location", ""))
        except ValueError:
            raise _Fatal(f"{url}: redirected to a malformed location "
                         f"{resp.headers.get('location')!r}") from None
        if not _is_url(loc):
            raise _Fatal(f"{url}: redirected to {loc!r}; only http and https redirects are followed")
        if same_host and _host(loc) != host:
            raise _Fatal(f"{url}: redirected to another host ({_host(loc)}); "
                         "SRZOO_MIRROR_ONLY=1 allows only the mirror's own host")
        if loc in seen:
            raise _Fatal(f"{url}: redirect loop ({' -> '.join(seen[-3:] + [loc])})")
        seen.append(loc)
        cur = loc
    raise _Fatal(f"{url}: more than {max_redirects} redirects (SRZOO_MAX_REDIRECTS)")


_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                socket.timeout, ConnectionError)


def _http_once(session: requests.Session, url: str, partial: _Partial, artifact: Artifact,
               timeout: float, deadline: float, progress: _Progress) -> None:
    """One HTTP attempt, resuming from what ``partial`` holds from this same URL."""
    have = partial.resumable_from(url)
    if have > artifact.size:
        partial.discard()
        have = 0
    if have == artifact.size:
        return
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        meta = partial.meta()
        etag, modified = meta.get("etag"), meta.get("last_modified")
        if etag and not str(etag).startswith("W/"):
            headers["If-Range"] = etag
        elif modified:
            headers["If-Range"] = modified
    # never wait on one read past the source's deadline
    timeout = max(0.05, min(timeout, deadline - time.monotonic()))
    resp = _get(session, url, headers, timeout, int(config.get("SRZOO_MAX_REDIRECTS")),
                config.flag("SRZOO_MIRROR_ONLY"))
    with resp:
        code = resp.status_code
        if code == 416 and have:
            partial.discard()  # our partial does not fit this server's file: start again
            raise _Transient(f"{url}: HTTP 416 on resume from byte {have}; restarting")
        if code >= 500 or code == 429:
            raise _Transient(f"{url}: HTTP {code} {resp.reason}")
        if code >= 400:
            raise _Fatal(f"{url}: HTTP {code} {resp.reason}")
        if code not in (200, 206):
            raise _Fatal(f"{url}: unexpected HTTP {code} {resp.reason}")
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        if code == 206:
            crange = resp.headers.get("Content-Range", "")
            try:
                first = int(crange.split()[1].split("-")[0])
                total = crange.rsplit("/", 1)[1]
            except (IndexError, ValueError):
                first, total = -1, "*"
            if not have or first != have:
                partial.discard()
                raise _Transient(f"{url}: HTTP 206 for bytes {crange!r}, not from byte {have}; "
                                 "restarting")
            if total != "*" and total != str(artifact.size):
                raise _Fatal(f"{url}: the server's file has {total} bytes, the manifest says "
                             f"{artifact.size}", discard=True)
            mode = "ab"
        else:  # 200: the whole file (the server ignored Range, or If-Range said it changed)
            mode, have = "wb", 0
            length = resp.headers.get("Content-Length")
            if not encoded and length is not None and length.isdigit() \
                    and int(length) != artifact.size:
                kind = resp.headers.get("Content-Type", "unknown type").split(";")[0]
                raise _Fatal(f"{url}: answered {length} bytes of {kind} where the manifest says "
                             f"{artifact.size} bytes (an error or login page?)", discard=True)
            partial.start(url, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
        progress.set(have)
        try:
            # unbuffered, so no write error can hide in close() behind another exception
            f = open(partial.path, mode, buffering=0)
        except OSError as e:
            raise _DiskError(e, partial.path) from None
        with f:
            # read1: at most one socket read, so the deadline is checked while a
            # server trickles (read() would block until a whole chunk arrived)
            read = getattr(resp.raw, "read1", None) or resp.raw.read  # read1: urllib3 >= 2
            try:
                while True:
                    chunk = read(CHUNK, decode_content=True)
                    if not chunk:
                        break
                    if have + len(chunk) > artifact.size:
                        _write_all(f, chunk[: artifact.size - have], partial.path)
                        raise _Fatal(f"{url}: server sent more than the manifest's "
                                     f"{artifact.size} bytes; cut off", discard=True)
                    _write_all(f, chunk, partial.path)
                    have += len(chunk)
                    progress.set(have)
                    partial.beat()
                    if time.monotonic() > deadline and have < artifact.size:
                        raise _Fatal(f"{url}: too slow: {have} of {artifact.size} bytes in the "
                                     f"{time_bound(artifact.size):.0f} s allowed (SRZOO_TIMEOUT + "
                                     "size / SRZOO_MIN_RATE)")
            except urllib3.exceptions.DecodeError as e:
                raise _Fatal(f"{url}: cannot decode the {resp.headers.get('Content-Encoding')} "
                             f"body: {_short(e)}", discard=True) from None
            except _READ_ERRORS as e:
                if isinstance(e, requests.exceptions.ContentDecodingError):
                    raise _Fatal(f"{url}: cannot decode the body: {_short(e)}", discard=True) from None
                if encoded:  # a decoded stream cannot be resumed by byte offset
                    raise _Fatal(f"{url}: interrupted at byte {have}: {_short(e)}",
                                 discard=True) from None
                raise _Transient(f"{url}: interrupted at byte {have}: {type(e).__name__}") from None
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise _DiskError(e, partial.path) from None
    if have < artifact.size:
        if encoded:
            raise _Fatal(f"{url}: compressed body ended at byte {have} of {artifact.size}",
                         discard=True)
        raise _Transient(f"{url}: connection closed at byte {have} of {artifact.size}")


def _sleep(seconds: float, beat: Callable[[], None]) -> None:
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))
        beat()


def _http(session: requests.Session, url: str, partial: _Partial, artifact: Artifact,
          progress: _Progress) -> None:
    timeout = float(config.get("SRZOO_TIMEOUT"))
    retries = int(config.get("SRZOO_RETRIES"))
    delay = float(config.get("SRZOO_BACKOFF"))
    have = partial.size() if partial.meta().get("source") == url else 0
    deadline = time.monotonic() + time_bound(max(artifact.size - have, 0))
    for attempt in range(retries + 1):
        partial.beat(force=True)
        try:
            _http_once(session, url, partial, artifact, timeout, deadline, progress)
            return
        except _Transient as e:
            if attempt == retries:
                raise _Fatal(f"{e} (gave up after {retries + 1} tries)") from None
            wait = delay * 2 ** attempt
            if time.monotonic() + wait > deadline:
                raise _Fatal(f"{e} (gave up after {attempt + 1} tries: out of time, "
                             "SRZOO_TIMEOUT + size / SRZOO_MIN_RATE)") from None
            _sleep(wait, partial.beat)


# --------------------------------------------------------------------------- locking
@contextmanager
def _locked(artifact: Artifact, partial: _Partial, quiet: bool | None, what: str) -> Iterator[None]:
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
        srcs = [s for s in srcs if not _is_url(s)]
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
    partial = _Partial(artifact)
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
    except _DiskError as e:
        partial.discard()  # never leave a partial that filled the disk
        raise cache.os_error(e.err, e.path, "write") from None
    except SrzooError:
        raise
    except OSError as e:
        raise cache.os_error(e, Path(e.filename) if e.filename else cache.cache_dir(),
                             "use") from None


def _fetch_locked(artifact: Artifact, srcs: list[str], partial: _Partial, target: Path,
                  quiet: bool | None, what: str) -> Path:
    failures: list[str] = []
    checksum_failed = False
    progress = _Progress(artifact, quiet)
    try:
        with requests.Session() as session:
            session.headers["User-Agent"] = f"srzoo/{__version__}"
            for src in srcs:
                try:
                    if _is_url(src):
                        _http(session, src, partial, artifact, progress)
                    else:
                        _copy_local(Path(src), partial, artifact)
                except _Fatal as e:
                    failures.append(str(e))
                    if e.discard:
                        partial.discard()
                    continue
                bad = cache.problems(partial.path, artifact)
                if bad:
                    partial.discard()
                    checksum_failed = True
                    failures.append(f"{src}: " + "; ".join(bad))
                    continue
                os.replace(partial.path, target)
                partial.discard()  # the source record
                cache.record(artifact)
                return target
    finally:  # a partial that passed no check stays for a resume from its own source
        progress.close()
    cls = ChecksumError if checksum_failed else DownloadError
    raise cls(f"could not fetch {what} ({artifact.file}) from {len(srcs)} source(s): "
              + " | ".join(failures))


__all__ = ["fetch_artifact", "mirrors", "offline", "sources", "time_bound"]
