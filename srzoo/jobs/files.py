"""Input and output files of a job: which inputs a list of files, folders and globs
means, where each result goes, and what happened to each (:class:`FileResult`)."""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from srzoo.errors import SrzooError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
              ".exr", ".hdr", ".jp2", ".pfm")


@dataclass
class FileResult:
    """What happened to one input: the output written, or why not."""

    input: str
    output: Path | None = None
    error: str | None = None
    #: the output existed already and ``skip_existing`` was asked for
    skipped: bool = False
    #: seconds spent reading, upscaling and writing this file (None when not run)
    seconds: float | None = None
    #: (height, width) of the input and of the output
    in_shape: tuple[int, int] | None = None
    out_shape: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """``written``, ``skipped`` or ``failed``."""
        return "failed" if self.error is not None else "skipped" if self.skipped else "written"


def expand_inputs(items: Iterable[str | os.PathLike[str]],
                  skip_suffix: str | None = None) -> tuple[list[Path], list[FileResult]]:
    """Files, folders (their images, not recursive) and glob patterns → input files.

    Files of a folder whose stem ends with ``skip_suffix`` (earlier outputs,
    e.g. ``_espcn_x2``) are left out. Returns (files in order, without
    duplicates; failures for items that match nothing).
    """
    files: list[Path] = []
    failed: list[FileResult] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS
                           and not (skip_suffix and q.stem.endswith(skip_suffix)))
            if not found:
                failed.append(FileResult(text, error="folder holds no image files "
                                                     f"({', '.join(IMAGE_EXTS[:4])}, ...)"))
            for q in found:
                add(q)
        elif p.is_file():
            add(p)
        elif glob.has_magic(text):
            found = sorted(Path(q) for q in glob_files(text) if Path(q).is_file())
            if not found:
                failed.append(FileResult(text, error="pattern matches no file"))
            for q in found:
                add(q)
        else:
            failed.append(FileResult(text, error="no such file or folder"))
    return files, failed


def glob_files(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` walks each real
    folder once: folder symlinks are followed, but never into a folder already
    seen (a link to ``.`` or to a parent would otherwise loop until paths get too
    long, growing exponentially with two such links)."""
    if "**" not in pattern:
        return glob.glob(pattern, recursive=True)
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts:  # the folder before the first magic component
        if glob.has_magic(part):
            break
        fixed.append(part)
    rest = parts[len(fixed):]
    base = os.sep.join(fixed) if fixed else ""
    if fixed == [""]:
        base = os.sep  # an absolute pattern like /**/*.png
    top = base or os.curdir
    out: list[str] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link: not twice
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        rel_parts = [] if rel == os.curdir else rel.split(os.sep)
        for name in sorted(filenames + dirnames):
            if _match(rel_parts + [name], rest):
                out.append(os.path.join(base, *rel_parts, name) if base else os.path.join(*rel_parts, name))
    return out


def _match(parts: list[str], pats: list[str]) -> bool:
    """Path components against pattern components; ``**`` takes any number of
    components, none of them hidden (as glob does)."""
    if not pats:
        return not parts
    if pats[0] == "**":
        for i in range(len(parts) + 1):
            if i and parts[i - 1].startswith("."):
                break
            if _match(parts[i:], pats[1:]):
                return True
        return False
    if not parts:
        return False
    if parts[0].startswith(".") and not pats[0].startswith("."):
        return False
    return fnmatch.fnmatchcase(parts[0], pats[0]) and _match(parts[1:], pats[1:])


def file_tag(model: str) -> str:
    """A model name as it appears in output file names: ``omdb:ID@onnx`` -> ``omdb-ID-onnx``
    (no ':' or '@', which some file systems refuse)."""
    return model.replace(":", "-").replace("@", "-")


#: ``--format`` names and the extension each writes
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif",
           "tiff": ".tif", "bmp": ".bmp"}


def output_ext(src_ext: str, format: str | None = None) -> str:
    """The extension of an output: ``format``'s (``png``, ``jpg``, ``webp``, ``tif``...)
    when given, else the input's own (JPEG in, JPEG out), ``.png`` for inputs
    without an image extension."""
    if format is not None:
        key = str(format).lower().lstrip(".")
        if key not in FORMATS:
            raise SrzooError(f"unknown output format {format!r}; use one of "
                                f"{', '.join(sorted(set(FORMATS)))}")
        return FORMATS[key]
    return src_ext if src_ext.lower() in IMAGE_EXTS else ".png"


def output_path(src: Path, out: Path | None, model: str, scale: int, *, single: bool,
                format: str | None = None) -> Path:
    """Where the result of ``src`` goes: ``<stem>_<model>_x<scale>.<ext>`` beside
    it or in the output folder ``OUT``, or ``OUT`` itself for one input and an
    ``OUT`` with an image extension (``ext``: :func:`output_ext`)."""
    if single and out is not None and out.suffix.lower() in IMAGE_EXTS and not out.is_dir():
        return out
    name = f"{src.stem}_{file_tag(model)}_x{scale}{output_ext(src.suffix, format)}"
    return src.with_name(name) if out is None else out / name


__all__ = ["FORMATS", "FileResult", "IMAGE_EXTS", "expand_inputs", "file_tag", "glob_files", "output_ext",
           "output_path"]
