"""srzoo.hub.download.fetch_artifact step by step, on real files and the real local mirror: the
order of sources, what is kept or discarded after each failure, the whole message of each error,
the lock and its waiting message. Also the fast test set `tools/mutation.sh hub/download` runs."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import filelock
import pytest

from srzoo.errors import CacheError, ChecksumError, DownloadError, OfflineError
from srzoo.hub import cache, download
from srzoo.hub.manifest import Artifact
from srzoo.hub.partial import Partial

NAME = "baby.png"  # Set5, 371264 bytes


@pytest.fixture
def data(shared_dir: Path) -> bytes:
    return (shared_dir / "datasets" / "Set5" / NAME).read_bytes()


def art_of(data: bytes, urls: tuple[str, ...] = (), **kw) -> Artifact:
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return Artifact(NAME, len(data), hashlib.sha256(data).hexdigest(), urls, git_blob_sha1=blob,
                    subdir="datasets/set5", **kw)


@pytest.fixture
def art(data, srzoo_env) -> Artifact:
    return art_of(data)


def test_sources_in_order(monkeypatch, tmp_path):
    a = Artifact("f.bin", 1, "0" * 64, ("https://up.example/f.bin", str(tmp_path / "local" / "f.bin")))
    monkeypatch.setenv("SRZOO_HOME_X", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SRZOO_MIRROR", f"http://m1.example/base/,HTTPS://m2.example,file://{tmp_path}/d,~/e,{tmp_path}/f,"
                                       "http://m3.example/X//")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    assert download.mirrors() == ["http://m1.example/base/", "HTTPS://m2.example", f"file://{tmp_path}/d", "~/e",
                                  f"{tmp_path}/f", "http://m3.example/X//"]
    expected = ["http://m1.example/base/f.bin", "HTTPS://m2.example/f.bin", str(tmp_path / "d" / "f.bin"),
                str(tmp_path / "home" / "e" / "f.bin"), str(tmp_path / "f" / "f.bin"), "http://m3.example/X/f.bin"]
    assert download.sources(a) == expected + ["https://up.example/f.bin", str(tmp_path / "local" / "f.bin")]
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")  # the manifest's local file is no download: kept
    assert download.sources(a) == expected + [str(tmp_path / "local" / "f.bin")]
    monkeypatch.setenv("SRZOO_MIRROR", "")
    assert download.mirrors() == [] and download.sources(a) == [str(tmp_path / "local" / "f.bin")]
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    assert download.offline() is True
    monkeypatch.setenv("SRZOO_OFFLINE", "0")
    assert download.offline() is False
    assert download.time_bound is not None and "time_bound" in download.__all__


def test_fetch_keeps_and_records_and_reuses(mirror, art, data, srzoo_env):
    path = download.fetch_artifact(art, quiet=True)
    assert path == srzoo_env / "datasets" / "set5" / NAME and path.read_bytes() == data
    assert cache.trusted(art, repair=False) == (True, None)
    assert cache.record_path(art).is_file()  # recorded: the next use need not hash it
    assert not Partial(art).path.exists() and not Partial(art).meta_path.exists()
    assert download.fetch_artifact(art, quiet=True) == path and len(mirror.log) == 1
    assert download.fetch_artifact(art, quiet=True, force=True) == path and len(mirror.log) == 2


def test_every_source_failing_lists_each_one(mirror, art, data, srzoo_env, monkeypatch, tmp_path):
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/a,{tmp_path},http://user:secret@127.0.0.1:1/c")
    mirror.fault(f"/a/{NAME}", status=404)
    with pytest.raises(DownloadError) as err:
        download.fetch_artifact(art, quiet=True, what="set5 baby")
    assert type(err.value) is DownloadError
    msg = str(err.value)
    # one line, the most telling cause first (no answer at all beats a 404), then the count
    assert msg.startswith(f"could not fetch set5 baby ({NAME}): http://***@127.0.0.1:1/c/{NAME}: "
                          "ConnectionError"), msg
    assert msg.endswith("; 2 other source(s) failed too (HTTP 404 Not Found, ...); `srzoo -v` lists them"), msg
    assert "secret" not in msg and "\n" not in msg
    # every source, in order, with its own cause (redacted)
    got = err.value.failures
    assert [s for s, _ in got] == [f"{mirror.url}/a/{NAME}", str(tmp_path / NAME), f"http://***@127.0.0.1:1/c/{NAME}"]
    assert got[0][1] == "HTTP 404 Not Found" and got[1][1] == "no such file in the mirror folder"
    assert "ConnectionError" in got[2][1] and "secret" not in got[2][1]
    assert cache.cached_files() is not None and list(cache.cached_files()) == []


def test_wrong_bytes_then_the_next_source(mirror, art, data, srzoo_env, monkeypatch, tmp_path):
    (tmp_path / NAME).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setenv("SRZOO_MIRROR", f"{tmp_path},{mirror.url}/good")
    assert download.fetch_artifact(art, quiet=True).read_bytes() == data
    assert [h.path for h in mirror.log] == [f"/good/{NAME}"]
    # only wrong bytes: a ChecksumError naming the source and both hashes, nothing kept
    monkeypatch.setenv("SRZOO_MIRROR", str(tmp_path))
    with pytest.raises(ChecksumError) as err:
        download.fetch_artifact(art, quiet=True, force=True)
    actual = hashlib.sha256((tmp_path / NAME).read_bytes()).hexdigest()
    assert str(err.value).startswith(
        f"could not fetch {NAME} ({NAME}): sha256 mismatch: expected {art.sha256[:12]}..., "
        f"got {actual[:12]}...; git-blob-sha1 mismatch")
    assert str(err.value).endswith(f"(from {tmp_path / NAME})")
    [(src, cause)] = err.value.failures  # the whole hashes are kept there
    assert src == str(tmp_path / NAME) and f"expected {art.sha256}, got {actual}" in cause
    assert not Partial(art).path.exists() and not Partial(art).meta_path.exists()


def test_a_fatal_that_discards_and_one_that_keeps(mirror, art, data, srzoo_env, monkeypatch):
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    mirror.fault(f"/{NAME}", drop_after=5000)  # transient, no retry left: Fatal, bytes kept
    with pytest.raises(DownloadError):
        download.fetch_artifact(art, quiet=True)
    p = Partial(art)
    assert p.path.read_bytes() == data[:5000] and p.meta()["source"] == f"{mirror.url}/{NAME}"
    mirror.fault(f"/{NAME}", range_total=1)  # a 206 with another total: discarded
    with pytest.raises(DownloadError):
        download.fetch_artifact(art, quiet=True)
    assert not p.path.exists() and not p.meta_path.exists()


def test_offline(mirror, art, data, srzoo_env, monkeypatch, tmp_path):
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    with pytest.raises(OfflineError) as err:
        download.fetch_artifact(art, quiet=True, what="set5 baby")
    assert str(err.value) == (
        f"set5 baby ({NAME}) is not in the cache {srzoo_env} and SRZOO_OFFLINE=1 forbids downloading it. "
        "Run `srzoo fetch` on a machine with network and copy the cache, point SRZOO_MIRROR at a folder "
        "holding the file, or unset SRZOO_OFFLINE.")
    (tmp_path / NAME).write_bytes(data)  # a folder mirror is no download: fine offline
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{tmp_path}")
    assert download.fetch_artifact(art, quiet=True).read_bytes() == data and mirror.log == []
    # a damaged cached copy: the note comes first
    target = cache.path_for(art)
    target.write_bytes(b"x" * len(data))
    monkeypatch.setenv("SRZOO_MIRROR", mirror.url)
    with pytest.raises(OfflineError) as err:
        download.fetch_artifact(art, quiet=True)
    assert str(err.value).startswith(f"cached {target} changed after it was verified (sha256 mismatch")
    assert f"; moved to {srzoo_env / '.damaged'}/" in str(err.value)
    assert f". {NAME} ({NAME}) is not in the cache {srzoo_env} and SRZOO_OFFLINE=1" in str(err.value)


def test_no_source_at_all(art, monkeypatch):
    monkeypatch.setenv("SRZOO_MIRROR", "")
    with pytest.raises(DownloadError) as err:
        download.fetch_artifact(art, quiet=True)
    assert str(err.value) == (f"{NAME}: no source to fetch {NAME} from (SRZOO_MIRROR_ONLY=1 and "
                              "SRZOO_MIRROR is empty)")
    assert not cache.lock_path(art).exists()  # refused before anything was made


def test_damaged_copy_is_fetched_again_and_said(mirror, art, data, srzoo_env, capsys):
    download.fetch_artifact(art, quiet=True)
    target = cache.path_for(art)
    target.write_bytes(b"y" * len(data))
    assert download.fetch_artifact(art).read_bytes() == data  # quiet=None: no bar off a terminal
    err = capsys.readouterr().err
    assert err.startswith(f"srzoo: cached {target} changed after it was verified (sha256 mismatch")
    assert err.endswith("; fetching it again\n") and err.count("\n") == 1
    target.write_bytes(b"y" * len(data))
    assert download.fetch_artifact(art, quiet=True).read_bytes() == data
    assert capsys.readouterr().err == ""
    target.write_bytes(b"y" * len(data))
    assert download.fetch_artifact(art, quiet=False).read_bytes() == data
    assert "; fetching it again\n" in capsys.readouterr().err


def test_folder_in_place_of_the_file(mirror, art, srzoo_env):
    target = cache.path_for(art)
    target.mkdir(parents=True)
    with pytest.raises(CacheError) as err:
        download.fetch_artifact(art, quiet=True, what="set5 baby")
    assert str(err.value) == (f"{target} is a folder where the file of set5 baby should be; remove it "
                              "(or run `srzoo cache rm`) and try again")
    assert mirror.log == []


def test_file_in_place_of_the_cache_folder(mirror, art, srzoo_env):
    srzoo_env.mkdir(parents=True)
    (srzoo_env / "datasets").write_text("in the way")
    with pytest.raises(CacheError) as err:
        download.fetch_artifact(art, quiet=True)
    assert str(err.value) == (
        f"cannot create {srzoo_env / 'datasets' / 'set5'}: {srzoo_env / 'datasets'} is a file where a "
        f"folder should be; move it away (cache {srzoo_env}; set SRZOO_CACHE_DIR to use another folder)")


def test_bundled_file_is_checked_never_downloaded(mirror, data, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "bundled_dir", lambda: tmp_path)
    a = art_of(data, bundled=True)
    with pytest.raises(ChecksumError) as err:
        download.fetch_artifact(a, what="tiny")
    assert str(err.value) == (
        f"tiny: the copy shipped with srzoo at {tmp_path / NAME} is damaged or missing (cannot read "
        f"{tmp_path / NAME}: No such file or directory); reinstall srzoo (pip install --force-reinstall srzoo)")
    (tmp_path / NAME).write_bytes(data)
    assert download.fetch_artifact(a) == tmp_path / NAME
    assert (str(tmp_path / NAME), a.sha256) in download._bundled_ok
    (tmp_path / NAME).write_bytes(b"")  # verified once per process: not hashed again
    assert download.fetch_artifact(a) == tmp_path / NAME
    download._bundled_ok.clear()
    with pytest.raises(ChecksumError, match="size mismatch"):
        download.fetch_artifact(a)
    (tmp_path / NAME).write_bytes(data[::-1])  # right size, wrong bytes: both hashes named
    with pytest.raises(ChecksumError) as err:
        download.fetch_artifact(a, what="tiny")
    bad = data[::-1]
    assert str(err.value) == (
        f"tiny: the copy shipped with srzoo at {tmp_path / NAME} is damaged or missing (sha256 mismatch for "
        f"{NAME}: expected {a.sha256}, got {hashlib.sha256(bad).hexdigest()}; git-blob-sha1 mismatch for {NAME}: "
        f"expected {a.git_blob_sha1}, got {hashlib.sha1(b'blob %d' % len(bad) + bytes(1) + bad).hexdigest()}); "
        "reinstall srzoo (pip install --force-reinstall srzoo)")
    assert mirror.log == []


class Holder(threading.Thread):
    """Another holder of the download lock (its own thread: a FileLock is per thread), which
    runs ``work`` and then lets go (at once with no work: when ``release`` is set)."""

    def __init__(self, art: Artifact, work=None) -> None:
        super().__init__(daemon=True)
        self.art, self.work = art, work
        self.held, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        cache.ensure_dir(cache.lock_path(self.art).parent)
        lock = filelock.FileLock(str(cache.lock_path(self.art)))
        lock.acquire(timeout=0)
        self.held.set()
        try:
            if self.work:
                self.work()
            else:
                self.release.wait(30)
        finally:
            lock.release()

    def __enter__(self) -> "Holder":
        self.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.join(10)


def test_waiting_for_another_process(mirror, art, data, srzoo_env, capsys, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "30")
    with Holder(art, lambda: time.sleep(0.8)):
        assert download.fetch_artifact(art, what="set5 baby").read_bytes() == data  # no bar off a terminal
    bound = 30 + len(data) / 10240
    assert capsys.readouterr().err == (
        f"srzoo: waiting for another process to finish downloading set5 baby ({NAME}; lock "
        f"{cache.lock_path(art)}); giving up after {bound:.0f} s without progress\n")
    # the holder fetched it meanwhile: nothing downloaded again
    with Holder(art, lambda: time.sleep(0.3)):
        assert download.fetch_artifact(art, quiet=True, force=False).read_bytes() == data
    assert capsys.readouterr().err == "" and len(mirror.log) == 1
    with Holder(art, lambda: time.sleep(0.3)):  # quiet=True: waits without a word
        download.fetch_artifact(art, quiet=True, force=True)
    assert capsys.readouterr().err == "" and len(mirror.log) == 2
    with Holder(art, lambda: time.sleep(0.3)):  # quiet=False is said too
        download.fetch_artifact(art, quiet=False, force=True)
    assert capsys.readouterr().err.startswith("srzoo: waiting for another process")


def test_waiting_gives_up_on_a_holder_without_progress(mirror, art, srzoo_env, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "1.4")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1e9")
    with Holder(art):
        t0 = time.monotonic()
        with pytest.raises(DownloadError) as err:
            download.fetch_artifact(art, quiet=True, what="set5 baby")
        assert 1.4 <= time.monotonic() - t0 < 6
    assert str(err.value) == (
        f"gave up waiting for another process downloading set5 baby ({NAME}): it made no progress "
        f"for 1 s; stop that process (it holds {cache.lock_path(art)}) or try again later")
    assert mirror.log == []


def test_waiting_is_patient_while_the_holder_makes_progress(mirror, art, data, srzoo_env, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.8")
    monkeypatch.setenv("SRZOO_MIN_RATE", "1e9")
    p = Partial(art)
    cache.ensure_dir(p.path.parent)
    stop = time.monotonic() + 2.5

    def holder() -> None:  # grows the partial every 0.3 s for 2.5 s (> the 0.8 s bound), then lets go
        n = 0
        while time.monotonic() < stop:
            n += 1
            p.path.write_bytes(data[:n])
            time.sleep(0.3)
        p.discard()

    with Holder(art, holder):
        assert download.fetch_artifact(art, quiet=True).read_bytes() == data
        assert time.monotonic() >= stop - 0.1


def test_lock_that_cannot_be_made(mirror, art, srzoo_env):
    srzoo_env.mkdir(parents=True)
    (srzoo_env / ".locks").mkdir()
    lock = cache.lock_path(art)
    lock.mkdir()  # a folder where the lock file goes
    with pytest.raises(CacheError) as err:
        download.fetch_artifact(art, quiet=True)
    assert str(err.value).startswith(f"cannot lock {lock}: ")
    assert mirror.log == []


def test_disk_error_deletes_the_partial(mirror, art, srzoo_env, monkeypatch):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cache.ensure_dir(Partial(art).path.parent)
    import signal

    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(CacheError) as err:
            download.fetch_artifact(art, quiet=True)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert str(err.value) == (f"file size limit reached writing {Partial(art).path} (cache {srzoo_env}; set "
                              "SRZOO_CACHE_DIR to use another folder); the partial download was deleted")
    assert not Partial(art).path.exists() and not Partial(art).meta_path.exists()
    assert os.listdir(srzoo_env / "datasets" / "set5") == []


def test_the_holder_fetched_it_meanwhile(mirror, art, data, srzoo_env):
    target = cache.path_for(art)

    def fetch_it() -> None:  # as another process would: verified file in place, recorded
        time.sleep(0.3)
        target.write_bytes(data)
        cache.record(art)

    with Holder(art, fetch_it):
        assert download.fetch_artifact(art, quiet=True) == target
    assert mirror.log == []


def test_a_folder_put_in_place_while_waiting(mirror, art, srzoo_env):
    target = cache.path_for(art)

    def in_the_way() -> None:
        time.sleep(0.3)
        (target / "x").mkdir(parents=True)

    with Holder(art, in_the_way):
        with pytest.raises(CacheError) as err:
            download.fetch_artifact(art, quiet=True)
    assert str(err.value) == f"cannot use {target}: it is a folder where a file should be; remove it"
