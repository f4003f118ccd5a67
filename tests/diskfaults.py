"""Real disk faults for tests: a tmpfs of a given size, or read-only (needs root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a tmpfs with ``options`` (``size=64k``, ``ro,size=64k``) at ``where``;
    False where this process cannot (not root, no mount, a kernel that refuses)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                       capture_output=True)
    return r.returncode == 0


def umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True)
