"""A real HTTP server on 127.0.0.1 that serves ../shared files, with fault injection.

Files are looked up by base name (``/ESPCN_x2.pb``, or ``/any/prefix/ESPCN_x2.pb``),
so one server can stand for several mirrors. Faults are rules matched on the
request path (fnmatch) and consumed in order; each rule applies ``times`` times
(``None``: forever):

* ``status``: answer with this HTTP status and no body (404, 500, ...)
* ``drop_after``: send the headers for the whole body, then close after N bytes
* ``corrupt_at``: flip the byte at this offset of the file
* ``stall_after``: send N bytes, then sleep ``stall`` seconds before the rest
* ``extra``: append this many junk bytes (Content-Length covers them)
* ``ignore_range``: answer 200 with the whole file even when asked for a range
* ``delay``: sleep this long before answering (to make concurrent clients overlap)
* ``redirect``: answer 302 to this location (``{url}`` is replaced by the server's
  base URL, so ``"{url}/x"`` stays on it and ``"file:///etc/passwd"`` does not)
* ``html``: answer 200 with a short HTML page (a captive portal)
* ``bad_gzip``: ``Content-Encoding: gzip`` with a body that is not gzip
* ``trickle``: send the body one byte every ``trickle`` seconds
* ``header_trickle``: send the status line and headers one byte every
  ``header_trickle`` seconds, and never finish them (a read time-out never trips)
* ``endless``: no Content-Length; send zeros until the client goes away
* ``gzip``: send the file gzip-compressed (``Content-Encoding: gzip``) whatever was asked
* ``etag``: send this ETag instead of the file's own (as if the file changed since);
  a weak one (``W/"..."``) is never matched by an ``If-Range`` (RFC 9110 strong comparison)
* ``range_total``: in a 206 answer, claim this total size in ``Content-Range``
  (``bytes a-b/TOTAL``) instead of the file's own (``"*"``: unknown, as RFC 9110 allows)
* ``range_from``: in a 206 answer, send the file from this byte (and say so in
  ``Content-Range``) instead of the byte that was asked for

Every 200/206 answer carries an ``ETag``; the ``If-Range`` and ``Accept-Encoding`` a client
sends are logged.
"""

from __future__ import annotations

import fnmatch
import gzip
import http.server
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Fault:
    pattern: str
    times: int | None = 1
    status: int | None = None
    drop_after: int | None = None
    corrupt_at: int | None = None
    stall_after: int | None = None
    stall: float = 0.0
    extra: int = 0
    ignore_range: bool = False
    delay: float = 0.0
    redirect: str | None = None
    html: bool = False
    bad_gzip: bool = False
    trickle: float | None = None
    header_trickle: float | None = None
    endless: bool = False
    gzip: bool = False
    etag: str | None = None
    range_total: int | str | None = None
    range_from: int | None = None


@dataclass
class Hit:
    path: str
    range: str | None
    status: int
    if_range: str | None = None
    accept_encoding: str | None = None


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when the client hangs
    up mid-answer: srzoo does that on purpose (a body refused before it is read, a
    source cut off at its deadline). Any other handler error is printed as usual."""

    daemon_threads = True

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


@dataclass
class MirrorServer:
    roots: list[Path]
    files: dict[str, Path] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def __post_init__(self) -> None:
        for root in self.roots:
            for dirpath, _, names in os.walk(root):
                for n in names:
                    self.files.setdefault(n, Path(dirpath) / n)

    def fault(self, pattern: str, **kw: Any) -> Fault:
        f = Fault(pattern, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.log.clear()

    def gets(self, name: str) -> list[Hit]:
        """GET requests whose path ends with ``/name``."""
        with self.lock:
            return [h for h in self.log if h.path.rsplit("/", 1)[-1] == name]

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if fnmatch.fnmatch(path, f.pattern) and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None

    def start(self) -> "MirrorServer":
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _record(self, status: int) -> None:
                with server.lock:
                    server.log.append(Hit(self.path, self.headers.get("Range"), status,
                                          self.headers.get("If-Range"),
                                          self.headers.get("Accept-Encoding")))

            def _simple(self, status: int, body: bytes = b"", **headers: str) -> None:
                self._record(status)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k.replace("_", "-"), v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                fault = server._take_fault(self.path)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                name = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
                src = server.files.get(name)
                if fault and fault.redirect is not None:
                    return self._simple(302, Location=fault.redirect.replace("{url}", server.url))
                if fault and fault.html:
                    return self._simple(200, b"<html><body>Please log in to use this "
                                             b"network.</body></html>\n",
                                        Content_Type="text/html; charset=utf-8")
                if fault and fault.bad_gzip:
                    return self._simple(200, b"this is not gzip data at all" * 10,
                                        Content_Encoding="gzip",
                                        Content_Type="application/octet-stream")
                if fault and fault.header_trickle is not None:
                    self._record(200)
                    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            + b"X-Slow: " + b"z" * 100_000)
                    self.close_connection = True
                    try:
                        for i in range(len(head)):
                            self.wfile.write(head[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fault.header_trickle)
                    except (BrokenPipeError, ConnectionResetError, OSError):
                        pass
                    return
                if fault and fault.endless:
                    self._record(200)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        while True:
                            self.wfile.write(b"\0" * 65536)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                status = fault.status if fault and fault.status else (200 if src else 404)
                if status != 200:
                    self._record(status)
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = bytearray(src.read_bytes())
                if fault and fault.corrupt_at is not None:
                    data[fault.corrupt_at] ^= 0xFF
                if fault and fault.extra:
                    data += b"\x00" * fault.extra
                etag = f'"{len(data)}-{zlib.crc32(bytes(data)):08x}"'
                if fault and fault.gzip:
                    return self._simple(200, gzip.compress(bytes(data)), Content_Encoding="gzip",
                                        ETag=etag, Content_Type="application/octet-stream")
                start = 0
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if if_range is not None and if_range != etag:
                    rng = None  # RFC 9110: the file changed since, so send all of it
                if rng and not (fault and fault.ignore_range) and rng.startswith("bytes="):
                    start = int(rng[6:].split("-", 1)[0])
                    if fault and fault.range_from is not None:
                        start = fault.range_from
                    if start >= len(data):
                        self._record(416)
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self._record(206)
                    self.send_response(206)
                    total = fault.range_total if fault and fault.range_total is not None else len(data)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{total}")
                else:
                    self._record(200)
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", fault.etag if fault and fault.etag else etag)
                self.send_header("Content-Type", "application/octet-stream")
                body = bytes(data[start:])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if fault and fault.drop_after is not None:
                        self.wfile.write(body[: fault.drop_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if fault and fault.trickle is not None:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fault.trickle)
                        return
                    if fault and fault.stall_after is not None:
                        self.wfile.write(body[: fault.stall_after])
                        self.wfile.flush()
                        time.sleep(fault.stall)
                        self.wfile.write(body[fault.stall_after:])
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
