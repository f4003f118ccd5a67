"""Derived files: what a converter made from a verified source, cached with a record.

Downloading ends with a verified file in ``<cache>/models/``. For formats no
engine loads as published (Keras HDF5, PyTorch, ncnn) or that a faster
engine cannot read (TensorFlow GraphDef for ONNX Runtime), a converter from
:mod:`srzoo.convert` turns it into ONNX. The result lives in::

    <cache>/derived/<name>-x<scale>-<converter>-<key>/model.onnx
    <cache>/derived/<name>-x<scale>-<converter>-<key>/record.json

``key`` hashes the source's sha256, the converter's name and version and the
options, so a new converter version or other options make a new folder and
never reuse a stale file. The folder is built under ``<cache>/.incomplete/``
and renamed into place only when complete (atomic); two processes deriving
the same file share one conversion (a file lock). ``record.json`` holds the
source sha256, converter, tool versions, output size and sha256 and the
probe error with what it was checked against, and the output's stat stamp
(size, mtime, inode, device). A derived file gets the same trust as a
download: before use its stat is compared with the stamp, and a file whose
stat differs is re-hashed; a folder whose record is missing, unreadable or
whose output no longer has the recorded sha256 is rebuilt (with a note);
:func:`verify` re-hashes the output (``srzoo cache verify``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from srzoo import fsutil
from srzoo.convert import converter_for
from srzoo.errors import CacheError, ConversionFailed, ModelLoadError
from srzoo.hub import cache

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.convert import Converter
    from srzoo.hub.manifest import ModelEntry

RECORD = "record.json"
OUTPUT = "model.onnx"
RECORD_SCHEMA = 1
#: seconds a process waits for another one converting the same file
LOCK_WAIT = 1800.0


def derived_root() -> Path:
    return cache.cache_dir() / "derived"


def _sha256(path: Path) -> str:
    return cache.file_hashes(path)["sha256"]


def cache_key(source_sha256: str, converter: "Converter", options: dict[str, Any]) -> str:
    """The part of the folder name that changes with anything that changes the output."""
    blob = json.dumps({"source": source_sha256, "converter": converter.name,
                       "version": str(converter.version), "options": options},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def folder_for(entry: "ModelEntry", converter: "Converter", source_sha256: str,
               options: dict[str, Any] | None = None) -> Path:
    scale = f"-x{entry.scale}" if entry.scale is not None else ""
    key = cache_key(source_sha256, converter, options or {})
    # catalogue names (omdb:ID@pth) hold ':' and '@', which some file systems refuse
    name = re.sub(r"[^A-Za-z0-9._+-]", "-", entry.name)
    return derived_root() / f"{name}{scale}-{converter.name}-{key}"


def read_record(folder: Path) -> dict[str, Any] | None:
    """The record of a derived folder, or None when missing or unreadable."""
    try:
        rec = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("schema") == RECORD_SCHEMA else None


def _stamp(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "dev": st.st_dev}


def _record_matches(folder: Path, rec: dict[str, Any] | None, *, quiet: bool = False) -> bool:
    """On use: the record exists and the output's stat matches the stamp taken
    when it was built (as :func:`srzoo.hub.cache.trusted`); a stat that differs
    is re-hashed against the recorded sha256 (and the stamp renewed when it
    matches). False (rebuild) when anything does not match."""
    if rec is None:
        return False
    out = folder / OUTPUT
    try:
        want = rec["output"]
        st = out.stat()
        if st.st_size != int(want["size"]):
            ok = False
        elif want.get("stamp") == _stamp(st):
            return True
        else:
            ok = _sha256(out) == want["sha256"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    if ok:  # touched or copied but the same bytes: remember the new stat (best effort)
        try:
            want["stamp"] = _stamp(st)
            fsutil.atomic_write(folder / RECORD, json.dumps(rec, indent=2, sort_keys=True) + "\n",
                                fsync=False)
        except OSError:
            pass
    elif not quiet:
        print(f"srzoo: derived {out} changed after it was built (size or sha256 differ from "
              f"{folder / RECORD}); rebuilding it", file=sys.stderr, flush=True)
    return ok


def verify(folder: Path) -> list[str]:
    """What is wrong with a derived folder (empty if nothing): record and full re-hash."""
    rec = read_record(folder)
    if rec is None:
        return [f"{folder}: {RECORD} is missing or unreadable"]
    out = folder / OUTPUT
    try:
        size = out.stat().st_size
    except OSError as e:
        return [f"{out}: {e.strerror}"]
    want = rec.get("output", {})
    if size != want.get("size"):
        return [f"{out}: size {size} bytes, record says {want.get('size')}"]
    got = _sha256(out)
    if got != want.get("sha256"):
        return [f"{out}: sha256 {got}, record says {want.get('sha256')}"]
    return []


@dataclass(frozen=True)
class DerivedFile:
    folder: Path
    record: dict[str, Any] | None

    @property
    def path(self) -> Path:
        return self.folder / OUTPUT


def derived_files() -> Iterator[DerivedFile]:
    """Every derived folder in the cache, sorted by name."""
    root = derived_root()
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir():
                yield DerivedFile(d, read_record(d))


def _tool_versions() -> dict[str, str]:
    import platform

    import numpy

    out = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        import cv2

        out["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def derive(source: Path, entry: "ModelEntry", converter: "Converter | None" = None,
           options: dict[str, Any] | None = None, *, source_sha256: str | None = None,
           force: bool = False) -> Path:
    """The ONNX file derived from ``source`` (a verified file of ``entry``).

    Converts on first use (``converter``: the one registered for
    ``entry.format``), then returns the cached file. ``source_sha256`` defaults
    to the manifest's (hashed from the file for entries without one).
    """
    converter = converter or converter_for(entry.format)
    options = dict(options or {})
    extra = [c.sha256 for c in getattr(entry, "companions", ())]
    if extra:  # e.g. the .bin of an ncnn .param: other weights, other folder
        options["companions"] = extra
    if source_sha256 is None:
        # an archive member's own hash, not the archive's
        source_sha256 = (entry.sha256 if not entry.member else None) or _sha256(Path(source))
    folder = folder_for(entry, converter, source_sha256, options)
    if not force and _record_matches(folder, read_record(folder)):
        return folder / OUTPUT
    locks = cache.cache_dir() / ".locks"
    try:
        cache.ensure_dir(locks)
        lock = fsutil.bounded_lock(locks / f"derived-{folder.name}.lock", LOCK_WAIT)
        lock.__enter__()
    except fsutil.LockUnavailable:
        raise ConversionFailed(f"{entry.name}: another process has been converting {Path(source).name} "
                               f"for more than {LOCK_WAIT:.0f} s (lock {locks}/derived-{folder.name}.lock); "
                               "try again when it is done") from None
    except OSError as e:
        raise cache.os_error(e, Path(e.filename or locks), "lock") from None
    try:
        if not force and _record_matches(folder, read_record(folder), quiet=True):
            return folder / OUTPUT
        return _build(source, entry, converter, options, source_sha256, folder)
    finally:
        lock.__exit__(None, None, None)


def run_converter(converter: "Converter", source: Path, entry: "ModelEntry | None",
                  options: dict[str, Any]) -> Any:
    """``converter.convert(...)``, with running out of memory turned into one line
    that blames the model file (a file declaring more data than it holds), not
    the image: the CLI's generic out-of-memory advice (--tile) does not apply."""
    try:
        return converter.convert(Path(source), entry, options)
    except MemoryError as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else "an allocation failed"
        raise ModelLoadError(f"{source}: ran out of memory reading the model file ({why}): it "
                             "declares more data than this machine can hold (a damaged or hostile "
                             "file?); this is the model, not the image: --tile does not help") from None


def _build(source: Path, entry: "ModelEntry", converter: "Converter", options: dict[str, Any],
           source_sha256: str, folder: Path) -> Path:
    """Convert, record and rename into place (the caller holds the lock)."""
    conv = run_converter(converter, Path(source), entry, options)
    digest = hashlib.sha256(conv.onnx).hexdigest()
    record = {
        "schema": RECORD_SCHEMA,
        "model": entry.name, "scale": entry.scale,
        "source": {"file": Path(source).name, "format": entry.format, "sha256": source_sha256},
        "converter": {"name": converter.name, "version": str(converter.version)},
        "options": options,
        "tools": {**_tool_versions(), **conv.tools},
        "info": conv.info,
        "probe": {"max_abs_error": conv.probe_error, "checked_against": conv.checked_against},
        "output": {"file": OUTPUT, "size": len(conv.onnx), "sha256": digest},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    incomplete = cache.cache_dir() / ".incomplete"
    cache.ensure_dir(incomplete)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=incomplete))
        fsutil.atomic_write(tmp / OUTPUT, conv.onnx)
        record["output"]["stamp"] = _stamp((tmp / OUTPUT).stat())  # kept by the folder's rename
        fsutil.atomic_write(tmp / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():  # stale or forced: nobody else writes it while we hold the lock
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as e:  # disk full, read-only cache...: one line naming the file
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        where = Path(e.filename) if e.filename else incomplete
        raise CacheError(f"converting {entry.name} ({Path(source).name}) to ONNX: "
                         f"{fsutil.describe(e, where)} (cache {cache.cache_dir()}; set SRZOO_CACHE_DIR "
                         "to use another folder); nothing was kept") from None
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder / OUTPUT


def remove_for(entry_name: str, scale: int | None = None) -> list[Path]:
    """Delete the derived folders of a model name (of one ``scale`` when given);
    returns what was removed."""
    gone = []
    for d in derived_files():
        if d.record is not None and d.record.get("model") == entry_name and (
                scale is None or d.record.get("scale") == scale):
            shutil.rmtree(d.folder, ignore_errors=True)
            gone.append(d.folder)
    return gone


__all__ = ["ConversionFailed", "DerivedFile", "derive", "derived_files", "derived_root", "folder_for",
           "read_record", "remove_for", "verify"]
