"""Where verified files live, and how to check them.

Layout under the cache root (``SRZOO_CACHE_DIR`` or the platform's user cache
folder for "srzoo")::

    models/<file>                 verified model files
    datasets/<name>/<file>        verified dataset images
    .incomplete/<file>.<id>.part  interrupted downloads, resumed next time
    .locks/<file>.lock            cross-process locks

Only verified files are ever renamed into ``models/`` or ``datasets/``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import platformdirs

from .registry import Artifact

CHUNK = 1 << 20


def cache_dir() -> Path:
    """The cache root: ``SRZOO_CACHE_DIR`` if set, else the user cache folder."""
    env = os.environ.get("SRZOO_CACHE_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("srzoo", appauthor=False))


def path_for(artifact: Artifact) -> Path:
    """Where the verified file of an artifact lives (whether or not it is there):
    inside the package for a bundled file, else in the cache."""
    if artifact.bundled:
        from .registry import bundled_dir

        return bundled_dir() / artifact.file
    return cache_dir() / artifact.subdir / artifact.file


def partial_path(artifact: Artifact) -> Path:
    """The resumable partial download of an artifact."""
    return cache_dir() / ".incomplete" / f"{artifact.subdir.replace('/', '-')}-{artifact.file}.{artifact.sha256[:12]}.part"


def lock_path(artifact: Artifact) -> Path:
    return cache_dir() / ".locks" / f"{artifact.subdir.replace('/', '-')}-{artifact.file}.lock"


def is_cached(artifact: Artifact) -> bool:
    """True when the verified file is present with the right size (hashes are
    checked on download and by :func:`verify`)."""
    p = path_for(artifact)
    try:
        return p.stat().st_size == artifact.size
    except OSError:
        return False


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
        return [f"size mismatch for {artifact.file}: expected {artifact.size} bytes, got {size}"]
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
    """Partial downloads and stale locks (safe to delete when nothing is downloading)."""
    root = cache_dir()
    return sorted(p for d in (".incomplete", ".locks") if (root / d).is_dir()
                  for p in (root / d).iterdir() if p.is_file())
