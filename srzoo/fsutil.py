"""Writing files safely, for every layer: atomic replace of what is ours, never of what is not.

:func:`atomic_write` is the one way srzoo writes a whole file (outputs, JSON
reports, converted models, cache records, catalogue files):

* a regular file (or a name that does not exist yet) is written to a temporary
  file beside it and renamed into place, so it is never seen half-written;
* a character device or FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is
  *written through*: opened and written, never replaced by a regular file;
* a symbolic link is followed: its target gets the treatment above (a link
  to ``/proc/self/fd/1`` writes to stdout, a link to a regular file replaces
  that file and the link stays);
* a folder, block device or socket is refused (``OSError``; :func:`describe`
  turns any write error into one line).

:func:`redact` removes ``user:password@`` from every URL in a text before it is
printed or stored. :func:`bounded_lock` is a file lock that cannot wait forever.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


def redact(text: str) -> str:
    """``text`` with the user information of every URL in it replaced by ``***``
    (``http://alice:pw@host/x`` -> ``http://***@host/x``)."""
    return _USERINFO.sub(r"\1***@", str(text))


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def kind(path: str | os.PathLike[str]) -> str:
    """What is at ``path`` after following links: ``missing``, ``file``, ``dir``,
    ``device`` (character), ``fifo``, ``block``, ``socket`` or ``other``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "missing" if not os.path.lexists(path) else "other"
    m = st.st_mode
    if stat.S_ISREG(m):
        return "file"
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISCHR(m):
        return "device"
    if stat.S_ISFIFO(m):
        return "fifo"
    if stat.S_ISBLK(m):
        return "block"
    if stat.S_ISSOCK(m):
        return "socket"
    return "other"  # pragma: no cover


def is_special(path: str | os.PathLike[str]) -> bool:
    """True when writing ``path`` writes through to a character device or FIFO."""
    return kind(path) in ("device", "fifo")


def _write_through(path: str, data: bytes, truncate: bool = False) -> None:
    # no O_CREAT: the device, FIFO or file is there; blocking, so a FIFO waits for its reader
    fd = os.open(path, os.O_WRONLY | (os.O_TRUNC if truncate else 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            if n <= 0:  # pragma: no cover - defensive
                raise OSError(errno.EIO, "write returned 0 bytes", path)
            view = view[n:]
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None,
                 fsync: bool = True, make_parents: bool = True) -> Path:
    """Write ``data`` to ``path`` (see the module doc); returns the path written.

    ``mode``: the new file's permissions (default: 0666 minus the umask, as
    ``open`` would give; 0o600 for private state). Raises ``OSError`` (with
    ``filename`` set) on failure; nothing is left behind.
    """
    p = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    what = kind(p)
    if what in ("device", "fifo"):
        _write_through(str(p), data)
        return p
    if what == "dir":
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(p))
    if what in ("block", "socket", "other"):
        raise OSError(errno.EPERM, f"is a {'block device' if what == 'block' else what}; "
                                   "refusing to write to it", str(p))
    target = p
    if p.is_symlink():
        real = os.path.realpath(p)
        if real.startswith(("/proc/", "/dev/")):  # /dev/stdout -> a redirected file
            _write_through(str(p), data, truncate=True)
            return p
        target = Path(real)  # a link to a file: replace its target, keep the link
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not e.filename:
            e.filename = str(p)
        raise
    return p


def install(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Put a finished temporary file (written beside ``path``) into place by the
    rules of :func:`atomic_write`: renamed over a regular file (or a link's
    regular target), streamed through to a device, FIFO or ``/proc`` link, a
    folder refused. ``tmp`` is gone afterwards in every case."""
    p = Path(path)
    try:
        what = kind(p)
        if what == "dir":
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(p))
        if what in ("block", "socket", "other"):
            raise OSError(errno.EPERM, f"is a {'block device' if what == 'block' else what}; "
                                       "refusing to write to it", str(p))
        through = what in ("device", "fifo") or (
            p.is_symlink() and os.path.realpath(p).startswith(("/proc/", "/dev/")))
        if through:
            with open(tmp, "rb") as src:
                fd = os.open(str(p), os.O_WRONLY | (os.O_TRUNC if what == "file" else 0))
                try:
                    while chunk := src.read(1 << 20):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
            return p
        os.replace(tmp, Path(os.path.realpath(p)) if p.is_symlink() else p)
        return p
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def describe(e: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """One line for a write error: ``disk full writing PATH: free some space ...``."""
    where = str(path if path is not None else (e.filename or "?"))
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full writing {where}: free some space or write elsewhere"
    if code == errno.EFBIG:
        return f"file size limit reached writing {where}"
    if code == errno.EROFS:
        return f"cannot write {where}: read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return f"cannot write {where}: {e.strerror or 'permission denied'}"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return f"cannot write {where}: a file is in the way of its folder"
    if code == errno.EISDIR:
        return f"cannot write {where}: it is a folder"
    return f"cannot write {where}: {e.strerror or e}"


class LockUnavailable(OSError):
    """A bounded lock could not be taken in time (another process holds it)."""


@contextmanager
def bounded_lock(path: str | os.PathLike[str], timeout: float) -> Iterator[None]:
    """Hold the file lock ``path`` for the block; wait at most ``timeout`` seconds.

    A lock file that cannot be created at all (read-only, ``/proc``, a file in
    the way) raises that ``OSError`` at once instead of retrying; a lock held
    by another process past ``timeout`` raises :class:`LockUnavailable`.
    """
    import filelock

    try:  # can the lock file exist here at all? (filelock would retry such errors forever)
        fd = os.open(os.fspath(path), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        os.close(fd)
    except OSError as e:
        if not e.filename:
            e.filename = os.fspath(path)
        raise
    lock = filelock.FileLock(os.fspath(path))
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise LockUnavailable(errno.EAGAIN, f"held by another process for more than {timeout:g} s",
                              os.fspath(path)) from None
    try:
        yield
    finally:
        lock.release()


__all__ = ["LockUnavailable", "atomic_write", "bounded_lock", "describe", "install", "is_special",
           "kind", "redact"]
