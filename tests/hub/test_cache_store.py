"""srzoo.hub.cache on real files: where each file lives, the verification record and what
trusting a cached file takes, hashes checked against hashlib, the message of each OS error,
and what `srzoo cache rm` may delete while another process holds a lock. Also the fast test
set `tools/mutation.sh hub/cache` runs per mutant."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import filelock
import platformdirs
import pytest

from srzoo.errors import CacheError
from srzoo.hub import cache
from srzoo.hub.manifest import Artifact

DATA = bytes(range(256)) * 4100  # 1049600 bytes: more than one CHUNK (1 MiB)


def art_of(data: bytes, name: str = "w.bin", subdir: str = "models", **kw) -> Artifact:
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return Artifact(name, len(data), hashlib.sha256(data).hexdigest(), ("https://e.invalid/x",),
                    git_blob_sha1=blob, subdir=subdir, **kw)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    r = tmp_path / "cache"
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(r))
    return r


def put(art: Artifact, data: bytes) -> Path:
    p = cache.path_for(art)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_paths(root, monkeypatch):
    a = art_of(b"x", "f.onnx", "datasets/set5")
    assert cache.cache_dir() == root
    assert cache.path_for(a) == root / "datasets" / "set5" / "f.onnx"
    assert cache.lock_path(a) == root / ".locks" / "datasets-set5-f.onnx.lock"
    assert cache.record_path(a) == root / ".verified" / "datasets-set5-f.onnx.json"
    assert cache.partial_path(a) == root / ".incomplete" / f"datasets-set5-f.onnx.{a.sha256[:12]}.part"
    monkeypatch.setattr(cache, "bundled_dir", lambda: Path("/pkg/builtin"))
    assert cache.path_for(art_of(b"x", "b.onnx", bundled=True)) == Path("/pkg/builtin/b.onnx")
    monkeypatch.delenv("SRZOO_CACHE_DIR")
    assert cache.cache_dir() == Path(platformdirs.user_cache_dir("srzoo", appauthor=False))
    assert cache.CHUNK == 1 << 20


def test_hashes_and_problems(tmp_path):
    p = tmp_path / "w.bin"
    p.write_bytes(DATA)
    a = art_of(DATA)
    assert cache.file_hashes(p) == {"sha256": hashlib.sha256(DATA).hexdigest(),
                                    "git-blob-sha1": hashlib.sha1(b"blob 1049600\0" + DATA).hexdigest()}
    assert a.hashes["git-blob-sha1"] == "%s" % cache.file_hashes(p)["git-blob-sha1"]
    assert cache.problems(p, a) == []
    bad = bytearray(DATA)
    bad[-1] ^= 1  # the last byte, past the first chunk
    p.write_bytes(bad)
    got = cache.file_hashes(p)
    assert cache.problems(p, a) == [
        f"sha256 mismatch for w.bin: expected {a.sha256}, got {got['sha256']}",
        f"git-blob-sha1 mismatch for w.bin: expected {a.git_blob_sha1}, got {got['git-blob-sha1']}"]
    only_sha = Artifact("w.bin", len(DATA), a.sha256, ())
    assert cache.problems(p, only_sha) == [f"sha256 mismatch for w.bin: expected {a.sha256}, got {got['sha256']}"]
    p.write_bytes(DATA[:-1])
    assert cache.problems(p, a) == [f"size mismatch for w.bin: got {len(DATA) - 1} bytes, expected {len(DATA)}"]
    assert cache.problems(tmp_path / "no", a) == [f"cannot read {tmp_path / 'no'}: No such file or directory"]


def test_record_and_trust(root):
    a = art_of(DATA)
    assert cache.trusted(a) == (False, None) and not cache.is_cached(a)
    p = put(a, DATA)
    assert not cache.record_path(a).exists()
    assert cache.trusted(a) == (True, None)  # hashed once, then recorded
    st = p.stat()
    assert json.loads(cache.record_path(a).read_text()) == {
        "size": len(DATA), "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "dev": st.st_dev,
        "sha256": a.sha256}
    assert cache.is_cached(a)
    # the record is trusted without hashing: same bytes count, same stamp
    cache.record_path(a).write_text(json.dumps({**json.loads(cache.record_path(a).read_text())}))
    assert cache.trusted(a) == (True, None)
    # a record of other bytes: hashed again, found right, recorded again
    cache.record_path(a).write_text(json.dumps({"size": 1}))
    assert cache.trusted(a) == (True, None)
    assert json.loads(cache.record_path(a).read_text())["size"] == len(DATA)
    cache.record_path(a).write_text("not json")
    assert cache.trusted(a) == (True, None)
    # the record is what is trusted: bytes changed in place, with size, mtime and inode kept, are
    # not hashed again (that is what `srzoo cache verify` is for)
    before = p.stat()
    with open(p, "r+b") as f:
        f.write(b"\xff")
    os.utime(p, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert cache.trusted(a) == (True, None)
    assert cache.trusted(a, repair=False) == (True, None)
    # a folder where the file is: not cached
    a2 = art_of(b"abc", "d.bin")
    cache.path_for(a2).mkdir(parents=True)
    assert cache.trusted(a2) == (False, None)


def test_changed_copy_is_moved_aside(root):
    a = art_of(DATA)
    p = put(a, DATA)
    cache.trusted(a)
    bad = DATA[:-1] + b"\x00"
    p.write_bytes(bad)
    ok, note = cache.is_cached(a), None
    assert ok is False and p.exists()  # is_cached never moves anything
    ok, note = cache.trusted(a, repair=False)
    assert not ok and p.exists() and note == (
        f"cached {p} changed after it was verified (sha256 mismatch for w.bin: expected {a.sha256}, "
        f"got {hashlib.sha256(bad).hexdigest()}; git-blob-sha1 mismatch for w.bin: expected "
        f"{a.git_blob_sha1}, got {hashlib.sha1(b'blob 1049600' + bytes(1) + bad).hexdigest()})")
    ok, note2 = cache.trusted(a)
    (aside,) = (root / ".damaged").iterdir()
    assert not ok and note2 == f"{note}; moved to {aside}"
    assert aside.name.startswith("w.bin.") and aside.name.endswith(f".{os.getpid()}")
    assert len(aside.name.split(".")) == 4 and len(aside.name.split(".")[2]) == 15  # YYYYmmddTHHMMSS
    assert aside.read_bytes() == bad and not p.exists() and not cache.record_path(a).exists()


def test_changed_copy_that_cannot_be_moved_aside(root):
    a = art_of(DATA)
    p = put(a, DATA)
    p.write_bytes(DATA[::-1])
    (root / ".damaged").write_text("a file in the way")
    with pytest.raises(CacheError) as err:
        cache.trusted(a)
    assert str(err.value) == (f"cannot move aside {root / '.damaged'}: {root / '.damaged'} is a file where a "
                              f"folder should be; move it away (cache {root}; set SRZOO_CACHE_DIR to use "
                              "another folder)")
    assert p.read_bytes() == DATA[::-1]


def test_bundled_files_are_never_recorded(root, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "bundled_dir", lambda: tmp_path)
    a = art_of(DATA, bundled=True)
    (tmp_path / "w.bin").write_bytes(b"z" * len(DATA))  # right size: trusted here, hashed by download
    assert cache.trusted(a) == (True, None)
    (tmp_path / "w.bin").write_bytes(b"z")
    assert cache.trusted(a) == (False, None)
    cache.record(a)
    assert not (root / ".verified").exists()


def test_record_in_a_read_only_place_is_skipped(root):
    a = art_of(DATA)
    put(a, DATA)
    (root / ".verified").write_text("a file in the way")
    cache.record(a)  # best effort: no error
    assert cache.trusted(a) == (True, None)


def test_seed(root, tmp_path):
    a = art_of(DATA)
    good = tmp_path / "src" / "w.bin"
    good.parent.mkdir()
    good.write_bytes(DATA)
    wrong_name = tmp_path / "x.bin"
    wrong_name.write_bytes(DATA)
    wrong_bytes = tmp_path / "other" / "w.bin"
    wrong_bytes.parent.mkdir()
    wrong_bytes.write_bytes(DATA[::-1])
    cache._seeded.discard("w.bin")
    (root / "models").mkdir(parents=True)  # the folder exists already: fine
    cache.seed(a, [wrong_name, tmp_path / "none" / "w.bin", tmp_path / "other", wrong_bytes])
    assert not cache.path_for(a).exists()
    cache.seed(a, [wrong_bytes, str(good)])
    assert cache.path_for(a).read_bytes() == DATA and "w.bin" in cache._seeded
    assert [p.name for p in cache.path_for(a).parent.iterdir()] == ["w.bin"]  # no temporary left
    cache.path_for(a).unlink()
    cache.seed(a, [good])  # seeded once per process
    assert not cache.path_for(a).exists()
    cache._seeded.discard("w.bin")
    put(a, DATA)
    cache.seed(a, [wrong_bytes])  # cached already: nothing happens
    assert cache.path_for(a).read_bytes() == DATA
    cache._seeded.discard("w.bin")


def test_seed_candidate_changed_while_copied(root, tmp_path, monkeypatch):
    """A candidate that passes its check and is then rewritten by another process before it is
    copied (the race, made deterministic: the real check runs, then the file is rewritten) fails
    the check of the copy: its temporary is removed and the next candidate is used."""
    a = art_of(DATA)
    racy, good = tmp_path / "racy" / "w.bin", tmp_path / "good" / "w.bin"
    for p in (racy, good):
        p.parent.mkdir()
        p.write_bytes(DATA)
    real = cache.problems

    def check_then_rewrite(path, art):
        found = real(path, art)
        if Path(path) == racy:  # the other process writes between our check and our copy
            racy.write_bytes(DATA[::-1])
        return found

    monkeypatch.setattr(cache, "problems", check_then_rewrite)
    cache._seeded.discard("w.bin")
    cache.seed(a, [racy, good])
    assert cache.path_for(a).read_bytes() == DATA and "w.bin" in cache._seeded
    assert [p.name for p in cache.path_for(a).parent.iterdir()] == ["w.bin"]  # the bad copy's temporary removed
    cache._seeded.discard("w.bin")


def test_ensure_dir(root, tmp_path):
    d = tmp_path / "a" / "b"
    cache.ensure_dir(d)
    cache.ensure_dir(d)
    assert d.is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(CacheError) as err:
        cache.ensure_dir(tmp_path / "f" / "sub")
    assert str(err.value) == (f"cannot create {tmp_path / 'f' / 'sub'}: {tmp_path / 'f'} is a file where a folder "
                              f"should be; move it away (cache {root}; set SRZOO_CACHE_DIR to use another folder)")
    if Path("/proc/self").is_dir():  # Linux: no folder can be made at the top of /proc
        with pytest.raises(CacheError) as err:  # the folder that could not be made is named
            cache.ensure_dir(Path("/proc/srzoo-test/sub"))
        assert str(err.value) == ("cannot create /proc/srzoo-test: No such file or directory (cache "
                                  f"{root}; set SRZOO_CACHE_DIR to use another folder)")
    with pytest.raises(CacheError) as err:
        cache.ensure_dir(tmp_path / "f")
    assert str(err.value) == (f"cannot create {tmp_path / 'f'}: {tmp_path / 'f'} is a file where a folder "
                              f"should be; move it away (cache {root}; set SRZOO_CACHE_DIR to use another folder)")


@pytest.mark.parametrize("code, message", [
    (errno.ENOSPC, "disk full writing {p}: free some space {where}; the partial download was deleted"),
    (errno.EDQUOT, "disk full writing {p}: free some space {where}; the partial download was deleted"),
    (errno.EFBIG, "file size limit reached writing {p} {where}; the partial download was deleted"),
    (errno.EROFS, "cannot write {p}: read-only file system {where}"),
    (errno.EACCES, "cannot write {p}: permission denied {where}"),
    (errno.EPERM, "cannot write {p}: permission denied {where}"),
    (errno.EISDIR, "cannot write {p}: it is a folder where a file should be; remove it"),
    (errno.EIO, "cannot write {p}: Input/output error {where}"),
])
def test_os_error_messages(root, tmp_path, code, message):
    p = tmp_path / "x"
    err = cache.os_error(OSError(code, os.strerror(code)), p, "write")
    assert isinstance(err, CacheError)
    where = f"(cache {root}; set SRZOO_CACHE_DIR to use another folder)"
    assert str(err) == message.format(p=p, where=where)


def test_os_error_names_what_is_in_the_way(root, tmp_path):
    where = f"(cache {root}; set SRZOO_CACHE_DIR to use another folder)"
    e = OSError(errno.ENOTDIR, "Not a directory")
    assert str(cache.os_error(e, Path("/dev/null/x"), "create")) == (
        f"cannot create /dev/null/x: /dev/null is a device where a folder should be; move it away {where}")
    os.mkfifo(tmp_path / "fifo")
    assert str(cache.os_error(OSError(errno.EEXIST, "File exists"), tmp_path / "fifo" / "y", "create")) == (
        f"cannot create {tmp_path / 'fifo' / 'y'}: {tmp_path / 'fifo'} is a FIFO where a folder should be; "
        f"move it away {where}")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock"))
        assert str(cache.os_error(e, tmp_path / "sock" / "z", "create")) == (
            f"cannot create {tmp_path / 'sock' / 'z'}: {tmp_path / 'sock'} is a socket where a folder should be; "
            f"move it away {where}")
    blocks = [Path("/dev") / n for n in sorted(os.listdir("/dev")) if n.startswith("loop") and n[4:].isdigit()]
    if blocks and cache.fsutil.kind(blocks[0]) == "block":
        assert str(cache.os_error(e, blocks[0] / "w", "create")) == (
            f"cannot create {blocks[0] / 'w'}: {blocks[0]} is a block device where a folder should be; "
            f"move it away {where}")
    # nothing in the way found: the path itself is named
    assert str(cache.os_error(e, tmp_path / "q" / "r", "create")) == (
        f"cannot create {tmp_path / 'q' / 'r'}: {tmp_path / 'q' / 'r'} is a file where a folder should be; "
        f"move it away {where}")
    assert str(cache.os_error(OSError("no errno"), tmp_path, "use")) == f"cannot use {tmp_path}: no errno {where}"


def test_cached_files_and_leftovers(root):
    assert list(cache.cached_files()) == [] and cache.leftovers() == []
    a, b = art_of(b"12345", "b.bin"), art_of(b"123", "a.png", "datasets/set5")
    put(a, b"12345")
    put(b, b"123")
    (root / "models" / "sub").mkdir()
    assert list(cache.cached_files()) == [cache.CachedFile(root / "models" / "b.bin", 5),
                                          cache.CachedFile(root / "datasets" / "set5" / "a.png", 3)]
    for d in (".incomplete", ".locks", ".verified", ".damaged", ".other"):
        (root / d).mkdir()
        (root / d / "f").write_text("")
    (root / ".locks" / "dir").mkdir()
    assert cache.leftovers() == sorted(root / d / "f" for d in (".incomplete", ".locks", ".verified", ".damaged"))


class Held:
    """A lock held by another thread (FileLock is per thread), as another process would."""

    def __init__(self, path: Path) -> None:
        self.path, self.held, self.done = path, threading.Event(), threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        lock = filelock.FileLock(str(self.path))
        lock.acquire(timeout=0)
        self.held.set()
        self.done.wait(30)
        lock.release()

    def __enter__(self) -> "Held":
        self.t.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.t.join(10)


def test_remove_spares_what_a_running_download_holds(root):
    a, b = art_of(b"12345", "a.bin"), art_of(b"678", "b.bin")
    for d in (".locks", ".incomplete"):
        (root / d).mkdir(parents=True)
    lock_a, lock_b = cache.lock_path(a), cache.lock_path(b)
    part_a, part_b = cache.partial_path(a), cache.partial_path(b)
    for p in (part_a, part_a.with_name(part_a.name + ".json"), part_b, lock_b):
        p.write_text("x")
    model = put(b, b"678")
    with Held(lock_a):
        assert cache.lock_in_use(lock_a) and not cache.lock_in_use(lock_b)
        assert lock_a.exists()
        removed, skipped = cache.remove([lock_a, lock_b, part_a, part_a.with_name(part_a.name + ".json"),
                                         part_b, model, root / "gone"])
        assert removed == [lock_b, part_b, model]
        assert skipped == [lock_a, part_a, part_a.with_name(part_a.name + ".json")]
        assert lock_a.exists() and part_a.exists() and not part_b.exists() and not model.exists()
    removed, skipped = cache.remove([lock_a, part_a])
    assert removed == [lock_a, part_a] and skipped == [] and not lock_a.exists()
    assert not cache.lock_in_use(root / "nowhere" / "x.lock")
    (root / "afile").write_text("")
    assert not cache.lock_in_use(root / "afile" / "x.lock")  # cannot be made: nobody holds it
    # a folder where a lock file should be: one clear error
    lock_dir = root / ".locks" / "models-c.bin.lock"
    lock_dir.mkdir()
    with pytest.raises(CacheError) as err:
        cache.remove([lock_dir])
    assert str(err.value) == f"cannot delete {lock_dir}: it is a folder where a file should be; remove it"
    assert cache.remove([]) == ([], [])


def test_remove_a_symlink_and_an_undeletable_file(root, tmp_path):
    (root / "models").mkdir(parents=True)
    link = root / "models" / "l.bin"
    link.symlink_to(tmp_path / "missing")
    assert cache.remove([link]) == ([link], []) and not os.path.lexists(link)
    d = root / "models" / "d.bin"
    d.mkdir()
    with pytest.raises(CacheError) as err:
        cache.remove([d])
    assert str(err.value).startswith(f"cannot delete {d}: ")
    assert cache._delete(root / "models" / "nope") is False


def test_partial_owner():
    assert cache._partial_owner(Path("/c/.incomplete/models-a.bin.0123.part"), {"models-a.bin"}) == "models-a.bin"
    assert cache._partial_owner(Path("/c/.incomplete/models-a.bin2.0123.part"), {"models-a.bin"}) is None
    assert cache._partial_owner(Path("/c/.incomplete/models-a.bin.0123.part"), set()) is None


def test_remove_goes_on_past_a_missing_file_and_without_locks(root):
    (root / ".incomplete").mkdir(parents=True)
    part = root / ".incomplete" / "models-a.bin.0123.part"
    part.write_text("x")
    assert not (root / ".locks").exists()
    assert cache.remove([root / "gone", part]) == ([part], [])


def test_seed_into_a_cache_not_made_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path / "new" / "cache"))
    a = art_of(DATA, "s.bin", "datasets/set9")
    src = tmp_path / "s.bin"
    src.write_bytes(DATA)
    cache._seeded.discard("s.bin")
    try:
        cache.seed(a, [src])
        assert (tmp_path / "new" / "cache" / "datasets" / "set9" / "s.bin").read_bytes() == DATA
    finally:
        cache._seeded.discard("s.bin")
