"""srzoo.hub.transfer one call at a time against the real local HTTP server (tests/httpmirror.py)
and real files: the request each state sends (Range, If-Range), the exact error (class, message,
discard) of each answer, what the partial file holds afterwards. Small time-outs and back-offs,
so it is also the fast test set `tools/mutation.sh hub/transfer` runs per mutant."""

from __future__ import annotations

import errno
import os
import re
import resource
import signal
import socket
import ssl
import threading
import time
import types
import zlib
from pathlib import Path

import pytest
import requests
import urllib3

from srzoo._version import __version__
from srzoo.hub import transfer
from srzoo.hub.manifest import Artifact
from srzoo.hub.partial import DiskError, Partial
from srzoo.hub.transfer import Fatal, Progress, Transient

NAME = "baby.png"  # Set5, 371264 bytes


@pytest.fixture
def data(shared_dir: Path) -> bytes:
    return (shared_dir / "datasets" / "Set5" / NAME).read_bytes()


def artifact(size: int, name: str = NAME) -> Artifact:
    return Artifact(name, size, "0" * 64, ("http://unused.invalid/",), subdir="datasets/set5")


@pytest.fixture
def art(data, srzoo_env) -> Artifact:
    return artifact(len(data))


def fetch_once(mirror, art: Artifact, partial: Partial | None = None, *, url: str | None = None,
               deadline: float = 5.0, timeout: float = 5.0) -> Partial:
    if partial is None:  # a fresh start: nothing left by an earlier call
        partial = Partial(art)
        partial.discard()
    transfer.http_fetch_once(transfer.new_session(), url or f"{mirror.url}/{art.file}", partial, art,
                             timeout, time.monotonic() + deadline, Progress(art, True))
    return partial


def fails(exc: type, mirror, art: Artifact, partial: Partial | None = None, **kw) -> tuple[str, Partial]:
    """The message (server URL shown as URL) of the exception one attempt raises, and the partial."""
    with pytest.raises(Exception) as err:
        fetch_once(mirror, art, partial, **kw)
    assert type(err.value) is exc, repr(err.value)
    return str(err.value).replace(mirror.url, "URL"), partial or Partial(art)


def resumable(mirror, art: Artifact, data: bytes, n: int, etag: str | None = None,
              modified: str | None = None, source: str | None = None) -> Partial:
    """A partial holding the first n bytes, recorded as coming from the mirror's URL."""
    p = Partial(art)
    p.path.parent.mkdir(parents=True, exist_ok=True)
    p.start(source or f"{mirror.url}/{art.file}", etag, modified)
    p.path.write_bytes(data[:n])
    return p


def etag_of(data: bytes) -> str:
    import zlib

    return f'"{len(data)}-{zlib.crc32(data):08x}"'


def log(mirror) -> list[tuple[int, str | None, str | None]]:
    return [(h.status, h.range, h.if_range) for h in mirror.log]


# ----------------------------------------------------------------------------- small helpers


def test_is_url_host_of_time_bound_short(monkeypatch):
    assert [transfer.is_url(u) for u in ("http://a", "HTTPS://a", "https://a", "ftp://a", "/x/http://",
                                         "httpx://a", "http:/a")] == [True, True, True, False, False,
                                                                      False, False]
    assert transfer.host_of("http://Example.org:8080/x") == "example.org"
    assert transfer.host_of("http://[::1/x") is None  # urlparse: invalid IPv6 URL
    monkeypatch.setenv("SRZOO_TIMEOUT", "7")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000")
    assert transfer.time_bound(5000) == 12.0
    assert transfer.time_bound(0) == 7.0
    assert transfer.short(ValueError("first\nlast  ")) == "ValueError: last"
    assert transfer.short(ValueError("  ")) == "ValueError"
    assert transfer.short(OSError()) == "OSError"
    assert transfer.short(KeyError("k")) == "KeyError: 'k'"
    assert transfer.short(ValueError("NO BOX:")) == "ValueError: NO BOX"  # only ': ' is stripped
    assert transfer.CHUNK == 65536


def test_progress_bar_only_when_asked(capsys):
    a = artifact(1000)
    assert Progress(a, True).bar is None
    assert Progress(a, None).bar is None  # stderr is not a terminal under pytest
    p = Progress(a, False)
    assert (p.bar.total, p.bar.desc, p.bar.unit, p.bar.unit_scale, p.bar.unit_divisor, p.bar.leave) == (
        1000, NAME, "B", True, 1024, False)
    p.set(500)
    assert p.bar.n == 500
    p.close()
    assert p.bar.disable  # closed
    q = Progress(a, True)
    q.set(5)
    q.close()  # no bar: nothing to do, no error


def test_new_session_names_srzoo_and_remembers_its_sockets(mirror, data):
    s = transfer.new_session()
    assert s.headers["User-Agent"] == f"srzoo/{__version__}"
    assert len(s.srzoo_sockets) == 0
    r = s.get(f"{mirror.url}/{NAME}")
    assert r.content == data
    assert len(s.srzoo_sockets) >= 1 and all(isinstance(x, socket.socket) for x in s.srzoo_sockets)


def test_watchdog_cuts_off_and_cancels(mirror):
    s = transfer.new_session()
    mirror.fault(f"/{NAME}", header_trickle=0.05)
    w = transfer.Watchdog(s, time.monotonic() + 0.3)
    t0 = time.monotonic()
    with pytest.raises(requests.RequestException):
        s.get(f"{mirror.url}/{NAME}", timeout=30)
    assert w.fired and time.monotonic() - t0 < 20
    w.extend(time.monotonic() + 100)  # fired: stays fired, no new timer
    assert w.fired and w.deadline < time.monotonic() + 50
    w.cancel()
    with transfer.Watchdog(transfer.new_session(), time.monotonic() + 0.2) as w2:
        w2.extend(time.monotonic() + 60)
        assert w2.deadline > time.monotonic() + 50
    assert w2._timer is None and not w2.fired
    time.sleep(0.4)
    assert not w2.fired  # cancelled on leaving the with block


def test_sleep_beats_every_half_second():
    beats: list[float] = []
    transfer.sleep(0, lambda: beats.append(1))
    transfer.sleep(-1, lambda: beats.append(1))
    assert beats == []
    t0 = time.monotonic()
    transfer.sleep(1.2, lambda: beats.append(time.monotonic() - t0))
    assert len(beats) == 3 and beats[-1] >= 1.2  # 0.5 + 0.5 + 0.2 s


# ----------------------------------------------------------------------------- a local mirror folder


def test_copy_local(tmp_path, srzoo_env, data, shared_dir):
    src = shared_dir / "datasets" / "Set5" / NAME
    a = artifact(len(data))
    p = Partial(a)
    p.path.parent.mkdir(parents=True)
    transfer.copy_local(src, p, a)
    assert p.path.read_bytes() == data and p.meta() == {"source": str(src), "etag": None,
                                                         "last_modified": None}
    small = artifact(len(data) - 1)
    for path, message in [(tmp_path / "nope.png", f"{tmp_path / 'nope.png'}: no such file in the mirror folder"),
                          (tmp_path, f"{tmp_path}: not a file"),
                          (src, f"{src}: {len(data)} bytes, more than the manifest's {len(data) - 1}")]:
        with pytest.raises(Fatal) as err:
            transfer.copy_local(path, Partial(small), small)
        assert str(err.value) == message and not err.value.discard
    for path, why in [(src / "x", "Not a directory"), (tmp_path / ("x" * 300), "File name too long")]:
        with pytest.raises(Fatal) as err:
            transfer.copy_local(path, Partial(small), small)
        assert str(err.value) == f"{path}: cannot read: {why}"
    # the partial cannot be written: a DiskError naming the partial (no other source can help)
    p.discard()
    p.path.mkdir()
    with pytest.raises(DiskError) as err:
        transfer.copy_local(src, p, a)
    assert err.value.path == p.path and err.value.err.errno == errno.EISDIR
    p.path.rmdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(DiskError) as err:
            transfer.copy_local(src, p, a)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert err.value.path == p.path and err.value.err.errno == errno.EFBIG
    assert p.size() == 100_000
    # a smaller file is copied whole (the cache's check then refuses it, not the copy)
    big = artifact(len(data) + 1)
    transfer.copy_local(src, Partial(big), big)
    assert Partial(big).path.read_bytes() == data


# ----------------------------------------------------------------------------- one HTTP attempt


def test_whole_file(mirror, art, data):
    p = fetch_once(mirror, art)
    assert p.path.read_bytes() == data
    assert p.meta() == {"source": f"{mirror.url}/{NAME}", "etag": etag_of(data), "last_modified": None}
    assert log(mirror) == [(200, None, None)]
    assert mirror.log[0].accept_encoding == "identity"  # not requests' "gzip, deflate"


def test_resume_sends_range_and_strong_etag(mirror, art, data):
    p = fetch_once(mirror, art, resumable(mirror, art, data, 1000, etag_of(data)))
    assert p.path.read_bytes() == data
    assert log(mirror) == [(206, "bytes=1000-", etag_of(data))]


def test_resume_with_a_weak_etag_or_a_date(mirror, art, data):
    p = fetch_once(mirror, art, resumable(mirror, art, data, 1000, 'W/"x"'))
    assert p.path.read_bytes() == data and log(mirror) == [(206, "bytes=1000-", None)]
    mirror.reset()
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    p = fetch_once(mirror, art, resumable(mirror, art, data, 1000, 'W/"x"', date))
    # the server has no date to match: the whole file again, from byte 0
    assert p.path.read_bytes() == data and log(mirror) == [(200, "bytes=1000-", date)]
    assert p.meta()["etag"] == etag_of(data)
    mirror.reset()
    p = fetch_once(mirror, art, resumable(mirror, art, data, 1000, None, date))
    assert p.path.read_bytes() == data and log(mirror) == [(200, "bytes=1000-", date)]
    mirror.reset()
    p = fetch_once(mirror, art, resumable(mirror, art, data, 1000))
    assert p.path.read_bytes() == data and log(mirror) == [(206, "bytes=1000-", None)]


def test_partial_of_another_source_or_too_big_is_discarded(mirror, art, data):
    p = fetch_once(mirror, art, resumable(mirror, art, data, 1000, source="http://elsewhere.invalid/x"))
    assert p.path.read_bytes() == data and log(mirror) == [(200, None, None)]
    mirror.reset()
    p = resumable(mirror, art, data + b"junk", len(data) + 1)
    p = fetch_once(mirror, art, p)
    assert p.path.read_bytes() == data and log(mirror) == [(200, None, None)]
    mirror.reset()
    p = fetch_once(mirror, art, resumable(mirror, art, data, len(data)))  # complete: nothing asked
    assert p.path.read_bytes() == data and mirror.log == []


@pytest.mark.parametrize("status, exc, message", [
    (404, Fatal, "URL/baby.png: HTTP 404 Not Found"),
    (400, Fatal, "URL/baby.png: HTTP 400 Bad Request"),
    (416, Fatal, "URL/baby.png: HTTP 416 Requested Range Not Satisfiable"),
    (500, Transient, "URL/baby.png: HTTP 500 Internal Server Error"),
    (503, Transient, "URL/baby.png: HTTP 503 Service Unavailable"),
    (429, Transient, "URL/baby.png: HTTP 429 Too Many Requests"),
    (428, Fatal, "URL/baby.png: HTTP 428 Precondition Required"),
    (204, Fatal, "URL/baby.png: unexpected HTTP 204 No Content"),
    (304, Fatal, "URL/baby.png: unexpected HTTP 304 Not Modified"),
])
def test_status_codes(mirror, art, status, exc, message):
    mirror.fault(f"/{NAME}", status=status)
    with pytest.raises(exc) as err:
        fetch_once(mirror, art)
    assert type(err.value) is exc and str(err.value).replace(mirror.url, "URL") == message
    assert getattr(err.value, "discard", False) is False and not Partial(art).path.exists()


def test_416_on_resume_restarts(mirror, art, data):
    mirror.fault(f"/{NAME}", status=416)
    msg, p = fails(Transient, mirror, art, resumable(mirror, art, data, 1000))
    assert msg == "URL/baby.png: HTTP 416 on resume from byte 1000; restarting"
    assert not p.path.exists() and not p.meta_path.exists()


def test_206_from_another_byte_restarts(mirror, art, data):
    mirror.fault(f"/{NAME}", range_from=500)
    msg, p = fails(Transient, mirror, art, resumable(mirror, art, data, 1000))
    assert msg == (f"URL/baby.png: HTTP 206 for bytes 'bytes 500-{len(data) - 1}/{len(data)}', "
                   "not from byte 1000; restarting")
    assert not p.path.exists() and not p.meta_path.exists()


def test_206_with_another_total_is_refused(mirror, art, data):
    mirror.fault(f"/{NAME}", range_total=len(data) + 1)
    with pytest.raises(Fatal) as err:
        fetch_once(mirror, art, resumable(mirror, art, data, 1000))
    assert str(err.value).replace(mirror.url, "URL") == (
        f"URL/baby.png: the server's file has {len(data) + 1} bytes, the manifest says {len(data)}")
    assert err.value.discard
    mirror.reset()
    mirror.fault(f"/{NAME}", range_total=len(data))  # the right total: resumed
    assert fetch_once(mirror, art, resumable(mirror, art, data, 1000)).path.read_bytes() == data


@pytest.mark.parametrize("fault, kind, size", [({"html": True}, "text/html", 61),
                                               ({"extra": 10}, "application/octet-stream", 371274)])
def test_wrong_length_is_refused_before_the_body(mirror, art, fault, kind, size):
    mirror.fault(f"/{NAME}", **fault)
    with pytest.raises(Fatal) as err:
        fetch_once(mirror, art)
    assert str(err.value).replace(mirror.url, "URL") == (
        f"URL/baby.png: answered {size} bytes of {kind} where the manifest says 371264 bytes "
        "(an error or login page?)")
    assert err.value.discard and not Partial(art).path.exists()


def test_compressed_bodies(mirror, art, data):
    mirror.fault(f"/{NAME}", gzip=True)
    assert fetch_once(mirror, art).path.read_bytes() == data
    mirror.fault(f"/{NAME}", bad_gzip=True)
    with pytest.raises(Fatal) as err:
        fetch_once(mirror, art)
    assert str(err.value).replace(mirror.url, "URL").startswith(
        "URL/baby.png: cannot decode the gzip body: DecodeError: ")
    assert err.value.discard
    # a compressed body longer or shorter than the manifest says (no Content-Length to check first)
    small = artifact(len(data) - 10)
    mirror.fault(f"/{NAME}", gzip=True)
    with pytest.raises(Fatal) as err:
        fetch_once(mirror, small)
    assert str(err.value).replace(mirror.url, "URL") == (
        f"URL/baby.png: server sent more than the manifest's {len(data) - 10} bytes; cut off")
    assert err.value.discard and Partial(small).path.read_bytes() == data[:-10]
    big = artifact(len(data) + 10)
    mirror.fault(f"/{NAME}", gzip=True)
    with pytest.raises(Fatal) as err:
        fetch_once(mirror, big)
    assert str(err.value).replace(mirror.url, "URL") == (
        f"URL/baby.png: compressed body ended at byte {len(data)} of {len(data) + 10}")
    assert err.value.discard


def test_connection_dropped_keeps_the_bytes_for_resume(mirror, art, data):
    mirror.fault(f"/{NAME}", drop_after=1000)
    msg, p = fails(Transient, mirror, art)
    assert msg == "URL/baby.png: interrupted at byte 1000: ProtocolError"
    assert p.path.read_bytes() == data[:1000] and p.meta()["source"] == f"{mirror.url}/{NAME}"
    p = fetch_once(mirror, art, p)
    assert p.path.read_bytes() == data
    assert log(mirror)[-1] == (206, "bytes=1000-", etag_of(data))


def test_too_slow_is_cut_off(mirror, art, data, monkeypatch):
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000")  # time_bound(371264) = 5 + 371.264 s
    mirror.fault(f"/{NAME}", trickle=0.002)  # never a read time-out, but far too slow
    with pytest.raises(Fatal) as err:
        fetch_once(mirror, art, deadline=0.3)
    m = re.fullmatch(r"URL/baby\.png: too slow: (\d+) of 371264 bytes in the 376 s allowed "
                     r"\(SRZOO_TIMEOUT \+ size / SRZOO_MIN_RATE\)", str(err.value).replace(mirror.url, "URL"))
    assert m and 0 < int(m.group(1)) < 1000, str(err.value)
    assert not err.value.discard
    assert len(Partial(art).path.read_bytes()) == int(m.group(1))


def test_stalled_read_times_out_and_keeps_the_bytes(mirror, art, data):
    mirror.fault(f"/{NAME}", stall_after=70000, stall=1.0)
    msg, p = fails(Transient, mirror, art, deadline=5, timeout=0.3)
    assert msg == "URL/baby.png: interrupted at byte 70000: ReadTimeoutError"
    assert p.path.read_bytes() == data[:70000]


def test_read_timeout_is_bounded_by_the_deadline(mirror, art):
    mirror.fault(f"/{NAME}", delay=1.0)
    t0 = time.monotonic()
    msg, _ = fails(Transient, mirror, art, deadline=0.2, timeout=30)
    assert msg.startswith("URL/baby.png: ReadTimeout: ") and time.monotonic() - t0 < 0.9
    while not mirror.log and time.monotonic() - t0 < 10:  # the server answers late: let it, so
        time.sleep(0.05)                                   # its log line is not another test's


# ----------------------------------------------------------------------------- redirects


def test_redirects(mirror, art, data, monkeypatch):
    mirror.fault(f"/{NAME}", redirect="{url}/a/" + NAME)
    mirror.fault(f"/a/{NAME}", redirect="/b/" + NAME)  # relative: joined to the current URL
    p = fetch_once(mirror, art)
    assert p.path.read_bytes() == data and [h.path for h in mirror.log] == [
        f"/{NAME}", f"/a/{NAME}", f"/b/{NAME}"]
    assert p.meta()["source"] == f"{mirror.url}/{NAME}"  # resumed from the URL asked, not the last


def test_redirect_refusals(mirror, art, monkeypatch):
    port = mirror.url.rsplit(":", 1)[1]
    mirror.fault(f"/{NAME}", redirect="file:///etc/passwd")
    assert fails(Fatal, mirror, art)[0] == (
        "URL/baby.png: redirected to 'file:///etc/passwd'; only http and https redirects are followed")
    mirror.fault(f"/{NAME}", redirect=f"http://localhost:{port}/{NAME}")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")
    assert fails(Fatal, mirror, art)[0] == (
        "URL/baby.png: redirected to another host (localhost); SRZOO_MIRROR_ONLY=1 allows only the "
        "mirror's own host")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    mirror.reset()
    mirror.fault(f"/{NAME}", redirect=f"http://localhost:{port}/{NAME}")
    assert fetch_once(mirror, art).size() == art.size
    mirror.fault(f"/{NAME}", redirect="{url}/l/" + NAME, times=None)
    mirror.fault(f"/l/{NAME}", redirect="{url}/" + NAME, times=None)
    assert fails(Fatal, mirror, art)[0] == (
        f"URL/baby.png: redirect loop (URL/baby.png -> URL/l/baby.png -> URL/baby.png)")
    mirror.reset()
    for i in range(4):  # a longer loop shows its last 3 hops and where it returns
        mirror.fault(f"/r{i}/{NAME}" if i else f"/{NAME}", redirect=f"{{url}}/r{i + 1}/{NAME}"
                     if i < 3 else "{url}/" + NAME)
    assert fails(Fatal, mirror, art)[0] == (
        "URL/baby.png: redirect loop (URL/r1/baby.png -> URL/r2/baby.png -> URL/r3/baby.png -> "
        "URL/baby.png)")
    mirror.reset()
    mirror.fault(f"/{NAME}", redirect="http://[::1/x")
    # requests itself parses the location (for Response.next) and raises first: one Fatal line
    assert fails(Fatal, mirror, art)[0] == "URL/baby.png: ValueError: Invalid IPv6 URL"
    mirror.reset()
    monkeypatch.setenv("SRZOO_MAX_REDIRECTS", "2")
    for i in range(4):
        mirror.fault(f"/r{i}/{NAME}" if i else f"/{NAME}", redirect=f"{{url}}/r{i + 1}/{NAME}")
    assert fails(Fatal, mirror, art)[0] == "URL/baby.png: more than 2 redirects (SRZOO_MAX_REDIRECTS)"
    assert len(mirror.log) == 3
    mirror.reset()
    for i in range(2):
        mirror.fault(f"/r{i}/{NAME}" if i else f"/{NAME}", redirect=f"{{url}}/r{i + 1}/{NAME}")
    mirror.fault(f"/r2/{NAME}", status=404)
    assert fails(Fatal, mirror, art)[0] == "URL/baby.png: HTTP 404 Not Found"  # names the URL asked


def test_unreachable_and_invalid_urls(art):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    url = f"http://127.0.0.1:{port}/{NAME}"
    with pytest.raises(Transient) as err:
        fetch_once(None, art, url=url)
    # one line naming the pool (host and port) that failed: the last line of requests' message
    assert str(err.value).startswith(f"{url}: ConnectionError: HTTPConnectionPool(host='127.0.0.1', "
                                     f"port={port}): Max retries exceeded with url: /{NAME} ")
    url = f"https://127.0.0.1:{port}/{NAME}"
    with pytest.raises(Transient) as err:
        fetch_once(None, art, url=url)
    assert str(err.value).startswith(f"{url}: ConnectionError: HTTPSConnectionPool(host='127.0.0.1', "
                                     f"port={port}): Max retries exceeded with url: /{NAME} ")
    with pytest.raises(Fatal) as err:
        fetch_once(None, art, url="http://127.0.0.1:99999/x")
    assert str(err.value).startswith("http://127.0.0.1:99999/x: ")


# ----------------------------------------------------------------------------- retries and the deadline


def test_retries_then_gives_up(mirror, art, monkeypatch):
    monkeypatch.setenv("SRZOO_RETRIES", "2")
    mirror.fault(f"/{NAME}", status=500, times=None)
    with pytest.raises(Fatal) as err:
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", Partial(art), art, Progress(art, True))
    assert str(err.value).replace(mirror.url, "URL") == (
        "URL/baby.png: HTTP 500 Internal Server Error (gave up after 3 tries)")
    assert len(mirror.log) == 3


def test_transient_then_success_resumes(mirror, art, data, monkeypatch):
    monkeypatch.setenv("SRZOO_RETRIES", "1")
    mirror.fault(f"/{NAME}", drop_after=5000)
    p = Partial(art)
    transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert p.path.read_bytes() == data
    assert log(mirror) == [(200, None, None), (206, "bytes=5000-", etag_of(data))]


def test_fatal_is_not_retried(mirror, art, monkeypatch):
    mirror.fault(f"/{NAME}", status=404, times=None)
    with pytest.raises(Fatal):
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", Partial(art), art, Progress(art, True))
    assert len(mirror.log) == 1


def test_backoff_out_of_time(mirror, art, monkeypatch):
    monkeypatch.setenv("SRZOO_RETRIES", "5")
    monkeypatch.setenv("SRZOO_BACKOFF", "100")
    mirror.fault(f"/{NAME}", status=503, times=None)
    t0 = time.monotonic()
    with pytest.raises(Fatal) as err:
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", Partial(art), art, Progress(art, True))
    assert str(err.value).replace(mirror.url, "URL") == (
        "URL/baby.png: HTTP 503 Service Unavailable (gave up after 1 tries: out of time, "
        "SRZOO_TIMEOUT + size / SRZOO_MIN_RATE)")
    assert len(mirror.log) == 1 and time.monotonic() - t0 < 5


def test_retry_or_give_up_directly(art, srzoo_env):
    p = Partial(art)
    e = Transient("x: HTTP 500")
    with pytest.raises(Fatal) as err:
        transfer._retry_or_give_up(e, 2, 2, 0.01, time.monotonic() + 10, p)
    assert str(err.value) == "x: HTTP 500 (gave up after 3 tries)"
    # the back-off doubles: 0.3 * 2**2 = 1.2 s does not fit in 1 s, 0.3 * 2 = 0.6 s does
    with pytest.raises(Fatal) as err:
        transfer._retry_or_give_up(e, 2, 5, 0.3, time.monotonic() + 1.0, p)
    assert str(err.value) == ("x: HTTP 500 (gave up after 3 tries: out of time, "
                              "SRZOO_TIMEOUT + size / SRZOO_MIN_RATE)")
    t0 = time.monotonic()
    transfer._retry_or_give_up(e, 1, 5, 0.3, time.monotonic() + 1.0, p)
    assert 0.6 <= time.monotonic() - t0 < 1.0
    # doubled, not tripled: the third try waits 0.1 * 2**2 = 0.4 s, which fits in 0.7 s (0.9 would not)
    transfer._retry_or_give_up(e, 2, 5, 0.1, time.monotonic() + 0.7, p)


def test_watchdog_cuts_off_trickled_headers(mirror, art, data, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "1.4")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1e9")
    mirror.fault(f"/{NAME}", header_trickle=0.02)
    p = resumable(mirror, art, data, 1000)
    with pytest.raises(Fatal) as err:
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert str(err.value).replace(mirror.url, "URL") == (
        "URL/baby.png: too slow: 1000 of 371264 bytes in the 1 s allowed (SRZOO_TIMEOUT + size / "
        "SRZOO_MIN_RATE), headers included; cut off")
    assert not err.value.discard and len(mirror.log) == 1


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux /proc")
def test_copy_local_unreadable_and_read_errors(srzoo_env):
    """Real files that fail: /proc/sys/vm/drop_caches cannot be opened for reading even by
    root (a write-only sysctl), /proc/self/mem opens but reading address 0 fails (EIO)."""
    a = artifact(10)
    p = Partial(a)
    p.path.parent.mkdir(parents=True)
    try:
        open("/proc/sys/vm/drop_caches", "rb").close()
        pytest.skip("this kernel lets /proc/sys/vm/drop_caches be read")
    except OSError:
        pass
    with pytest.raises(Fatal) as err:
        transfer.copy_local(Path("/proc/sys/vm/drop_caches"), p, a)
    assert str(err.value) == "/proc/sys/vm/drop_caches: cannot read: Permission denied"
    assert not err.value.discard and not p.path.exists()
    with pytest.raises(Fatal) as err:
        transfer.copy_local(Path("/proc/self/mem"), p, a)
    assert str(err.value) == "/proc/self/mem: read error: Input/output error"
    assert err.value.discard is True
    assert p.meta()["source"] == "/proc/self/mem"  # started: the caller discards it (discard=True)


def test_the_deadline_counts_only_the_bytes_still_missing(mirror, art, data, monkeypatch):
    """SRZOO_TIMEOUT + (size - resumable bytes of this URL) / SRZOO_MIN_RATE: with 300000 of
    371264 bytes here, 0.3 + 71264 / 200000 = 0.66 s (2.2 s if the bytes were not counted)."""
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.3")
    monkeypatch.setenv("SRZOO_MIN_RATE", "200000")
    mirror.fault(f"/{NAME}", header_trickle=0.02)
    p = resumable(mirror, art, data, 300000)
    t0 = time.monotonic()
    with pytest.raises(Fatal) as err:
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert str(err.value).replace(mirror.url, "URL") == (
        "URL/baby.png: too slow: 300000 of 371264 bytes in the 1 s allowed (SRZOO_TIMEOUT + size / "
        "SRZOO_MIN_RATE), headers included; cut off")
    assert err.value.discard is False and time.monotonic() - t0 < 2
    assert p.path.read_bytes() == data[:300000]  # kept for a resume
    # bytes of another source do not count: they are no head start
    mirror.reset()
    mirror.fault(f"/{NAME}", header_trickle=0.02)
    p = resumable(mirror, art, data, 300000, source="http://elsewhere.invalid/x")
    with pytest.raises(Fatal) as err:
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert str(err.value).replace(mirror.url, "URL") == (
        "URL/baby.png: too slow: 0 of 371264 bytes in the 2 s allowed (SRZOO_TIMEOUT + size / "
        "SRZOO_MIN_RATE), headers included; cut off")
    assert err.value.discard is False


def test_each_try_shows_it_is_alive(mirror, art, data):
    """Every attempt touches the partial's record at once (waiting processes watch its mtime),
    even within a second of the last beat."""
    p = resumable(mirror, art, data, 1000)  # just started: a beat now would be skipped unless forced
    os.utime(p.meta_path, (1_000_000, 1_000_000))
    mirror.fault(f"/{NAME}", status=404)
    with pytest.raises(Fatal):
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert p.meta_path.stat().st_mtime > time.time() - 60


# ----------------------------------------------------------------------------- answers httpmirror cannot give


class Canned:
    """A raw HTTP server on 127.0.0.1 (TLS with ``tls``) for answers httpmirror does not give:
    each connection reads one request head (recorded, header names in lower case), waits
    ``delay``, sends the next scripted bytes as they are, then hangs up, or with ``hold`` waits
    for the client to go away first."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"
        self.tls = tls
        self.answers: list[tuple[bytes, float, bool]] = []
        self.requests: list[dict[str, str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def answer(self, head: str, body: bytes = b"", *, delay: float = 0.0, hold: bool = False) -> None:
        self.answers.append(((head.strip() + "\r\nConnection: close\r\n\r\n").encode() + body, delay, hold))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    more = conn.recv(65536)
                    if not more:
                        return
                    buf += more
                lines = buf.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
                self.requests.append({k.strip().lower(): v.strip()
                                      for k, v in (line.split(":", 1) for line in lines)})
                raw, delay, hold = self.answers.pop(0)
                time.sleep(delay)
                conn.sendall(raw)
                while hold and conn.recv(65536):
                    pass
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canned():
    c = Canned()
    yield c
    c.close()


def test_206_without_a_usable_content_range_restarts(canned, art, data):
    """No Content-Range, or one that says nothing parseable: not the bytes asked for."""
    url = f"{canned.url}/{NAME}"
    canned.answer("HTTP/1.1 206 Partial Content\r\nContent-Length: 10", b"0123456789")
    with pytest.raises(Transient) as err:
        fetch_once(None, art, resumable(canned, art, data, 1000), url=url)
    assert str(err.value) == f"{url}: HTTP 206 for bytes '', not from byte 1000; restarting"
    assert not Partial(art).path.exists()
    # from byte 1, a garbled range is not taken for "from byte 1" either
    canned.answer("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes one-two/three\r\n"
                  "Content-Length: 10", b"0123456789")
    with pytest.raises(Transient) as err:
        fetch_once(None, art, resumable(canned, art, data, 1), url=url)
    assert str(err.value) == (f"{url}: HTTP 206 for bytes 'bytes one-two/three', not from byte 1; "
                              "restarting")
    assert canned.requests[-1]["range"] == "bytes=1-"


def test_oversized_partial_is_not_resumed(canned, art, data):
    """More bytes than the manifest's size: thrown away, no Range asked, and a 206 that comes
    anyway does not start from byte 0 of what we hold."""
    url = f"{canned.url}/{NAME}"
    n = len(data)
    canned.answer(f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{n - 1}/{n}\r\n"
                  f"Content-Length: {n}", data)
    with pytest.raises(Transient) as err:
        fetch_once(None, art, resumable(canned, art, data + b"junk", n + 4), url=url)
    assert str(err.value) == f"{url}: HTTP 206 for bytes 'bytes 0-{n - 1}/{n}', not from byte 0; restarting"
    assert "range" not in canned.requests[0] and not Partial(art).path.exists()


def test_206_total_is_the_last_field_and_may_be_unknown(canned, mirror, art, data):
    url = f"{canned.url}/{NAME}"
    canned.answer(f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1000-{len(data) - 1}/"
                  f"{len(data)}/5\r\nContent-Length: {len(data) - 1000}", data[1000:])
    with pytest.raises(Fatal) as err:
        fetch_once(None, art, resumable(canned, art, data, 1000), url=url)
    assert str(err.value) == f"{url}: the server's file has 5 bytes, the manifest says {len(data)}"
    assert err.value.discard
    mirror.fault(f"/{NAME}", range_total="*")  # RFC 9110: "*" when the server does not know
    assert fetch_once(mirror, art, resumable(mirror, art, data, 1000)).path.read_bytes() == data
    assert log(mirror) == [(206, "bytes=1000-", None)]


def test_wrong_length_without_a_content_type(canned, art):
    url = f"{canned.url}/{NAME}"
    canned.answer("HTTP/1.1 200 OK\r\nContent-Length: 61", b"x" * 61)
    with pytest.raises(Fatal) as err:
        fetch_once(None, art, url=url)
    assert str(err.value) == (f"{url}: answered 61 bytes of unknown type where the manifest says "
                              f"{art.size} bytes (an error or login page?)")
    assert err.value.discard


def test_last_modified_and_an_empty_content_encoding(canned, art, data):
    """An empty Content-Encoding is no encoding: a dropped body is kept and resumed; with a weak
    ETag, the Last-Modified recorded from the first answer is the If-Range of the resume."""
    url = f"{canned.url}/{NAME}"
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    canned.answer(f'HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\nContent-Encoding: \r\n'
                  f'ETag: W/"weak"\r\nLast-Modified: {date}', data[:1000])
    with pytest.raises(Transient) as err:
        fetch_once(None, art, url=url)
    assert str(err.value) == f"{url}: interrupted at byte 1000: ProtocolError"
    p = Partial(art)
    assert p.meta() == {"source": url, "etag": 'W/"weak"', "last_modified": date}
    assert p.path.read_bytes() == data[:1000]
    canned.answer(f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1000-{len(data) - 1}/"
                  f"{len(data)}\r\nContent-Length: {len(data) - 1000}", data[1000:])
    assert fetch_once(None, art, p, url=url).path.read_bytes() == data
    assert [(r["range"], r["if-range"]) for r in canned.requests[1:]] == [("bytes=1000-", date)]
    assert [r["accept-encoding"] for r in canned.requests] == ["identity", "identity"]


def test_body_ends_early_without_a_content_length(canned, art, data):
    url = f"{canned.url}/{NAME}"
    canned.answer("HTTP/1.1 200 OK", data[:1000])
    with pytest.raises(Transient) as err:
        fetch_once(None, art, url=url)
    assert str(err.value) == f"{url}: connection closed at byte 1000 of {len(data)}"
    assert Partial(art).path.read_bytes() == data[:1000]  # kept for a resume


def test_compressed_body_interrupted_is_discarded(canned, art, data):
    """A decoded stream cannot be resumed by byte offset."""
    url = f"{canned.url}/{NAME}"
    gz = gzip_of(data)
    canned.answer(f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(gz)}",
                  gz[: len(gz) // 2])
    with pytest.raises(Fatal) as err:
        fetch_once(None, art, url=url)
    m = re.fullmatch(rf"{re.escape(url)}: interrupted at byte (\d+): ProtocolError: .*IncompleteRead.*",
                     str(err.value))
    assert m and 0 < int(m.group(1)) <= len(zlib.decompressobj(31).decompress(gz[: len(gz) // 2]))
    assert err.value.discard is True


def test_compressed_body_cut_off_by_the_watchdog_is_discarded(canned, art, data, monkeypatch):
    """The watchdog's "too slow" keeps the attempt's discard: a decoded stream is not resumed.
    The headers come 0.15 s late, so the body's read time-out (bounded by the deadline from
    before the request) ends after the 0.4 s deadline: the watchdog cuts the stalled read."""
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.4")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1e12")
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    url = f"{canned.url}/{NAME}"
    gz = gzip_of(data)
    canned.answer(f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(gz)}",
                  gz[: len(gz) // 2], delay=0.15, hold=True)
    with pytest.raises(Fatal) as err:
        transfer.http_fetch(transfer.new_session(), url, Partial(art), art, Progress(art, True))
    assert re.fullmatch(rf"{re.escape(url)}: too slow: \d+ of {len(data)} bytes in the 0 s allowed "
                        r"\(SRZOO_TIMEOUT \+ size / SRZOO_MIN_RATE\), headers included; cut off",
                        str(err.value)), str(err.value)
    assert err.value.discard is True


def gzip_of(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


# ----------------------------------------------------------------------------- injected clocks


def clock(monkeypatch, monotonic) -> None:
    """transfer's own clock (not the watchdog timers' or the server's)."""
    monkeypatch.setattr(transfer, "time", types.SimpleNamespace(monotonic=monotonic, sleep=time.sleep))


def test_an_answer_after_the_deadline_is_not_trusted(mirror, art, data, monkeypatch):
    """Headers read once the deadline has passed (the watchdog may have cut them short) are no
    answer: the resumable bytes stay."""
    now = iter([0.0, 10.0])  # before the request, after its headers
    clock(monkeypatch, lambda: next(now))
    p = resumable(mirror, art, data, 1000)
    with pytest.raises(Transient) as err:
        transfer.http_fetch_once(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, 5.0, 10.0,
                                 Progress(art, True))
    assert str(err.value).replace(mirror.url, "URL") == (
        "URL/baby.png: no complete answer before the deadline")
    assert p.path.read_bytes() == data[:1000]


def test_the_last_bytes_after_the_deadline_complete_the_file(mirror, art, data, monkeypatch):
    """The deadline passes as the last chunk arrives: nothing is missing, so it is no failure."""
    p = Partial(art)
    clock(monkeypatch, lambda: 100.0 if p.size() >= art.size else 0.0)
    transfer.http_fetch_once(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, 5.0, 50.0,
                             Progress(art, True))
    assert p.path.read_bytes() == data


@pytest.fixture
def deadlines(monkeypatch) -> list[float]:
    """Each Watchdog's deadline, with SRZOO_TIMEOUT=5, SRZOO_MIN_RATE=1000 and the clock at 1000 s."""
    monkeypatch.setenv("SRZOO_TIMEOUT", "5")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000")
    seen: list[float] = []

    class Recorded(transfer.Watchdog):
        def __init__(self, session, deadline):
            seen.append(deadline)
            super().__init__(session, deadline)

    monkeypatch.setattr(transfer, "Watchdog", Recorded)
    clock(monkeypatch, lambda: 1000.0)
    return seen


def test_the_bound_ignores_bytes_of_another_source(mirror, art, data, deadlines):
    """SRZOO_TIMEOUT + size / SRZOO_MIN_RATE from the clock's now: another source's bytes are
    no head start."""
    mirror.fault(f"/{NAME}", status=404)
    p = resumable(mirror, art, data, 300000, source="http://elsewhere.invalid/x")
    with pytest.raises(Fatal):
        transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert deadlines == [1000.0 + 5 + len(data) / 1000]


def test_the_bound_after_an_oversized_partial_is_the_whole_files(mirror, art, data, deadlines):
    """A partial of this URL longer than the manifest's size is thrown away and the whole file
    fetched again: it gets the whole file's time, not SRZOO_TIMEOUT alone."""
    p = resumable(mirror, art, data + b"junk", len(data) + 4)
    transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert p.path.read_bytes() == data and log(mirror) == [(200, None, None)]
    assert deadlines == [1000.0 + 5 + len(data) / 1000]


def test_the_bound_of_a_complete_partial_is_the_timeout_alone(mirror, art, data, deadlines):
    """A partial of this URL as long as the file: nothing is left to download, so the bound is
    SRZOO_TIMEOUT alone (only a partial longer than the file gets the whole file's time)."""
    p = resumable(mirror, art, data, len(data))
    transfer.http_fetch(transfer.new_session(), f"{mirror.url}/{NAME}", p, art, Progress(art, True))
    assert p.path.read_bytes() == data
    assert deadlines == [1000.0 + 5]
    assert log(mirror) == []


# ----------------------------------------------------------------------------- progress and the disk


class Shown(Progress):
    def __init__(self) -> None:
        self.bar = None
        self.shown: list[int] = []

    def set(self, n: int) -> None:
        self.shown.append(n)


def test_progress_starts_at_the_resumed_byte(mirror, art, data):
    shown = Shown()
    transfer.http_fetch_once(transfer.new_session(), f"{mirror.url}/{NAME}",
                             resumable(mirror, art, data, 1000), art, 5.0, time.monotonic() + 30, shown)
    assert shown.shown[0] == 1000 and shown.shown[-1] == len(data)
    assert shown.shown == sorted(set(shown.shown)) and len(shown.shown) >= 2


def linked_partial(art: Artifact, target: str) -> Partial:
    """A partial whose path is a symbolic link to ``target``: writes go there."""
    p = Partial(art)
    p.discard()
    p.path.parent.mkdir(parents=True, exist_ok=True)
    p.path.symlink_to(target)
    return p


@pytest.mark.skipif(not (Path("/dev/full").exists() and Path("/dev/null").exists()),
                    reason="needs /dev/full and /dev/null")
def test_disk_errors_name_the_partial(mirror, art, data, shared_dir, tmp_path):
    """Real failing files: a link into a missing folder cannot be opened, /dev/full refuses
    every write (ENOSPC), /dev/null takes writes but cannot be fsync'ed (EINVAL)."""
    url = f"{mirror.url}/{NAME}"
    for target, errno_ in [(str(tmp_path / "missing" / "x"), errno.ENOENT), ("/dev/full", errno.ENOSPC),
                           ("/dev/null", errno.EINVAL)]:
        p = linked_partial(art, target)
        with pytest.raises(DiskError) as err:
            fetch_once(mirror, art, p, url=url)
        assert (err.value.path, err.value.err.errno) == (p.path, errno_), target
    # the cut-off write of a body longer than the manifest says (no Content-Length to refuse first)
    small = artifact(100)
    p = linked_partial(small, "/dev/full")
    mirror.fault(f"/{NAME}", endless=True)
    with pytest.raises(DiskError) as err:
        fetch_once(mirror, small, p, url=url)
    assert (err.value.path, err.value.err.errno) == (p.path, errno.ENOSPC)
    # a local mirror folder's copy: cannot be fsync'ed either, and a small file's failed write
    # is a DiskError too (a buffered one would fail again in close(), as a bare OSError)
    p = linked_partial(art, "/dev/null")
    with pytest.raises(DiskError) as err:
        transfer.copy_local(shared_dir / "datasets" / "Set5" / NAME, p, art)
    assert (err.value.path, err.value.err.errno) == (p.path, errno.EINVAL)
    (tmp_path / "small").write_bytes(b"x" * 100)
    p = linked_partial(small, "/dev/full")
    with pytest.raises(DiskError) as err:
        transfer.copy_local(tmp_path / "small", p, small)
    assert (err.value.path, err.value.err.errno) == (p.path, errno.ENOSPC)


# ----------------------------------------------------------------------------- the watchdog and TLS


def test_watchdog_fires_on_a_session_it_did_not_make(monkeypatch):
    """A plain requests session has no remembered sockets: nothing to cut, and no error."""
    errors: list[object] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    w = transfer.Watchdog(requests.Session(), 0.0)  # long past: fires at once
    w._timer.join(10)
    assert w.fired and errors == []


TLS = Path(__file__).parent.parent / "data" / "tls"  # a self-signed certificate for 127.0.0.1


def test_watchdog_cuts_off_a_tls_exchange(art, data):
    """https goes through the watched adapter too, and the socket remembered is the TLS one (the
    plain socket it wraps is detached, so shutting that down would do nothing)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    server = Canned(tls=ctx)
    try:
        server.answer(f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}", data[:1000], hold=True)
        s = transfer.new_session()
        r = s.get(f"{server.url}/{NAME}", stream=True, timeout=10, verify=str(TLS / "cert.pem"))
        assert r.raw.read(1000) == data[:1000]
        assert any(isinstance(x, ssl.SSLSocket) for x in s.srzoo_sockets)
        w = transfer.Watchdog(s, 0.0)
        w._timer.join(10)
        assert w.fired
        with pytest.raises(urllib3.exceptions.ProtocolError):  # cut off, not a read time-out
            r.raw.read()
    finally:
        server.close()
