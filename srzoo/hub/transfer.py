"""Moving one source's bytes into a partial file: a local copy, or HTTP with
``Range`` resume, retries with back-off, redirect rules and a time bound.

:func:`http_fetch` tries one URL until it delivers, fails for good (:class:`Fatal`:
move on to the next source) or runs out of its :func:`time_bound`.
:mod:`srzoo.hub.download` decides the order of sources and what to keep.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin, urlparse

import requests
import requests.adapters
import urllib3

from srzoo import config
from srzoo._version import __version__
from srzoo.fsutil import redact
from srzoo.hub import cache
from srzoo.hub.manifest import Artifact
from srzoo.hub.partial import DiskError, Partial, write_all

CHUNK = 64 * 1024


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def host_of(url: str) -> str | None:
    try:
        return urlparse(url).hostname
    except ValueError:
        return None


def time_bound(nbytes: int) -> float:
    """Seconds one source gets to deliver ``nbytes`` (retries included), and how
    long a waiting process tolerates a lock holder that makes no progress:
    ``SRZOO_TIMEOUT + nbytes / SRZOO_MIN_RATE``."""
    return float(config.get("SRZOO_TIMEOUT")) + nbytes / float(config.get("SRZOO_MIN_RATE"))


class Transient(Exception):
    """A failure worth retrying the same URL for (connection, time-out, 5xx)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))  # never a mirror's password in a message


class Fatal(Exception):
    """A failure of this source; move on to the next one. ``discard``: the
    partial file holds bytes that must not be resumed from."""

    def __init__(self, message: str, *, discard: bool = False) -> None:
        super().__init__(redact(message))
        self.discard = discard


class Progress:
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



def copy_local(src: Path, partial: Partial, artifact: Artifact) -> None:
    try:
        size = src.stat().st_size
    except FileNotFoundError:
        raise Fatal(f"{src}: no such file in the mirror folder") from None
    except OSError as e:
        raise Fatal(f"{src}: cannot read: {e.strerror or e}") from None
    if not src.is_file():
        raise Fatal(f"{src}: not a file")
    if size > artifact.size:
        raise Fatal(f"{src}: {size} bytes, more than the manifest's {artifact.size}")
    try:
        fin = open(src, "rb")
    except OSError as e:
        raise Fatal(f"{src}: cannot read: {e.strerror or e}") from None
    with fin:
        partial.start(str(src))
        try:
            fout = open(partial.path, "wb", buffering=0)
        except OSError as e:
            raise DiskError(e, partial.path) from None
        with fout:
            while True:
                try:
                    chunk = fin.read(cache.CHUNK)
                except OSError as e:
                    raise Fatal(f"{src}: read error: {e.strerror or e}", discard=True) from None
                if not chunk:
                    break
                write_all(fout, chunk, partial.path)
            try:
                fout.flush()
                os.fsync(fout.fileno())
            except OSError as e:
                raise DiskError(e, partial.path) from None


# --------------------------------------------------------------------------- the whole-exchange deadline
# A read time-out bounds one socket read; a server that trickles its headers (or
# body) one byte a second never trips it. So every socket a session opens is
# remembered, and a watchdog shuts them down when the source's deadline passes:
# the blocked read returns at once, whatever phase the exchange is in.
def _watched(base: type, socks: "weakref.WeakSet[socket.socket]") -> type:
    class Conn(base):  # type: ignore[misc, valid-type]
        def _new_conn(self):  # type: ignore[no-untyped-def]
            sock = super()._new_conn()
            socks.add(sock)
            return sock

        def connect(self) -> None:
            try:
                super().connect()
            finally:
                if getattr(self, "sock", None) is not None:  # the TLS-wrapped socket
                    socks.add(self.sock)
    return Conn


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, socks: "weakref.WeakSet[socket.socket]") -> None:
        self._socks = socks
        super().__init__()

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kw: object) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        socks = self._socks
        http_conn = _watched(HTTPConnectionPool.ConnectionCls, socks)
        https_conn = _watched(HTTPSConnectionPool.ConnectionCls, socks)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("HTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("HTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }


def new_session() -> requests.Session:
    """A requests session whose sockets a :class:`Watchdog` can cut off."""
    s = requests.Session()
    socks: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
    s.srzoo_sockets = socks  # type: ignore[attr-defined]
    for prefix in ("http://", "https://"):
        s.mount(prefix, _WatchedAdapter(socks))
    s.headers["User-Agent"] = f"srzoo/{__version__}"
    return s


class Watchdog:
    """Shut down every socket of ``session`` at ``deadline`` (time.monotonic), so no
    phase of an exchange (connecting, headers, body) can outlast it. ``fired``
    tells afterwards whether it cut anything off."""

    def __init__(self, session: requests.Session, deadline: float) -> None:
        self.session = session
        self.fired = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.extend(deadline)

    def extend(self, deadline: float) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self.fired:
                return
            self.deadline = deadline
            self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            socks = list(getattr(self.session, "srzoo_sockets", ()))
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def __enter__(self) -> "Watchdog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}".rstrip(": ")


def get(session: requests.Session, url: str, headers: dict[str, str], timeout: float,
         max_redirects: int, same_host: bool) -> requests.Response:
    """GET ``url`` following redirects ourselves: bounded, http_fetch(s) only, and
    with ``same_host`` never to another host."""
    seen = [url]
    cur = url
    host = host_of(url)
    for _ in range(max_redirects + 1):
        try:
            resp = session.get(cur, headers=headers, stream=True, timeout=(timeout, timeout),
                               allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as e:
            if isinstance(e, requests.exceptions.InvalidURL):  # pragma: no cover - subclass quirk
                raise Fatal(f"{url}: invalid URL: {short(e)}") from None
            raise Transient(f"{url}: {short(e)}") from None
        except (requests.RequestException, ValueError, urllib3.exceptions.HTTPError,
                http.client.HTTPException) as e:  # InvalidURL, InvalidSchema, bad port...
            raise Fatal(f"{url}: {short(e)}") from None
        if not resp.is_redirect:
            return resp
        resp.close()
        try:
            loc = urljoin(cur, resp.headers.get("location", ""))
        except ValueError:
            raise Fatal(f"{url}: redirected to a malformed location "
                         f"{resp.headers.get('location')!r}") from None
        if not is_url(loc):
            raise Fatal(f"{url}: redirected to {loc!r}; only http and https redirects are followed")
        if same_host and host_of(loc) != host:
            raise Fatal(f"{url}: redirected to another host ({host_of(loc)}); "
                         "SRZOO_MIRROR_ONLY=1 allows only the mirror's own host")
        if loc in seen:
            raise Fatal(f"{url}: redirect loop ({' -> '.join(seen[-3:] + [loc])})")
        seen.append(loc)
        cur = loc
    raise Fatal(f"{url}: more than {max_redirects} redirects (SRZOO_MAX_REDIRECTS)")


READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                socket.timeout, ConnectionError)


def http_fetch_once(session: requests.Session, url: str, partial: Partial, artifact: Artifact,
               timeout: float, deadline: float, progress: Progress) -> None:
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
    resp = get(session, url, headers, timeout, int(config.get("SRZOO_MAX_REDIRECTS")),
                config.flag("SRZOO_MIRROR_ONLY"))
    with resp:
        if time.monotonic() >= deadline:
            # the watchdog cut the exchange off: what http.client parsed (headers ended by
            # the hang-up) is no answer, and must not truncate the resumable partial
            raise Transient(f"{url}: no complete answer before the deadline")
        code = resp.status_code
        if code == 416 and have:
            partial.discard()  # our partial does not fit this server's file: start again
            raise Transient(f"{url}: HTTP 416 on resume from byte {have}; restarting")
        if code >= 500 or code == 429:
            raise Transient(f"{url}: HTTP {code} {resp.reason}")
        if code >= 400:
            raise Fatal(f"{url}: HTTP {code} {resp.reason}")
        if code not in (200, 206):
            raise Fatal(f"{url}: unexpected HTTP {code} {resp.reason}")
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
                raise Transient(f"{url}: HTTP 206 for bytes {crange!r}, not from byte {have}; "
                                 "restarting")
            if total != "*" and total != str(artifact.size):
                raise Fatal(f"{url}: the server's file has {total} bytes, the manifest says "
                             f"{artifact.size}", discard=True)
            mode = "ab"
        else:  # 200: the whole file (the server ignored Range, or If-Range said it changed)
            mode, have = "wb", 0
            length = resp.headers.get("Content-Length")
            if not encoded and length is not None and length.isdigit() \
                    and int(length) != artifact.size:
                kind = resp.headers.get("Content-Type", "unknown type").split(";")[0]
                raise Fatal(f"{url}: answered {length} bytes of {kind} where the manifest says "
                             f"{artifact.size} bytes (an error or login page?)", discard=True)
            partial.start(url, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
        progress.set(have)
        try:
            # unbuffered, so no write error can hide in close() behind another exception
            f = open(partial.path, mode, buffering=0)
        except OSError as e:
            raise DiskError(e, partial.path) from None
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
                        write_all(f, chunk[: artifact.size - have], partial.path)
                        raise Fatal(f"{url}: server sent more than the manifest's "
                                     f"{artifact.size} bytes; cut off", discard=True)
                    write_all(f, chunk, partial.path)
                    have += len(chunk)
                    progress.set(have)
                    partial.beat()
                    if time.monotonic() > deadline and have < artifact.size:
                        raise Fatal(f"{url}: too slow: {have} of {artifact.size} bytes in the "
                                     f"{time_bound(artifact.size):.0f} s allowed (SRZOO_TIMEOUT + "
                                     "size / SRZOO_MIN_RATE)")
            except urllib3.exceptions.DecodeError as e:
                raise Fatal(f"{url}: cannot decode the {resp.headers.get('Content-Encoding')} "
                             f"body: {short(e)}", discard=True) from None
            except READ_ERRORS as e:
                if isinstance(e, requests.exceptions.ContentDecodingError):
                    raise Fatal(f"{url}: cannot decode the body: {short(e)}", discard=True) from None
                if encoded:  # a decoded stream cannot be resumed by byte offset
                    raise Fatal(f"{url}: interrupted at byte {have}: {short(e)}",
                                 discard=True) from None
                raise Transient(f"{url}: interrupted at byte {have}: {type(e).__name__}") from None
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise DiskError(e, partial.path) from None
    if have < artifact.size:
        if encoded:
            raise Fatal(f"{url}: compressed body ended at byte {have} of {artifact.size}",
                         discard=True)
        raise Transient(f"{url}: connection closed at byte {have} of {artifact.size}")


def sleep(seconds: float, beat: Callable[[], None]) -> None:
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))
        beat()


def http_fetch(session: requests.Session, url: str, partial: Partial, artifact: Artifact,
          progress: Progress) -> None:
    timeout = float(config.get("SRZOO_TIMEOUT"))
    retries = int(config.get("SRZOO_RETRIES"))
    delay = float(config.get("SRZOO_BACKOFF"))
    have = partial.size() if partial.meta().get("source") == redact(url) else 0
    if have > artifact.size:  # http_fetch_once throws it away and fetches the whole file
        have = 0
    bound = time_bound(artifact.size - have)
    deadline = time.monotonic() + bound
    with Watchdog(session, deadline) as watch:  # the whole exchange, headers included
        for attempt in range(retries + 1):
            partial.beat(force=True)
            try:
                http_fetch_once(session, url, partial, artifact, timeout, deadline, progress)
                return
            except (Transient, Fatal) as e:
                if watch.fired:
                    got = partial.size() if partial.meta().get("source") == redact(url) else 0
                    raise Fatal(f"{url}: too slow: {got} of {artifact.size} bytes in the {bound:.0f} s "
                                "allowed (SRZOO_TIMEOUT + size / SRZOO_MIN_RATE), headers included; "
                                "cut off", discard=getattr(e, "discard", False)) from None
                if isinstance(e, Fatal):
                    raise
                _retry_or_give_up(e, attempt, retries, delay, deadline, partial)


def _retry_or_give_up(e: Transient, attempt: int, retries: int, delay: float, deadline: float,
                      partial: Partial) -> None:
    """Back off before the next try of a transient failure, or give up (:class:`Fatal`)."""
    if attempt == retries:
        raise Fatal(f"{e} (gave up after {retries + 1} tries)") from None
    wait = delay * 2 ** attempt
    if time.monotonic() + wait > deadline:
        raise Fatal(f"{e} (gave up after {attempt + 1} tries: out of time, "
                    "SRZOO_TIMEOUT + size / SRZOO_MIN_RATE)") from None
    sleep(wait, partial.beat)


__all__ = ["CHUNK", "Fatal", "Progress", "Transient", "Watchdog", "copy_local", "host_of", "http_fetch",
           "is_url", "new_session", "short", "time_bound"]
