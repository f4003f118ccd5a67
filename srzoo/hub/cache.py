"""Where verified files live, and how to check them.

Layout under the cache root (``SRZOO_CACHE_DIR`` or the platform's user cache
folder for "srzoo")::

    models/<file>                 verified model files
    datasets/<name>/<file>        verified dataset images
    .incomplete/<file>.<id>.part  interrupted downloads, resumed next time
                                  (``.part.json``: the source they came from)
    .locks/<file>.lock            cross-process locks
    .verified/<file>.json         what was verified: size, mtime_ns, inode, sha256
    .damaged/<file>.<time>        cached files found changed after verification

Only verified files are ever renamed into ``models/`` or ``datasets/``. Before
a cached file is used, its size, mtime and inode are compared with the record
written when it was verified; a file whose record does not match (edited,
replaced, damaged, or cached by an older srzoo) is hashed again, and moved
aside to ``.damaged/`` if the hashes no longer match.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import platformdirs

from srzoo import config, fsutil
from srzoo.errors import CacheError
from srzoo.hub.manifest import Artifact
from srzoo.hub.registry import bundled_dir

CHUNK = 1 << 20


def cache_dir() -> Path:
    """The cache root: ``SRZOO_CACHE_DIR`` if set, else the user cache folder."""
    env = config.get("SRZOO_CACHE_DIR")
    return env if env else Path(platformdirs.user_cache_dir("srzoo", appauthor=False))


def path_for(artifact: Artifact) -> Path:
    """Where the verified file of an artifact lives (whether or not it is there):
    inside the package for a bundled file, else in the cache."""
    if artifact.bundled:
        return bundled_dir() / artifact.file
    return cache_dir() / artifact.subdir / artifact.file


def partial_path(artifact: Artifact) -> Path:
    """The resumable partial download of an artifact."""
    return cache_dir() / ".incomplete" / f"{artifact.subdir.replace('/', '-')}-{artifact.file}.{artifact.sha256[:12]}.part"


def lock_path(artifact: Artifact) -> Path:
    return cache_dir() / ".locks" / f"{artifact.subdir.replace('/', '-')}-{artifact.file}.lock"


def record_path(artifact: Artifact) -> Path:
    """The record of what was verified for an artifact's cached file."""
    return cache_dir() / ".verified" / f"{artifact.subdir.replace('/', '-')}-{artifact.file}.json"


def _stamp(st: os.stat_result, artifact: Artifact) -> dict:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "dev": st.st_dev,
            "sha256": artifact.sha256}


def record(artifact: Artifact) -> None:
    """Remember the size, mtime and inode of the just-verified cached file.
    Best effort: in a read-only cache nothing is recorded (files are then
    re-hashed on each first use in a process). Files shipped inside the package
    are not the cache's: nothing is recorded for them."""
    if artifact.bundled:
        return
    try:
        st = path_for(artifact).stat()
        fsutil.atomic_write(record_path(artifact), json.dumps(_stamp(st, artifact)), fsync=False)
    except OSError:
        pass


def _recorded(artifact: Artifact, st: os.stat_result) -> bool:
    try:
        rec = json.loads(record_path(artifact).read_text())
    except (OSError, ValueError):
        return False
    return rec == _stamp(st, artifact)


def trusted(artifact: Artifact, *, repair: bool = True) -> tuple[bool, str | None]:
    """Whether the cached file of ``artifact`` can be used, and a note when not.

    ``(True, None)``: present and its stat matches the record of what was
    verified (or it was re-hashed and matches). ``(False, None)``: not cached.
    ``(False, note)``: it changed after verification and its hashes no longer
    match; with ``repair`` it has been moved to ``.damaged/`` (the note says
    where) so a fetch can replace it.
    """
    p = path_for(artifact)
    try:
        st = p.stat()
    except OSError:
        return False, None
    if not p.is_file():
        return False, None
    if artifact.bundled:  # ships inside the package: checked by download.fetch_artifact, never recorded
        return st.st_size == artifact.size, None
    if st.st_size == artifact.size and _recorded(artifact, st):
        return True, None
    bad = problems(p, artifact)
    if not bad:
        record(artifact)
        return True, None
    note = f"cached {p} changed after it was verified ({'; '.join(bad)})"
    if repair:
        aside = cache_dir() / ".damaged" / f"{p.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
        try:
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, aside)
            note += f"; moved to {aside}"
        except FileNotFoundError:
            pass  # another process moved it already
        except OSError as e:
            raise os_error(e, p, "move aside") from None
        try:
            record_path(artifact).unlink()
        except OSError:
            pass
    return False, note


def is_cached(artifact: Artifact) -> bool:
    """True when the verified file is present and unchanged since it was
    verified (re-hashed when its size, mtime or inode differ from the record;
    nothing is moved: :func:`trusted` does that before a file is used)."""
    return trusted(artifact, repair=False)[0]


_seeded: set[str] = set()


def seed(art: Artifact, candidates: Iterable[str | os.PathLike[str]]) -> None:
    """Put ``art`` in this cache from a verified copy elsewhere (a Dask worker
    that sees the client's cache): the first of ``candidates`` with the right
    name, size and hashes is copied in, checked again, and renamed into place.
    Nothing happens when the file is cached already or no candidate fits; the
    usual fetch (mirrors/URLs, same verification) then runs on first use."""
    if art.file in _seeded or is_cached(art):
        return
    for src in candidates:
        p = Path(src)
        if p.name != art.file or not p.is_file() or problems(p, art):
            continue
        dst = path_for(art)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
        try:
            with os.fdopen(fd, "wb") as f, open(p, "rb") as s:
                while chunk := s.read(1 << 20):
                    f.write(chunk)
            if problems(Path(tmp), art):
                continue
            os.replace(tmp, dst)
            _seeded.add(art.file)
            return
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


# --------------------------------------------------------------------------- OS errors
def ensure_dir(path: Path) -> None:
    """``mkdir -p`` with one clear :class:`CacheError` when it cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error(e, Path(e.filename) if e.filename else path, "create") from None
    if not path.is_dir():
        raise os_error(OSError(errno.ENOTDIR, "Not a directory"), path, "create")


def os_error(e: OSError, path: Path, doing: str) -> CacheError:
    """A one-line :class:`CacheError` for an OS error on a cache path: what,
    where, and what to do."""
    where = f"(cache {cache_dir()}; set SRZOO_CACHE_DIR to use another folder)"
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return CacheError(f"disk full writing {path}: free some space {where}; "
                          "the partial download was deleted")
    if code == errno.EFBIG:
        return CacheError(f"file size limit reached writing {path} {where}; "
                          "the partial download was deleted")
    if code == errno.EROFS:
        return CacheError(f"cannot {doing} {path}: read-only file system {where}")
    if code in (errno.EACCES, errno.EPERM):
        return CacheError(f"cannot {doing} {path}: permission denied {where}")
    if code in (errno.ENOTDIR, errno.EEXIST):
        bad = _file_in_the_way(path) or path
        what = {"device": "a device", "fifo": "a FIFO", "block": "a block device",
                "socket": "a socket"}.get(fsutil.kind(bad), "a file")
        return CacheError(f"cannot {doing} {path}: {bad} is {what} where a folder should "
                          f"be; move it away {where}")
    if code == errno.EISDIR:
        return CacheError(f"cannot {doing} {path}: it is a folder where a file should be; remove it")
    return CacheError(f"cannot {doing} {path}: {e.strerror or e} {where}")


def _file_in_the_way(path: Path) -> Path | None:
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            return p
    return None


def file_hashes(path: Path) -> dict[str, str]:
    """sha256 and git blob sha1 of a file, in one pass."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            sha256.update(chunk)
            blob.update(chunk)
    return {"sha256": sha256.hexdigest(), "git-blob-sha1": blob.hexdigest()}


def problems(path: Path, artifact: Artifact) -> list[str]:
    """What is wrong with ``path`` as a copy of ``artifact`` (empty if nothing).

    Checks the size and every hash the manifest gives; each message names the
    expected and the actual value.
    """
    try:
        size = path.stat().st_size
    except OSError as e:
        return [f"cannot read {path}: {e.strerror}"]
    if size != artifact.size:
        return [f"size mismatch for {artifact.file}: got {size} bytes, expected {artifact.size}"]
    actual = file_hashes(path)
    return [f"{algo} mismatch for {artifact.file}: expected {want}, got {actual[algo]}"
            for algo, want in artifact.hashes.items() if actual[algo] != want]


@dataclass(frozen=True)
class CachedFile:
    path: Path
    size: int


def cached_files() -> Iterator[CachedFile]:
    """Every verified file in the cache (models and datasets), sorted by path."""
    root = cache_dir()
    for sub in ("models", "datasets"):
        base = root / sub
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    yield CachedFile(p, p.stat().st_size)


def leftovers() -> list[Path]:
    """Partial downloads, their source records, locks, verification records and
    damaged files set aside (safe to delete when nothing is downloading; see
    :func:`remove` for what it does with locks in use)."""
    root = cache_dir()
    return sorted(p for d in (".incomplete", ".locks", ".verified", ".damaged") if (root / d).is_dir()
                  for p in (root / d).iterdir() if p.is_file())


def lock_in_use(lock_file: Path) -> bool:
    """True when another process holds ``lock_file`` (it is downloading)."""
    import filelock

    lock = filelock.FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def remove(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Delete cache files; return (removed, skipped).

    A lock file another process holds is never deleted (that would let a
    second process download the same file at the same time), nor is a partial
    download whose lock is held. Raises :class:`CacheError` when a file cannot
    be deleted.
    """
    root = cache_dir()
    held: set[str] = set()
    locks = root / ".locks"
    if locks.is_dir():
        held = {p.stem for p in locks.iterdir() if p.suffix == ".lock" and lock_in_use(p)}
    removed: list[Path] = []
    skipped: list[Path] = []
    for p in paths:
        if not p.exists() and not p.is_symlink():
            continue
        stem = None
        if p.parent == locks and p.suffix == ".lock":
            stem = p.stem
        elif p.parent == root / ".incomplete":
            stem = _partial_owner(p, held)
        if stem is not None and stem in held:
            skipped.append(p)
            continue
        if p.parent == locks and p.suffix == ".lock":
            if _unlink_free_lock(p):
                removed.append(p)
            else:
                skipped.append(p)
            continue
        if _delete(p):
            removed.append(p)
    return removed, skipped


def _delete(p: Path) -> bool:
    """Delete a cache file; False when it was already gone, a :class:`CacheError`
    when it cannot be deleted."""
    try:
        p.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise os_error(e, p, "delete") from None
    return True


def _unlink_free_lock(lock_file: Path) -> bool:
    """Delete a lock file while holding it, so no process can be holding it at
    that moment; False when another process holds it."""
    import filelock

    lock = filelock.FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return False
    except OSError as e:
        raise os_error(e, lock_file, "delete") from None
    try:
        _delete(lock_file)
    finally:
        lock.release()
    return True


def _partial_owner(part: Path, held: set[str]) -> str | None:
    """The lock stem a partial (``<stem>.<sha12>.part[.json]``) belongs to, if it is held."""
    for stem in held:
        if part.name.startswith(stem + "."):
            return stem
    return None
