"""Hostile places for the hub: a mirror URL with a password, a server that
trickles its headers, a cache that is not a folder. All against the real local
HTTP server (tests/httpmirror.py) and real files."""

from __future__ import annotations

import json
import stat
import time

import pytest

import srzoo
from srzoo import fsutil
from srzoo.hub.catalog import store

ESPCN4 = "ESPCN_x4.pb"  # 100323 bytes
SECRET = "s3cr3tpw"


def test_redact_removes_userinfo_of_every_url():
    text = "http://alice:s3cr3tpw@h:8/x | https://bob@example.org/y and ftp://u:p@z/ ok"
    assert fsutil.redact(text) == "http://***@h:8/x | https://***@example.org/y and ftp://***@z/ ok"
    assert fsutil.redact("http://host/a@b") == "http://host/a@b"  # an @ in the path is not userinfo


def test_mirror_password_never_printed_nor_stored(srzoo_env, mirror, monkeypatch):
    """A mirror with credentials that fails mid-file: the error line and the
    partial's source record hold no password, and the record is private (0600)."""
    base = mirror.url.replace("http://", f"http://alice:{SECRET}@")
    monkeypatch.setenv("SRZOO_MIRROR", base)
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    mirror.fault(f"/{ESPCN4}", drop_after=5000, times=None)
    with pytest.raises(srzoo.DownloadError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    msg = str(err.value)
    assert SECRET not in msg and "alice" not in msg
    assert "http://***@127.0.0.1" in msg and "interrupted at byte 5000" in msg
    records = list((srzoo_env / ".incomplete").glob("*.part.json"))
    assert len(records) == 1
    assert SECRET not in records[0].read_text()
    assert json.loads(records[0].read_text())["source"].startswith("http://***@127.0.0.1")
    assert stat.S_IMODE(records[0].stat().st_mode) == 0o600
    # the resume still works from the same (redacted) source and completes the file
    mirror.reset()
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.stat().st_size == 100323
    gets = mirror.gets(ESPCN4)
    assert [(h.status, h.range) for h in gets] == [(206, "bytes=5000-")]


def test_header_trickle_is_cut_off_by_the_source_deadline(srzoo_env, mirror, monkeypatch):
    """The server sends its headers one byte every 0.2 s and never finishes them
    (no read ever times out); the source's whole-exchange deadline cuts it off."""
    monkeypatch.setenv("SRZOO_TIMEOUT", "1")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000000")  # bound: 1 s + 0.1 s
    mirror.fault(f"/{ESPCN4}", header_trickle=0.2, times=None)
    t0 = time.monotonic()
    with pytest.raises(srzoo.DownloadError, match=r"too slow: 0 of 100323 bytes in the 1 s allowed "
                                                   r"\(SRZOO_TIMEOUT \+ size / SRZOO_MIN_RATE\), "
                                                   r"headers included; cut off"):
        srzoo.fetch("espcn", 4, quiet=True)
    took = time.monotonic() - t0
    assert took < 4, took  # without the watchdog: 100 000 header bytes x 0.2 s
    assert len(mirror.gets(ESPCN4)) == 1  # no retry after the deadline


def test_header_trickle_moves_on_to_the_next_mirror(srzoo_env, mirror, monkeypatch, shared_dir):
    monkeypatch.setenv("SRZOO_TIMEOUT", "1")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000000")
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/slow,{mirror.url}/good")
    mirror.fault(f"/slow/{ESPCN4}", header_trickle=0.2, times=None)
    t0 = time.monotonic()
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert time.monotonic() - t0 < 5
    assert path.read_bytes() == (shared_dir / "models" / "opencv" / ESPCN4).read_bytes()


def test_catalogue_get_is_cut_off_when_headers_trickle(mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "1")
    mirror.fault("/trickle", header_trickle=0.2, times=None)
    t0 = time.monotonic()
    url = mirror.url.replace("http://", f"http://bob:{SECRET}@") + "/trickle"
    with pytest.raises(store.CatalogError, match=r"too slow: no complete answer") as err:
        store._get(url, 4096)
    assert time.monotonic() - t0 < 4
    assert SECRET not in str(err.value) and "http://***@127.0.0.1" in str(err.value)


def test_catalogue_get_reads_a_normal_answer(mirror, shared_dir):
    data = store._get(f"{mirror.url}/{ESPCN4}", 1 << 20)
    assert data == (shared_dir / "models" / "opencv" / ESPCN4).read_bytes()
    with pytest.raises(store.CatalogError, match=r"more than 4096 bytes; refused"):
        store._get(f"{mirror.url}/{ESPCN4}", 4096)
