"""Take one member out of a verified zip or tar.gz archive, safely.

Manifest entries may name a file inside an archive (``member``). Before
anything is written the WHOLE archive listing is checked: no absolute
paths, no ``..`` components, no links (symbolic or hard) or device files,
and a bounded total expanded size (:data:`MAX_TOTAL`). The member is then
written to ``<cache>/extracted/<archive sha256[:16]>/<member>`` through a
temporary file and an atomic rename, and re-read from there afterwards.

An extracted member gets the same trust as a download: its sha256 and stat
stamp are recorded in ``<cache>/.verified/extracted-<sha16>-<member>.json``;
before use a stat that differs from the stamp means a re-hash, and a member
whose hash no longer matches (or that has no record) is extracted again from
the verified archive. :func:`verify_extracted` re-hashes them all
(``srzoo cache verify``).
"""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import json
import lzma
import os
import struct
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, TypeVar

from srzoo import fsutil
from srzoo.errors import SrzooError
from srzoo.hub import cache

#: largest total expanded size of an archive srzoo opens (bytes)
MAX_TOTAL = 4 << 30


class ArchiveError(SrzooError):
    """An archive is unsafe (paths out of its folder, links, too large) or lacks the member."""


def _check_name(archive: Path, name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: refused: member {name!r} has an absolute path")
    if ".." in p.parts:
        raise ArchiveError(f"{archive}: refused: member {name!r} points outside the archive's folder ('..')")


_T = TypeVar("_T")
#: what zipfile/tarfile raise on damaged or crafted bytes (bad CRC, encrypted or unknown
#: compression, corrupt deflate/gzip, truncation)
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError,
            RuntimeError, ValueError, struct.error, gzip.BadGzipFile, lzma.LZMAError)


def _damaged(fn: Callable[..., _T]) -> Callable[..., _T]:
    """One ArchiveError line naming the archive for whatever its parser raises on bad bytes."""
    @functools.wraps(fn)
    def inner(archive: Path, *args: Any, **kwargs: Any) -> _T:
        try:
            return fn(archive, *args, **kwargs)
        except (*_DAMAGED, OSError) as e:
            if isinstance(e, OSError) and not isinstance(e, _DAMAGED) \
                    and e.errno not in (None, errno.EINVAL):  # EINVAL: a seek to a negative offset
                raise  # the disk (full, read-only...), not the archive's bytes
            raise ArchiveError(f"{archive}: damaged or unsupported archive ({type(e).__name__}: "
                               f"{(str(e).strip().splitlines() or [''])[0][:120]})") from None
    return inner


def _entries(archive: Path) -> Iterator[tuple[str, int, str]]:
    """(name, size, kind) of every member; kind is file, dir or link."""
    if zipfile.is_zipfile(archive):
        size = os.path.getsize(archive)
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.header_offset + info.compress_size > size:  # zipfile would read() that much
                    raise ArchiveError(f"{archive}: refused: member {info.filename!r} claims "
                                       f"{info.compress_size} compressed bytes at {info.header_offset}, "
                                       f"past the end of the {size}-byte archive")
                mode = (info.external_attr >> 16) & 0o170000
                kind = "link" if mode == 0o120000 else "dir" if info.is_dir() else "file"
                yield info.filename, info.file_size, kind
        return
    try:
        with tarfile.open(archive, "r:*") as t:
            for m in t:
                kind = "file" if m.isfile() else "dir" if m.isdir() else "link"
                yield m.name, m.size, kind
    except tarfile.TarError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(":")
        raise ArchiveError(f"{archive}: not a zip or tar archive srzoo can read ({first})") from None


@_damaged
def check(archive: Path, max_total: int = MAX_TOTAL) -> int:
    """Refuse an unsafe archive (one line naming the member); return the expanded size."""
    total = 0
    for name, size, kind in _entries(archive):
        _check_name(archive, name)
        if kind == "link":
            raise ArchiveError(f"{archive}: refused: member {name!r} is a link or special file")
        total += size
        if total > max_total:
            raise ArchiveError(f"{archive}: refused: expands past {max_total} bytes "
                               f"(the bound on archives srzoo extracts)")
    return total


@_damaged
def _read(archive: Path, member: str, out: Path, max_total: int) -> str:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            try:
                src = z.open(member)
            except KeyError:
                raise ArchiveError(f"{archive}: has no member {member!r}") from None
            return _copy(src, out, max_total, archive)
    with tarfile.open(archive, "r:*") as t:
        try:
            info = t.getmember(member)
        except KeyError:
            raise ArchiveError(f"{archive}: has no member {member!r}") from None
        src = t.extractfile(info)
        if src is None:
            raise ArchiveError(f"{archive}: member {member!r} is not a regular file")
        return _copy(src, out, max_total, archive)


def _copy(src, out: Path, max_total: int, archive: Path) -> str:  # type: ignore[no-untyped-def]
    n = 0
    h = hashlib.sha256()
    with src, open(out, "wb") as f:
        while chunk := src.read(1 << 20):
            n += len(chunk)
            if n > max_total:  # the listing may lie about sizes
                raise ArchiveError(f"{archive}: refused: member expands past {max_total} bytes")
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def extracted_root() -> Path:
    return cache.cache_dir() / "extracted"


def record_path(target: Path) -> Path:
    """The record of an extracted member (its sha256 and stat stamp)."""
    rel = target.relative_to(extracted_root()).as_posix().replace("/", "-")
    return cache.cache_dir() / ".verified" / f"extracted-{rel}.json"


def _stamp(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "dev": st.st_dev}


def _read_record(target: Path) -> dict | None:
    try:
        rec = json.loads(record_path(target).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("sha256"), str) else None


def _write_record(target: Path, sha256: str) -> None:
    try:
        rec = {"sha256": sha256, **_stamp(target.stat())}
        p = record_path(target)
        p.parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(p, json.dumps(rec), fsync=False)
    except OSError:  # a read-only cache: re-hashed on each first use instead
        pass


def member_problems(target: Path) -> list[str]:
    """What is wrong with an extracted member (empty if nothing): full re-hash."""
    rec = _read_record(target)
    if rec is None:
        return [f"{target}: no record of what was extracted ({record_path(target)})"]
    got = cache.file_hashes(target)["sha256"]
    if got != rec["sha256"]:
        return [f"{target}: sha256 {got}, extracted as {rec['sha256']}"]
    return []


def _trusted(target: Path) -> bool:
    """Stat matches the stamp, or the re-hash matches the recorded sha256."""
    rec = _read_record(target)
    try:
        st = target.stat()
    except OSError:
        return False
    if rec is None or not target.is_file():
        return False
    if all(rec.get(k) == v for k, v in _stamp(st).items()):
        return True
    if cache.file_hashes(target)["sha256"] == rec["sha256"]:
        _write_record(target, rec["sha256"])
        return True
    return False


def extracted_members() -> list[Path]:
    """Every extracted member in the cache, sorted."""
    root = extracted_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".part-"))


def extract_member(archive: Path, member: str, archive_sha256: str, *, max_total: int = MAX_TOTAL,
                   force: bool = False, quiet: bool | None = None) -> Path:
    """The cached file of ``member``, extracted from ``archive`` on first use and
    again whenever it changed since (``force``: always)."""
    archive = Path(archive)
    _check_name(archive, member)
    target = extracted_root() / archive_sha256[:16] / member
    if target.is_file() and not force:
        if _trusted(target):
            return target
        if quiet is not True:
            print(f"srzoo: extracted {target} changed after it was extracted (or has no record); "
                  "extracting it again", file=sys.stderr, flush=True)
    check(archive, max_total)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    os.close(fd)
    try:
        digest = _read(archive, member, Path(tmp), max_total)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _write_record(target, digest)
    return target


__all__ = ["ArchiveError", "MAX_TOTAL", "check", "extract_member", "extracted_members", "member_problems"]
