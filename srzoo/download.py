"""Fetch an artifact into the cache: mirrors first, then the manifest URLs.

Every byte goes to a partial file under ``<cache>/.incomplete``; only after the
size and every manifest hash match is it renamed into place, so the cache
never holds an unverified file. Interrupted transfers resume with HTTP Range;
connection errors, time-outs and 5xx answers are retried with exponential
back-off; a 4xx moves on to the next source; a server that sends more bytes
than the manifest's size is cut off. One process downloads a file at a time
(a file lock); others wait and then use the verified file.

Environment:
    SRZOO_MIRROR       comma-separated base URLs or local folders tried first
                       (the file is looked up as ``<mirror>/<file name>``)
    SRZOO_MIRROR_ONLY  1: never fall back to the manifest URLs
    SRZOO_OFFLINE      1: never touch the network (local-folder mirrors are
                       still read)
    SRZOO_TIMEOUT      seconds to wait for a connection or for data (30)
    SRZOO_RETRIES      extra tries per URL after a transient failure (3)
    SRZOO_BACKOFF      first back-off delay in seconds, doubled each time (1)
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import filelock
import requests

from . import cache
from .errors import ChecksumError, DownloadError, OfflineError
from .registry import Artifact


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise DownloadError(f"{name}={raw!r} is not a number") from None


def offline() -> bool:
    """True when ``SRZOO_OFFLINE`` forbids network access."""
    return _env_flag("SRZOO_OFFLINE")


def mirrors() -> list[str]:
    """The bases named by ``SRZOO_MIRROR``, in order."""
    return [m.strip() for m in os.environ.get("SRZOO_MIRROR", "").split(",") if m.strip()]


def _is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def sources(artifact: Artifact) -> list[str]:
    """Every place the file may come from, in the order they are tried."""
    out = []
    for m in mirrors():
        if _is_url(m):
            out.append(m.rstrip("/") + "/" + artifact.file)
        else:
            base = Path(m[7:] if m.startswith("file://") else m).expanduser()
            out.append(str(base / artifact.file))
    if not _env_flag("SRZOO_MIRROR_ONLY"):
        out.extend(artifact.urls)
    else:  # a manifest's local file ('path' key) is not a download: always allowed
        out.extend(u for u in artifact.urls if not _is_url(u))
    return out


class _Transient(Exception):
    """A failure worth retrying the same URL for (connection, time-out, 5xx)."""


class _Fatal(Exception):
    """A failure of this source; move on to the next one. ``discard``: the
    partial file holds bytes that must not be resumed from."""

    def __init__(self, message: str, *, discard: bool = False) -> None:
        super().__init__(message)
        self.discard = discard


class _Progress:
    """A tqdm bar on a terminal, nothing otherwise."""

    def __init__(self, artifact: Artifact, quiet: bool | None) -> None:
        if quiet is None:
            quiet = not sys.stderr.isatty()
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=artifact.size, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=artifact.file, file=sys.stderr, leave=False)

    def set(self, n: int) -> None:
        if self.bar is not None:
            self.bar.n = n
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _copy_local(src: Path, part: Path, artifact: Artifact) -> None:
    if not src.is_file():
        raise _Fatal(f"{src}: no such file in the mirror folder")
    if src.stat().st_size > artifact.size:
        raise _Fatal(f"{src}: {src.stat().st_size} bytes, more than the manifest's {artifact.size}")
    shutil.copyfile(src, part)


def _http_once(session: requests.Session, url: str, part: Path, artifact: Artifact,
               timeout: float, progress: _Progress) -> None:
    """One HTTP attempt, resuming from whatever ``part`` already holds."""
    have = part.stat().st_size if part.exists() else 0
    if have > artifact.size:
        part.unlink()
        have = 0
    if have == artifact.size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = session.get(url, headers=headers, stream=True, timeout=(timeout, timeout))
    except (requests.ConnectionError, requests.Timeout) as e:
        raise _Transient(f"{url}: {type(e).__name__}: {e}") from None
    with resp:
        if resp.status_code == 416 and have:
            part.unlink()  # our partial does not fit this server's file: start again
            raise _Transient(f"{url}: HTTP 416 on resume from byte {have}; restarting")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Transient(f"{url}: HTTP {resp.status_code} {resp.reason}")
        if resp.status_code >= 400:
            raise _Fatal(f"{url}: HTTP {resp.status_code} {resp.reason}")
        if resp.status_code == 206 and have:
            mode = "ab"
        else:  # 200: the server ignored the Range header (or none was sent)
            mode, have = "wb", 0
        progress.set(have)
        try:
            with open(part, mode) as f:
                for chunk in resp.iter_content(chunk_size=16 * 1024):
                    if have + len(chunk) > artifact.size:
                        f.write(chunk[: artifact.size - have])
                        raise _Fatal(f"{url}: server sent more than the manifest's "
                                     f"{artifact.size} bytes; cut off", discard=True)
                    f.write(chunk)
                    have += len(chunk)
                    progress.set(have)
                f.flush()
                os.fsync(f.fileno())
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as e:
            raise _Transient(f"{url}: interrupted at byte {have}: {type(e).__name__}") from None
    if have < artifact.size:
        raise _Transient(f"{url}: connection closed at byte {have} of {artifact.size}")


def _http(session: requests.Session, url: str, part: Path, artifact: Artifact,
          progress: _Progress) -> None:
    timeout = _env_float("SRZOO_TIMEOUT", 30.0)
    retries = int(_env_float("SRZOO_RETRIES", 3))
    delay = _env_float("SRZOO_BACKOFF", 1.0)
    for attempt in range(retries + 1):
        try:
            _http_once(session, url, part, artifact, timeout, progress)
            return
        except _Transient as e:
            if attempt == retries:
                raise _Fatal(f"{e} (gave up after {retries + 1} tries)") from None
            time.sleep(delay * 2 ** attempt)


@contextmanager
def _locked(artifact: Artifact, quiet: bool | None) -> Iterator[None]:
    lock_file = cache.lock_path(artifact)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if not quiet:
            print(f"srzoo: waiting for another process to finish downloading {artifact.file}",
                  file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def fetch_artifact(artifact: Artifact, *, force: bool = False, quiet: bool | None = None,
                   what: str | None = None) -> Path:
    """Make sure the verified file of ``artifact`` is in the cache; return its path.

    ``force`` re-downloads even when a copy is cached (use it to repair a file
    that ``srzoo cache verify`` reports as corrupt). ``what`` is the name used
    in error messages (e.g. ``"espcn x4"``).
    """
    target = cache.path_for(artifact)
    what = what or artifact.file
    if not force and cache.is_cached(artifact):
        return target
    srcs = sources(artifact)
    if offline():
        srcs = [s for s in srcs if not _is_url(s)]
        if not srcs:
            raise OfflineError(
                f"{what} ({artifact.file}) is not in the cache {cache.cache_dir()} and "
                "SRZOO_OFFLINE=1 forbids downloading it. Run `srzoo fetch` on a machine with "
                "network and copy the cache, point SRZOO_MIRROR at a folder holding the file, "
                "or unset SRZOO_OFFLINE.")
    if not srcs:
        raise DownloadError(f"{what}: no source to fetch {artifact.file} from "
                            "(SRZOO_MIRROR_ONLY=1 and SRZOO_MIRROR is empty)")
    with _locked(artifact, quiet):
        if not force and cache.is_cached(artifact):  # another process fetched it meanwhile
            return target
        part = cache.partial_path(artifact)
        part.parent.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        failures: list[str] = []
        checksum_failed = False
        progress = _Progress(artifact, quiet)
        try:
            with requests.Session() as session:
                from . import __version__

                session.headers["User-Agent"] = f"srzoo/{__version__}"
                for src in srcs:
                    try:
                        if _is_url(src):
                            _http(session, src, part, artifact, progress)
                        else:
                            _copy_local(Path(src), part, artifact)
                    except _Fatal as e:
                        failures.append(str(e))
                        if e.discard:
                            part.unlink(missing_ok=True)
                        continue
                    bad = cache.problems(part, artifact)
                    if bad:
                        part.unlink(missing_ok=True)
                        checksum_failed = True
                        failures.append(f"{src}: " + "; ".join(bad))
                        continue
                    os.replace(part, target)
                    return target
        finally:  # whatever happens, a partial that passed no check stays for a resume
            progress.close()
    cls = ChecksumError if checksum_failed else DownloadError
    raise cls(f"could not fetch {what} ({artifact.file}) from {len(srcs)} source(s): "
              + " | ".join(failures))
