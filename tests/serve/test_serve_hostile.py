"""Hostile clients against a real ``srzoo serve``: each gets a clear 4xx (or a
408 for a client that trickles bytes) and the server goes on serving others."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from servekit import decode, files_under, png_bytes, submit, wait_done

import srzoo

TOKEN = "s3cret-token-0123456789"


def small() -> bytes:
    return png_bytes(np.random.default_rng(2).integers(0, 255, (24, 32, 3), dtype=np.uint8))


def still_serving(url: str, headers: dict | None = None) -> None:
    """A normal job still works, and its result is right."""
    img = np.random.default_rng(3).integers(0, 255, (20, 18, 3), dtype=np.uint8)
    res = submit(url, png_bytes(img), headers=headers)
    assert res.status_code == 202, res.text
    done = wait_done(url, res.json()["id"], headers=headers)
    got = decode(requests.get(f"{url}{done['result_url']}", headers=headers, timeout=30).content)
    assert np.array_equal(got, srzoo.upscale(img, "default", 2))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(w: int, h: int) -> bytes:
    """A real PNG of w x h black grey pixels: tiny file, huge image."""
    z = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def raw_request(port: int, head: bytes, body_parts: list[bytes], pause: float = 0.0,
                timeout: float = 30) -> bytes:
    """Send headers then body parts (pausing between them); the raw answer ('' if closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        for p in body_parts:
            try:
                s.sendall(p)
            except OSError:
                break
            time.sleep(pause)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)
    finally:
        s.close()


def multipart_head(port: int, length: int, boundary: str = "XyZ") -> bytes:
    return (f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_an_oversized_body_is_413_before_it_is_read(start):
    r = start(max_upload=100_000)
    big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    data = png_bytes(big)
    assert len(data) > 200_000
    res = submit(r.url, data)
    assert res.status_code == 413
    assert res.json()["error"] == ("the request is above this server's limit of 100000 bytes; "
                                   "send a smaller file")
    # declared length far above the limit: answered from the header alone
    t0 = time.monotonic()
    answer = raw_request(r.port, multipart_head(r.port, 10 << 30), [])
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - t0 < 5
    # chunked, no length: counted while read
    def gen():
        for _ in range(50):
            yield b"x" * 10_000
    res = requests.post(f"{r.url}/api/jobs", data=gen(),
                        headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=30)
    assert res.status_code == 413
    still_serving(r.url)


def test_a_png_bomb_is_refused_before_decoding(server):
    bomb = png_bomb(12000, 12000)  # 144 MP in ~140 KB
    assert len(bomb) < 400_000
    t0 = time.monotonic()
    res = submit(server.url, bomb, name="bomb.png")
    assert time.monotonic() - t0 < 5
    assert res.status_code == 413
    assert res.json()["error"] == ("bomb.png: a 12000x12000 image is 144.0 MP, above this server's "
                                   "input limit of 25.0 MP (refused before decoding); downscale or crop it")
    # small enough as input, too big once upscaled: refused from the header too
    res = submit(server.url, png_bomb(4000, 4000), name="b.png", scale=4)
    assert res.status_code == 413 and "output limit of 100.0 MP (refused before decoding)" in res.json()["error"]
    assert files_under(server.store.root) == []
    still_serving(server.url)


@pytest.mark.parametrize("data, why", [
    (b"this is not an image\n" * 50, "not an image OpenCV can decode"),
    (b"", "the upload is empty"),
])
def test_a_non_image_is_refused(server, data, why):
    res = submit(server.url, data, name="notes.txt")
    assert res.status_code in (400, 415)
    assert res.json()["error"].startswith("notes.txt: ") and why in res.json()["error"]
    assert "\n" not in res.json()["error"] and str(server.store.root) not in res.json()["error"]
    still_serving(server.url)


def test_a_truncated_image_is_refused(server, shared_dir):
    data = (shared_dir / "datasets" / "Set5" / "butterfly.png").read_bytes()
    res = submit(server.url, data[: len(data) // 3], name="cut.png")
    assert res.status_code == 415, res.text
    assert res.json()["error"].startswith("cut.png: ")
    still_serving(server.url)


def test_a_truncated_upload_leaves_nothing_and_the_server_serves_on(server):
    body = small()
    head = multipart_head(server.port, len(body) + 500)
    answer = raw_request(server.port, head, [body[:100]], timeout=5)  # then close
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
    time.sleep(0.2)
    assert files_under(server.store.root) == []
    still_serving(server.url)


@pytest.mark.parametrize("name", ["../../../../tmp/evil.png", "..\\..\\evil.png", "/etc/passwd",
                                  "a/b/../../../x.png", ".hidden.png", "nul\x00.png", "ünï cødé.png"])
def test_client_filenames_are_never_paths(server, tmp_path, name):
    res = submit(server.url, small(), name=name)
    assert res.status_code == 202, res.text
    job = wait_done(server.url, res.json()["id"])
    dl = job["download_name"]
    assert "/" not in dl and "\\" not in dl and not dl.startswith(".") and ".." not in dl.replace("..png", "")
    assert all(c.isascii() for c in dl)
    got = requests.get(f"{server.url}{job['result_url']}", timeout=30)
    assert got.status_code == 200
    assert [p.relative_to(server.store.root).parts[1:] for p in files_under(server.store.root)] == [
        ("result.png",)]
    assert not Path("/tmp/evil.png").exists() or Path("/tmp/evil.png").stat().st_mtime < time.time() - 60


def test_an_unknown_model_gets_the_cli_text(server):
    res = submit(server.url, small(), model="no-such-model")
    assert res.status_code == 400
    with pytest.raises(srzoo.SrzooError) as cli:
        srzoo.get_model("no-such-model")
    assert res.json()["error"] == " ".join(str(cli.value).split())


@pytest.mark.parametrize("form, text", [
    ({"scale": "1e9"}, "model 'default' has no x1e+09"),
    ({"scale": "0"}, "scale must be a positive number, got '0'"),
    ({"scale": "-3"}, "scale must be a positive number, got '-3'"),
    ({"scale": "nan"}, "scale must be a positive number, got 'nan'"),
    ({"scale": "two"}, "scale must be a number, got 'two'"),
    ({"scale": "0.5"}, "scale 0.5 would shrink the image"),
    ({"width": "-5"}, "--width must be a positive whole number of pixels, got '-5'"),
    ({"height": "1e99"}, "--height must be a positive whole number of pixels, got '1e99'"),
    ({"width": "10"}, "smaller than the 32x24 input"),
    ({"width": "100000", "height": "100000"}, "model 'default' has no x3.12e+03"),
    ({"model": "nearest", "width": "100000", "height": "100000"}, "above this server's output limit"),
])
def test_absurd_options_are_400_with_the_cli_text(server, form, text):
    res = submit(server.url, small(), **form)
    assert res.status_code in (400, 413), res.text
    assert text in res.json()["error"], res.json()
    assert files_under(server.store.root) == []


def test_a_non_loopback_bind_needs_the_token(start):
    r = start(host="0.0.0.0", token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
        res = requests.get(f"{r.url}/api/models", headers=headers, timeout=30)
        assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer TOKEN" in res.json()["error"]
        assert submit(r.url, small(), headers=headers).status_code == 401
    # the unauthenticated upload was not even read: nothing was stored
    assert files_under(r.store.root) == []
    assert requests.get(f"{r.url}/", timeout=30).status_code == 200  # the page asks for the token
    still_serving(r.url, headers={"Authorization": f"Bearer {TOKEN}"})


def test_the_cli_refuses_a_non_loopback_bind_without_a_token(monkeypatch):
    monkeypatch.delenv("SRZOO_SERVE_TOKEN", raising=False)
    p = subprocess.run([sys.executable, "-m", "srzoo", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.splitlines() == [
        "srzoo: error: --host 0.0.0.0 is reachable from other machines: give --token TOKEN or set "
        "SRZOO_SERVE_TOKEN (clients then send 'Authorization: Bearer TOKEN'), or bind 127.0.0.1"]
    monkeypatch.setenv("SRZOO_SERVE_TOKEN", "short")
    p = subprocess.run([sys.executable, "-m", "srzoo", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1
    assert p.stderr.startswith("srzoo: error: the token has 5 characters, fewer than 16")


def test_a_client_trickling_bytes_gets_408_while_others_are_served(start):
    r = start(upload_idle=1.0, upload_grace=1.5, min_rate=2000)
    body = small()
    answers: dict[str, bytes] = {}

    def loris() -> None:  # one byte every 0.3 s: never idle 1 s, far below 2000 bytes/s
        answers["slow"] = raw_request(r.port, multipart_head(r.port, len(body)),
                                      [body[i:i + 1] for i in range(len(body))], pause=0.3, timeout=30)

    def stall() -> None:  # stops sending after 10 bytes
        answers["stall"] = raw_request(r.port, multipart_head(r.port, len(body)), [body[:10]],
                                       timeout=30)

    t0 = time.monotonic()
    threads = [threading.Thread(target=loris), threading.Thread(target=stall)]
    for t in threads:
        t.start()
    still_serving(r.url)  # meanwhile
    for t in threads:
        t.join(timeout=30)
    assert time.monotonic() - t0 < 15
    for k in ("slow", "stall"):
        assert answers[k].startswith(b"HTTP/1.1 408"), answers[k][:200]
    assert b"too slow" in answers["slow"] and b"stalled for 1 s" in answers["stall"]
    assert files_under(r.store.root) == [] or all(p.name == "result.png" for p in files_under(r.store.root))
    still_serving(r.url)


def test_a_full_queue_answers_503_with_retry_after_and_recovers(start, shared_dir):
    r = start(workers=1, queue=1, retry_after=2)
    baby = (shared_dir / "datasets" / "Set5" / "baby.png").read_bytes()
    first = submit(r.url, baby, scale=4)  # 512^2 x4: the worker is busy for a while
    assert first.status_code == 202
    second = submit(r.url, small())  # waits in the queue (1 place)
    third = submit(r.url, small())
    assert wait_done(r.url, first.json()["id"])["state"] == "done"
    assert second.status_code == 202
    assert third.status_code == 503, "the first job ended before the third was sent: use a slower one"
    assert third.headers["retry-after"] == "2"
    assert third.json()["error"] == "the server is busy: 1 jobs are waiting; try again in 2 s"
    assert wait_done(r.url, second.json()["id"])["state"] == "done"
    still_serving(r.url)  # recovered
