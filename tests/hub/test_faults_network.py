"""Hostile networks against the real local HTTP server: every failure of one
source moves on to the next, nothing unverified is ever kept in the cache, and
nothing hangs (each case is bounded by small time-outs)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import srzoo
from srzoo.hub import cache, download
from suite import cache_files

ESPCN4 = "ESPCN_x4.pb"  # 100323 bytes


def good_bytes(shared_dir: Path) -> bytes:
    return (shared_dir / "models" / "opencv" / ESPCN4).read_bytes()


def two_mirrors(monkeypatch, mirror, first: str = "bad", second: str = "good") -> None:
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/{first},{mirror.url}/{second}")


def assert_clean(cache_root: Path) -> None:
    """Nothing unverified in the verified folders, no partial left behind."""
    assert cache_files(cache_root) == []
    inc = cache_root / ".incomplete"
    assert not inc.exists() or list(inc.iterdir()) == []


def fetched_from_second(srzoo_env: Path, mirror, shared_dir: Path) -> None:
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)
    good = [h for h in mirror.gets(ESPCN4) if h.path.startswith("/good/")]
    # the good mirror was asked for the whole file: no bytes of the bad one were resumed from
    assert [(h.status, h.range) for h in good] == [(200, None)]


def test_redirect_loop_moves_on_to_next_mirror(srzoo_env, mirror, shared_dir, monkeypatch):
    two_mirrors(monkeypatch, mirror)
    mirror.fault("/bad/*", redirect="{url}/bad/again/" + ESPCN4, times=None)
    fetched_from_second(srzoo_env, mirror, shared_dir)


def test_redirect_loop_alone_is_one_clear_error(srzoo_env, mirror, monkeypatch):
    mirror.fault(f"/{ESPCN4}", redirect="{url}/loop/" + ESPCN4, times=None)
    mirror.fault(f"/loop/{ESPCN4}", redirect="{url}/" + ESPCN4, times=None)
    with pytest.raises(srzoo.DownloadError, match=r"redirect loop"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert len(mirror.gets(ESPCN4)) <= 3  # not 30 redirects, not retried
    assert_clean(srzoo_env)


def test_too_many_redirects_are_bounded(srzoo_env, mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_MAX_REDIRECTS", "3")
    for i in range(10):
        mirror.fault(f"/r{i}/{ESPCN4}" if i else f"/{ESPCN4}", redirect=f"{{url}}/r{i + 1}/{ESPCN4}")
    with pytest.raises(srzoo.DownloadError, match=r"more than 3 redirects \(SRZOO_MAX_REDIRECTS\)"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert len(mirror.gets(ESPCN4)) == 4


def test_redirect_to_file_scheme_is_refused_then_next_mirror(srzoo_env, mirror, shared_dir,
                                                             monkeypatch):
    two_mirrors(monkeypatch, mirror)
    mirror.fault("/bad/*", redirect=f"file://{shared_dir}/models/opencv/{ESPCN4}", times=None)
    fetched_from_second(srzoo_env, mirror, shared_dir)
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/bad")
    with pytest.raises(srzoo.DownloadError, match=r"redirected to 'file://.*only http and https"):
        srzoo.fetch("espcn", 4, quiet=True, force=True)


def test_mirror_only_refuses_redirect_to_another_host(srzoo_env, mirror, shared_dir, monkeypatch):
    port = mirror.url.rsplit(":", 1)[1]
    elsewhere = f"http://localhost:{port}/{ESPCN4}"  # the same server, by another host name
    mirror.fault(f"/{ESPCN4}", redirect=elsewhere, times=None)
    with pytest.raises(srzoo.DownloadError, match=r"another host \(localhost\).*SRZOO_MIRROR_ONLY"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert_clean(srzoo_env)
    # a redirect on the mirror's own host is fine
    mirror.reset()
    mirror.fault(f"/{ESPCN4}", redirect="{url}/moved/" + ESPCN4)
    assert srzoo.fetch("espcn", 4, quiet=True).read_bytes() == good_bytes(shared_dir)


def test_without_mirror_only_redirect_to_another_host_is_followed(srzoo_env, mirror, shared_dir,
                                                                   monkeypatch):
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")  # the mirror answers, so the hub is never asked
    port = mirror.url.rsplit(":", 1)[1]
    mirror.fault(f"/{ESPCN4}", redirect=f"http://localhost:{port}/cdn/{ESPCN4}")
    assert srzoo.fetch("espcn", 4, quiet=True).read_bytes() == good_bytes(shared_dir)
    assert [h.path for h in mirror.gets(ESPCN4)] == [f"/{ESPCN4}", f"/cdn/{ESPCN4}"]


def test_bad_gzip_body_moves_on(srzoo_env, mirror, shared_dir, monkeypatch):
    two_mirrors(monkeypatch, mirror)
    mirror.fault("/bad/*", bad_gzip=True, times=None)
    fetched_from_second(srzoo_env, mirror, shared_dir)
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/bad")
    with pytest.raises(srzoo.DownloadError, match=r"(decode|gzip).*\(from http://.*/bad/ESPCN_x4.pb\)"):
        srzoo.fetch("espcn", 4, quiet=True, force=True)


def test_html_page_then_good_mirror_is_not_resumed_from(srzoo_env, mirror, shared_dir, monkeypatch):
    """A captive portal answers 200 with a short page: refused before it is
    kept, and the good mirror is asked for the whole file."""
    two_mirrors(monkeypatch, mirror, "portal")
    mirror.fault("/portal/*", html=True, times=None)
    fetched_from_second(srzoo_env, mirror, shared_dir)
    portal = [h for h in mirror.gets(ESPCN4) if h.path.startswith("/portal/")]
    assert [h.status for h in portal] == [200]  # not retried: it is not a transient failure


def test_partial_of_one_mirror_is_never_resumed_at_another(srzoo_env, mirror, shared_dir,
                                                           monkeypatch):
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    two_mirrors(monkeypatch, mirror, "first", "second")
    mirror.fault(f"/first/{ESPCN4}", drop_after=30000)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)
    hits = mirror.gets(ESPCN4)
    assert [(h.path.split("/")[1], h.status, h.range) for h in hits] == [
        ("first", 200, None), ("second", 200, None)]


def test_resume_sends_if_range_with_the_etag(srzoo_env, mirror, shared_dir):
    mirror.fault(f"/{ESPCN4}", drop_after=30000)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)
    first, second = mirror.gets(ESPCN4)
    assert first.status == 200 and second.status == 206
    assert second.if_range and second.if_range.startswith('"100323-')  # the server's ETag


def test_resume_of_a_changed_file_starts_again(srzoo_env, mirror, shared_dir):
    """The first answer carried another ETag (the file changed since): the
    server answers the If-Range resume with the whole file, which is taken
    from byte 0, not appended."""
    mirror.fault(f"/{ESPCN4}", drop_after=30000, etag='"old-version"')
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)
    first, second = mirror.gets(ESPCN4)
    assert second.if_range == '"old-version"' and second.range.startswith("bytes=")
    assert second.status == 200


def test_weak_etag_is_never_sent_as_if_range(srzoo_env, mirror, shared_dir):
    """A weak ETag (``W/"..."``) cannot validate a byte range (RFC 9110 13.1.5): the
    resume asks for the rest without ``If-Range`` (the mirror sends no Last-Modified)."""
    mirror.fault(f"/{ESPCN4}", drop_after=30000, etag='W/"weak-1"')
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)
    first, second = mirror.gets(ESPCN4)
    assert (first.status, first.range) == (200, None)
    assert second.if_range is None
    assert (second.status, second.range) == (206, "bytes=30000-")


def test_wrong_content_range_total_is_refused_and_discarded(srzoo_env, mirror, monkeypatch):
    """The resumed answer claims the file has another size than the manifest's: the
    partial is discarded and the source fails with the two sizes named."""
    monkeypatch.setenv("SRZOO_RETRIES", "1")  # one retry: the resume
    mirror.fault(f"/{ESPCN4}", drop_after=30000)
    mirror.fault(f"/{ESPCN4}", range_total=100324)  # one byte more than ESPCN_x4.pb
    with pytest.raises(srzoo.DownloadError, match="the server's file has 100324 bytes, the manifest says 100323"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert [(h.status, h.range) for h in mirror.gets(ESPCN4)] == [(200, None), (206, "bytes=30000-")]
    assert_clean(srzoo_env)


def test_gzip_encoded_body_is_decoded_and_verified(srzoo_env, mirror, shared_dir):
    mirror.fault(f"/{ESPCN4}", gzip=True)  # a server that ignores Accept-Encoding: identity
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)


def test_trickling_source_is_abandoned_for_the_next(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.5")  # each source gets 0.5 s + size / 1 MB/s
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000000")
    two_mirrors(monkeypatch, mirror)
    mirror.fault("/bad/*", trickle=0.002, times=None)  # 500 B/s: 200 s for the file
    t0 = time.monotonic()
    fetched_from_second(srzoo_env, mirror, shared_dir)
    assert time.monotonic() - t0 < 5


def test_trickling_only_source_fails_in_bounded_time(srzoo_env, mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.5")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000000")
    mirror.fault(f"/{ESPCN4}", trickle=0.002, times=None)
    t0 = time.monotonic()
    with pytest.raises(srzoo.DownloadError, match=r"too slow: \d+ of 100323 bytes.*SRZOO_MIN_RATE"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert time.monotonic() - t0 < 5
    assert cache_files(srzoo_env) == []


def test_default_bound_abandons_a_100kb_trickle_within_60s(monkeypatch):
    for name in ("SRZOO_TIMEOUT", "SRZOO_MIN_RATE"):
        monkeypatch.delenv(name, raising=False)
    assert download.time_bound(100 * 1024) < 60
    # a 1 GB file on a slow but honest 1 MB/s line still fits the default bound
    assert download.time_bound(10**9) > 10**9 / 10**6


def test_endless_body_is_cut_off(srzoo_env, mirror, shared_dir, monkeypatch):
    two_mirrors(monkeypatch, mirror)
    mirror.fault("/bad/*", endless=True, times=None)
    fetched_from_second(srzoo_env, mirror, shared_dir)
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/bad")
    with pytest.raises(srzoo.DownloadError, match=r"more than the manifest's 100323 bytes; cut off"):
        srzoo.fetch("espcn", 4, quiet=True, force=True)
    assert not list((srzoo_env / ".incomplete").glob("*.part"))


@pytest.mark.parametrize("bad", ["http://127.0.0.1:99999/x", "http://[::1/x", "http:///nohost"])
def test_malformed_mirror_url_moves_on(srzoo_env, mirror, shared_dir, monkeypatch, bad):
    monkeypatch.setenv("SRZOO_MIRROR", f"{bad},{mirror.url}")
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)


def test_every_source_failing_lists_each_reason(srzoo_env, mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_MIRROR", f"http://127.0.0.1:99999/x,{mirror.url}/a,{mirror.url}/b")
    mirror.fault("/a/*", status=404, times=None)
    mirror.fault("/b/*", html=True, times=None)
    with pytest.raises(srzoo.DownloadError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    msg = str(err.value)
    # the most telling cause first (an HTML page where the file should be), then the others counted
    assert re.match(r"could not fetch espcn x4 \(ESPCN_x4.pb\): answered \d+ bytes of text/html "
                    r"where the manifest says 100323 bytes .*\(from http://127.0.0.1:\d+/b/ESPCN_x4.pb\); "
                    r"2 other source\(s\) failed too \(", msg), msg
    assert "\n" not in msg and len(msg) < 300
    srcs = [s for s, _ in err.value.failures]  # the full list, in the order tried
    assert srcs == [f"http://127.0.0.1:99999/x/{ESPCN4}", f"{mirror.url}/a/{ESPCN4}", f"{mirror.url}/b/{ESPCN4}"]
    causes = [c for _, c in err.value.failures]
    assert "127.0.0.1:99999" in causes[0] and "HTTP 404" in causes[1] and "text/html" in causes[2]
    assert_clean(srzoo_env)


def test_many_mirrors_failing_give_a_short_line_cause_first(srzoo_env, mirror, shared_dir, tmp_path,
                                                           monkeypatch, capsys):
    """Nine mirrors: eight answer 404, one serves a truncated copy. The line starts with the
    size mismatch, stays short, and `srzoo -v` prints every source on a line of its own."""
    from srzoo.cli import main

    folder = tmp_path / "short"
    folder.mkdir()
    (folder / ESPCN4).write_bytes(good_bytes(shared_dir)[:5000])
    bases = [f"{mirror.url}/gone{i}/with/a/rather/long/path/to/models" for i in range(8)]
    monkeypatch.setenv("SRZOO_MIRROR", ",".join(bases + [str(folder)]))
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    mirror.fault("/gone*", status=404, times=None)
    with pytest.raises(srzoo.ChecksumError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    msg = str(err.value)
    assert msg.startswith("could not fetch espcn x4 (ESPCN_x4.pb): size mismatch: got 5000 bytes, "
                          "expected 100323 (from "), msg
    assert "8 other source(s) failed too (HTTP 404 Not Found x8)" in msg
    assert len(msg) < 300 and "\n" not in msg and "gone3" not in msg
    assert len(err.value.failures) == 9
    assert_clean(srzoo_env)
    capsys.readouterr()
    assert main(["fetch", "espcn", "-s", "4", "-q"]) == 1
    quiet_err = capsys.readouterr().err
    assert quiet_err.count("\n") == 1 and "gone3" not in quiet_err
    assert main(["-v", "fetch", "espcn", "-s", "4", "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == quiet_err.strip() and len(lines) == 10
    assert lines[4] == f"srzoo:   {bases[3]}/{ESPCN4}: HTTP 404 Not Found"
    assert lines[9].startswith(f"srzoo:   {folder}/{ESPCN4}: size mismatch for ESPCN_x4.pb: got 5000")


HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1]); lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(lock_file: Path, seconds: float) -> subprocess.Popen:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock_file), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_waiting_on_a_stuck_lock_holder_gives_up_with_a_clear_error(srzoo_env, mirror, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.5")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1000000")  # bound: 0.6 s without progress
    art = srzoo.get_model("espcn", 4).artifact
    proc = _hold(cache.lock_path(art), 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(srzoo.DownloadError, match=r"gave up waiting for another process "
                                                      r"downloading espcn x4 .*no progress for 1 s"):
            srzoo.fetch("espcn", 4, quiet=False)
        assert time.monotonic() - t0 < 5
        err = capsys.readouterr().err
        assert "waiting for another process to finish downloading espcn x4" in err
        assert mirror.gets(ESPCN4) == []
    finally:
        proc.kill()
        proc.wait()


def test_cache_rm_keeps_a_lock_another_process_holds(srzoo_env, mirror, capsys):
    from srzoo.cli import main

    srzoo.fetch("espcn", 2, quiet=True)
    art = srzoo.get_model("espcn", 4).artifact
    held = cache.lock_path(art)
    free = cache.lock_path(srzoo.get_model("espcn", 2).artifact)
    assert free.exists()
    proc = _hold(held, 30)
    try:
        assert main(["cache", "rm"]) == 0
        out, err = capsys.readouterr()
        assert held.exists() and f"kept {held}: another process is downloading" in err
        assert not free.exists() and f"removed {free}" in out
        assert cache_files(srzoo_env) == []
    finally:
        proc.kill()
        proc.wait()
    assert main(["cache", "rm"]) == 0
    assert not held.exists()


def test_cached_file_edited_after_verification_is_refetched(srzoo_env, mirror, shared_dir, capsys):
    path = srzoo.fetch("espcn", 4, quiet=True)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size: only a hash can tell
    path.write_bytes(bytes(data))
    assert srzoo.fetch("espcn", 4, quiet=False) == path
    assert path.read_bytes() == good_bytes(shared_dir)
    err = capsys.readouterr().err
    assert f"cached {path} changed after it was verified (sha256 mismatch" in err
    assert "fetching it again" in err
    aside = list((srzoo_env / ".damaged").iterdir())
    assert len(aside) == 1 and aside[0].read_bytes() == bytes(data)
    assert len(mirror.gets(ESPCN4)) == 2


def test_touched_but_intact_cached_file_is_rehashed_and_kept(srzoo_env, mirror):
    path = srzoo.fetch("espcn", 4, quiet=True)
    path.write_bytes(path.read_bytes())  # new mtime, same bytes
    assert srzoo.fetch("espcn", 4, quiet=True) == path
    assert len(mirror.gets(ESPCN4)) == 1  # not fetched again
    assert not (srzoo_env / ".damaged").exists()


def test_damaged_cached_file_offline_fails_saying_so(srzoo_env, mirror, monkeypatch):
    path = srzoo.fetch("espcn", 4, quiet=True)
    path.write_bytes(b"\0" * path.stat().st_size)
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    with pytest.raises(srzoo.OfflineError, match=r"changed after it was verified.*moved to .*"
                                                 r"SRZOO_OFFLINE=1 forbids downloading it"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert cache_files(srzoo_env) == []


def test_local_mirror_folder_errors_name_the_file(srzoo_env, shared_dir, tmp_path, monkeypatch):
    """SRZOO_MIRROR as a folder: a missing file, a larger file and a folder in its place
    each fail with the path and the reason; nothing is kept (transfer.copy_local)."""
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    folder = tmp_path / "mirror"
    folder.mkdir()
    monkeypatch.setenv("SRZOO_MIRROR", str(folder))
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")
    src = re.escape(f"(from {folder}/{ESPCN4})")
    with pytest.raises(srzoo.DownloadError, match=f": no such file in the mirror folder {src}"):
        srzoo.fetch("espcn", 4, quiet=True)
    (folder / ESPCN4).write_bytes(good_bytes(shared_dir) + b"\0")
    with pytest.raises(srzoo.DownloadError,
                       match=f": 100324 bytes, more than the manifest's 100323 {src}"):
        srzoo.fetch("espcn", 4, quiet=True)
    (folder / ESPCN4).unlink()
    (folder / ESPCN4).mkdir()
    with pytest.raises(srzoo.DownloadError, match=f": not a file {src}"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert_clean(srzoo_env)
    (folder / ESPCN4).rmdir()
    (folder / ESPCN4).write_bytes(good_bytes(shared_dir))
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path.read_bytes() == good_bytes(shared_dir)
