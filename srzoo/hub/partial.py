"""Partial files of the download cache: bytes on their way in, never trusted.

A :class:`Partial` lives under ``<cache>/.incomplete`` beside a small record of
the source that produced it (URL and validator), so an interrupted transfer
resumes only from that same source. A failed write (disk full, file too
large, I/O error) is a :class:`DiskError`: no other source can help.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from srzoo import fsutil
from srzoo.hub import cache
from srzoo.hub.manifest import Artifact


class DiskError(Exception):
    """Writing the partial failed (disk full, file too large, I/O error): no
    other source can help, so the whole fetch stops."""

    def __init__(self, err: OSError, path: Path) -> None:
        super().__init__(str(err))
        self.err = err
        self.path = path



class Partial:
    """The partial file of one artifact and the record of where its bytes came
    from (``<part>.json``: source, ETag, Last-Modified). The record's mtime is
    also the heartbeat that waiting processes watch."""

    def __init__(self, artifact: Artifact) -> None:
        self.path = cache.partial_path(artifact)
        self.meta_path = self.path.with_name(self.path.name + ".json")
        self._beat = 0.0

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def resumable_from(self, source: str) -> int:
        """Bytes that may be resumed from ``source`` (0 after deleting bytes of another origin)."""
        have = self.size()
        if have and self.meta().get("source") != fsutil.redact(source):
            self.discard()
            return 0
        return have

    def start(self, source: str, etag: str | None = None, last_modified: str | None = None) -> None:
        """Record that the partial is about to be (re)written from ``source`` (a URL
        is stored without its user:password; the record is private: mode 0600)."""
        write_small(self.meta_path, json.dumps(
            {"source": fsutil.redact(source), "etag": etag, "last_modified": last_modified}))
        self._beat = time.monotonic()

    def beat(self, force: bool = False) -> None:
        """Show waiting processes that this one is still working (at most once a second)."""
        now = time.monotonic()
        if force or now - self._beat >= 1.0:
            self._beat = now
            try:
                os.utime(self.meta_path)
            except OSError:
                pass

    def discard(self) -> None:
        """Delete the partial and its record; best effort: it runs while another error is
        being reported (a folder in the record's place, a read-only disk), which matters more."""
        for p in (self.path, self.meta_path):
            try:
                p.unlink()
            except OSError:
                pass

    def mark(self) -> tuple[int, int]:
        """What a waiting process compares to see progress: (partial size, record mtime)."""
        try:
            m = self.meta_path.stat().st_mtime_ns
        except OSError:
            m = 0
        return self.size(), m


def write_small(path: Path, text: str) -> None:
    try:
        fsutil.atomic_write(path, text, mode=0o600, fsync=False)
    except OSError as e:
        raise DiskError(e, path) from None


def write_all(f: Any, data: bytes, path: Path) -> None:
    """Write all of ``data`` to an unbuffered file (raw writes may be short)."""
    view = memoryview(data)
    try:
        while view:
            n = f.write(view)
            if not n:
                raise OSError(errno.EIO, "write returned 0 bytes")
            view = view[n:]
    except OSError as e:
        raise DiskError(e, path) from None


__all__ = ["DiskError", "Partial", "write_all", "write_small"]
