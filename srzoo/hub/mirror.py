"""Local mirror folders (``SRZOO_MIRROR=/some/folder``), searched by file name.

A folder named in ``SRZOO_MIRROR`` is searched recursively: a folder of model
subfolders (``models/opencv/ESPCN_x4.pb``, ``models/esrgan-ncnn/...``) or of
datasets (``datasets/Set5/baby.png``) serves every file it holds under its own
name, wherever it sits. Every copy with the right name is a source; the
download's size and hash checks pick the right one (two ``baboon.png`` in two
datasets: the wrong one fails its hash and the next is tried).

Bounded, as any walk of a folder we did not make must be:

* at most :data:`MAX_DEPTH` folders deep and :data:`MAX_ENTRIES` entries read
  per search (then the search stops with what it found);
* symbolic links to folders are not followed, and a linked file counts only
  when its target lies inside the mirror folder (no escape through a link);
* hidden folders (``.git``, ``.cache``) are skipped.

A file directly at ``<folder>/<name>`` is found without a walk.
"""

from __future__ import annotations

import os
from pathlib import Path

#: how deep below a mirror folder a file may sit, and how many entries one search reads
MAX_DEPTH = 8
MAX_ENTRIES = 200_000
#: at most this many copies of one name are tried
MAX_MATCHES = 8


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve(strict=True).relative_to(root)
    except (OSError, ValueError, RuntimeError):  # broken link, outside, a link loop
        return False
    return True


def find(folder: Path, name: str) -> list[Path]:
    """The files called ``name`` in ``folder`` and its subfolders (bounded, see
    the module's doc), the one at ``folder/name`` first; at most
    :data:`MAX_MATCHES`. Empty when there is none (or the folder is unreadable)."""
    if not name or "/" in name or os.sep in name or name in (".", ".."):
        return []
    try:
        root = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        return []
    direct = folder / name
    if os.path.lexists(direct):
        # the direct path, as before (copy_local says what is wrong with it if anything)
        if not direct.is_symlink() or _inside(direct, root):
            return [direct]
    found: list[Path] = []
    seen = 0
    stack: list[tuple[Path, int]] = [(folder, 0)]
    while stack and len(found) < MAX_MATCHES:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for e in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                return found
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth + 1 <= MAX_DEPTH and not e.name.startswith("."):
                        subdirs.append(Path(e.path))
                elif e.name == name and (not e.is_symlink() or _inside(Path(e.path), root)):
                    if e.is_file(follow_symlinks=True):
                        found.append(Path(e.path))
            except OSError:
                continue
        # depth-first in name order: pushed reversed so the first name is walked first
        stack.extend((d, depth + 1) for d in reversed(subdirs))
    return found[:MAX_MATCHES]


__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "MAX_MATCHES", "find"]
